"""Usage analytics from recorded snapshots: hourly, daily and weekly reports, every figure measured.

Each process records a snapshot of its ``stats()`` every
``CACHE_STATS_COLLECTION_INTERVAL`` seconds (:class:`StatsRecorder`) into a
Redis Stream under the cache's prefix, ``<CACHE_KEY_PREFIX>:stats``, bounded
with ``MAXLEN ~``. Why a stream rather than a file: every process and host
of a service writes to the one place the cache already shares, a report sees
them all, and the bound keeps it from growing without a maintenance job.

A snapshot holds the process's cumulative counters and its latency histogram
buckets. The report takes, per process, the difference between consecutive
snapshots (a counter that went down means the process restarted: the new
value is the difference), so a window's hit rate, error rate and latency
percentiles are those of the requests served in that window, not since some
process started. Percentiles come from the cache's log-linear buckets
(within 12.5%).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import redis

from qcache.cache.metrics import Totals, Window, bucket_percentile_ms
from qcache.config import CacheConfig
from qcache.ops.invalidator import new_origin

log = logging.getLogger("qcache.analytics")

STREAM_SUFFIX = "stats"
DEFAULT_MAXLEN = 100_000
Period = Literal["hourly", "daily", "weekly"]
#: Window and bucket length, in seconds, of each report.
PERIODS: dict[Period, tuple[int, int]] = {
    "hourly": (3600, 300),
    "daily": (86_400, 3600),
    "weekly": (7 * 86_400, 86_400),
}
#: A change smaller than this (hit rate in points, latency and error rate as a ratio) is "flat".
_FLAT_POINTS = 0.01
_FLAT_RATIO = 0.10


def stream_key(config: CacheConfig) -> str:
    """``<CACHE_KEY_PREFIX>:stats``: two parts, so no cache key and no cache glob ever matches it."""
    return f"{config.core.key_prefix}:{STREAM_SUFFIX}"


@dataclass(frozen=True)
class Snapshot:
    """One process's cumulative figures at one moment."""

    at: float
    origin: str
    lookups: int
    hits: int
    errors: int
    operations: int  # lookups, sets and deletes
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # op -> {"sum_ns", "buckets"}

    @classmethod
    def of(cls, stats: Mapping[str, Any], *, at: float, origin: str) -> Snapshot:
        totals = Totals.of(stats)
        return cls(
            at=at, origin=origin, lookups=totals.lookups, hits=totals.hits, errors=totals.errors,
            operations=totals.operations,
            latency={op: dict(h) for op, h in stats.get("latency_histograms", {}).items()},
        )

    def to_fields(self) -> dict[str, str]:
        return {"snapshot": json.dumps(asdict(self), separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Snapshot:
        data = json.loads(fields[b"snapshot"])
        return cls(**data)


def _delta(later: Snapshot, earlier: Snapshot | None) -> Window:
    def parts(snapshot: Snapshot) -> tuple[Totals, dict[str, dict[str, int]]]:
        totals = Totals(snapshot.lookups, snapshot.hits, snapshot.errors, snapshot.operations)
        return totals, {op: dict(h.get("buckets", {})) for op, h in snapshot.latency.items()}

    return Window.between(*parts(later), *(parts(earlier) if earlier is not None else (None, None)))


@dataclass(frozen=True)
class BucketFigures:
    """One bucket of a report."""

    start: float
    lookups: int
    hit_rate: float | None
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Trend:
    """The second half of the window against the first."""

    hit_rate_change: float | None  # points
    p99_change: float | None  # ratio, 0.2 = 20% slower
    error_rate_change: float | None  # points
    summary: str


@dataclass(frozen=True)
class Report:
    """An analytics report over a window."""

    period: str
    start: float
    end: float
    processes: int
    snapshots: int
    lookups: int
    average_hit_rate: float | None
    peak_hit_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    buckets: list[BucketFigures]
    trend: Trend

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _figures(start: float, delta: Window) -> BucketFigures:
    return BucketFigures(
        start=start,
        lookups=delta.lookups,
        hit_rate=delta.hits / delta.lookups if delta.lookups else None,
        error_rate=delta.errors / delta.operations if delta.operations else None,
        p50_ms=bucket_percentile_ms(delta.buckets, 0.50),
        p99_ms=bucket_percentile_ms(delta.buckets, 0.99),
    )


def _trend(buckets: Sequence[tuple[float, Window]]) -> Trend:
    active = [d for _, d in buckets if d.operations]
    if len(active) < 2:
        return Trend(None, None, None, "not enough recorded activity for a trend")
    half = len(active) // 2
    first, second = Window(), Window()
    for delta in active[:half]:
        first.add(delta)
    for delta in active[half:]:
        second.add(delta)
    a, b = _figures(0, first), _figures(0, second)
    hit = b.hit_rate - a.hit_rate if a.hit_rate is not None and b.hit_rate is not None else None
    p99 = b.p99_ms / a.p99_ms - 1 if a.p99_ms and b.p99_ms else None
    err = b.error_rate - a.error_rate if a.error_rate is not None and b.error_rate is not None else None
    words = []
    if hit is not None:
        words.append("hit rate flat" if abs(hit) < _FLAT_POINTS else f"hit rate {'up' if hit > 0 else 'down'} "
                     f"{abs(hit) * 100:.1f} points")
    if p99 is not None:
        words.append("p99 flat" if abs(p99) < _FLAT_RATIO else f"p99 {'up' if p99 > 0 else 'down'} {abs(p99):.0%}")
    if err is not None:
        words.append("error rate flat" if abs(err) < _FLAT_POINTS / 10 else
                     f"error rate {'up' if err > 0 else 'down'} {abs(err) * 100:.2f} points")
    return Trend(hit, p99, err, ", ".join(words) + " (second half of the window against the first)")


def aggregate(snapshots: Iterable[Snapshot], *, period: Period, end: float) -> Report:
    """The ``period`` report ending at ``end`` from recorded snapshots (any order, any processes)."""
    window, step = PERIODS[period]
    start = end - window
    by_origin: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        by_origin.setdefault(snapshot.origin, []).append(snapshot)
    count = len(range(0, window, step))
    buckets = [(start + i * step, Window()) for i in range(count)]
    total = Window()
    used = 0
    processes = 0
    for series in by_origin.values():
        series.sort(key=lambda s: s.at)
        previous: Snapshot | None = None
        counted = False
        for snapshot in series:
            if previous is not None and start < snapshot.at <= end:
                delta = _delta(snapshot, previous)
                index = min(count - 1, int((snapshot.at - start) // step))
                buckets[index][1].add(delta)
                total.add(delta)
                used += 1
                counted = True
            previous = snapshot
        processes += counted
    figures = [_figures(s, d) for s, d in buckets]
    overall = _figures(start, total)
    rates = [f.hit_rate for f in figures if f.hit_rate is not None]
    return Report(
        period=period, start=start, end=end, processes=processes, snapshots=used, lookups=total.lookups,
        average_hit_rate=overall.hit_rate, peak_hit_rate=max(rates) if rates else None,
        p50_ms=overall.p50_ms, p99_ms=overall.p99_ms, error_rate=overall.error_rate,
        buckets=figures, trend=_trend(buckets),
    )


def read_snapshots(client: redis.Redis, key: str, since: float) -> list[Snapshot]:
    """Snapshots recorded after ``since`` (epoch seconds), read in pages; malformed entries are skipped."""
    out: list[Snapshot] = []
    cursor = f"{max(0, int(since * 1000))}-0"
    while True:
        page: list[tuple[Any, Any]] = list(client.xrange(key, min=cursor, max="+", count=1000) or ())
        for entry_id, fields in page:
            try:
                out.append(Snapshot.from_fields(fields))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("qcache: skipping a malformed stats snapshot %s: %s", entry_id, exc)
        if len(page) < 1000:
            return out
        last = page[-1][0]
        cursor = "(" + (last.decode() if isinstance(last, bytes) else str(last))


class StatsRecorder:
    """Records a cache's snapshot every ``interval`` seconds, in a daemon thread.

    One thread with a sync client serves both facades: ``stats()`` is a plain,
    thread-safe method of each, and recording is not on any request's path.
    """

    def __init__(
        self,
        cache: Any,
        client: redis.Redis,
        key: str,
        *,
        interval: float,
        maxlen: int = DEFAULT_MAXLEN,
        origin: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.cache = cache
        self.client = client
        self.key = key
        self.interval = interval
        self.maxlen = maxlen
        self.origin = origin or new_origin()
        self.clock = clock
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record_once(self) -> Snapshot:
        """Take and store one snapshot now (the first one of a process is the baseline of its deltas)."""
        snapshot = Snapshot.of(self.cache.stats(), at=self.clock(), origin=self.origin)
        self.client.xadd(self.key, snapshot.to_fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]  # redis-py's field type is too narrow
        return snapshot

    def start(self) -> StatsRecorder:
        if self._thread is not None:
            raise RuntimeError("the recorder is already running")
        self._thread = threading.Thread(target=self._run, name="qcache-stats", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.record_once()
            except (redis.RedisError, OSError) as exc:  # analytics must never hurt the service
                self.failures += 1
                log.warning("qcache: could not record a stats snapshot: %s", exc)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
