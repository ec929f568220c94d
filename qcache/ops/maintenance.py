"""Maintenance: reclaim expired entries, advise on the L1 size from measured figures, snapshot the stats.

The seed's cron lines (cleanup daily, optimisation weekly, analysis monthly)
become :class:`MaintenanceSchedule`, intervals a long-running process runs
itself in a daemon thread: no cron, no second process. ``qcache maintenance
run`` does one pass from the command line.

* **Reclaim.** L1 drops its expired entries (it also does so as it goes);
  in Redis every entry expires on its own, but a tag's set keeps the members
  of entries that expired until a tagged write or this pass prunes them
  (see :mod:`qcache.l2.tagging`).
* **Size advice.** Never a constant: with ``CACHE_ACCESS_SAMPLE_RATE`` set
  (or a trace given), the simulator replays the sampled reads with the
  configured policy, and the advice is the L1 size that reaches the target
  hit rate, in entries and in megabytes at the measured bytes per entry.
  Without a sample it reads the measured fill, evictions and hit rate only,
  and says that the simulator had nothing to run on.
* **Snapshot.** The report carries ``stats()`` as it was; with a Redis client
  it is also added to the analytics stream (:mod:`qcache.ops.analytics`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import redis

from qcache.cache.tags import TAG_TYPE
from qcache.config import CacheConfig
from qcache.l2.glob import escape_glob
from qcache.l2.tagging import GRACE_MS
from qcache.sim.sources import Trace, TraceSource, materialize
from qcache.tune.curves import Curve, compute_curves
from qcache.tune.sizing import MB, size_for_hit_rate

log = logging.getLogger("qcache.maintenance")

#: The documented healthy hit rate; the advice aims at it, or at CACHE_HIT_RATE_THRESHOLD if higher.
HEALTHY_HIT_RATE = 0.8
#: Sampled reads below which a simulation says too little to size anything.
MIN_SAMPLED_READS = 1000
#: Distinct sampled keys below which the advice says it is rough (spatial sampling's error grows).
FEW_SAMPLED_KEYS = 1000
_SCAN_COUNT = 1000
_BATCH = 500


@dataclass(frozen=True)
class SizeAdvice:
    """What the figures say about ``MEMORY_CACHE_MAX_SIZE``: a size, or none, and why."""

    setting: str
    current: int
    recommended: int | None
    basis: str
    reason: str


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass did and found."""

    started_at: float
    duration_s: float
    l1_expired_removed: int
    tag_sets_scanned: int
    tag_members_pruned: int
    advice: list[SizeAdvice]
    snapshot: dict[str, Any]
    recorded: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune_tag_sets(client: redis.Redis, prefix: str, now_ms: int) -> tuple[int, int]:
    """Drop members of every tag set under ``prefix`` whose entries expired past the grace.

    Returns (sets scanned, members removed). SCAN with a type filter, never KEYS.
    """
    pattern = f"{escape_glob(prefix)}:*:{escape_glob(TAG_TYPE)}:*"
    scanned = removed = 0
    batch: list[bytes] = []

    def flush() -> int:
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.zremrangebyscore(key, "-inf", f"({now_ms - GRACE_MS}")
            counts = pipe.execute()
        batch.clear()
        return sum(int(count) for count in counts)

    for key in client.scan_iter(match=pattern, count=_SCAN_COUNT, _type="zset"):
        batch.append(key)
        scanned += 1
        if len(batch) >= _BATCH:
            removed += flush()
    if batch:
        removed += flush()
    return scanned, removed


def _target(config: CacheConfig) -> float:
    return max(HEALTHY_HIT_RATE, float(config.monitoring.hit_rate_threshold))


def _bytes_per_entry(l1: Mapping[str, Any]) -> float | None:
    entries, used = l1.get("entries") or 0, l1.get("bytes") or 0
    return used / entries if entries else None


def _adjusted(rates: Sequence[float], sampled: int, expected: float) -> tuple[float, ...]:
    """SHARDS' adjustment: reads the sample missed (or over-took) by chance count as hits (or not).

    A key hot enough to matter is in the sample or not as a whole; the
    difference between the expected and the actual number of sampled reads
    is almost all hits of such keys, at every size.
    """
    return tuple(min(1.0, max(0.0, (r * sampled + expected - sampled) / expected)) for r in rates)


def advise_from_sample(
    config: CacheConfig, stats: Mapping[str, Any], reads: Sequence[int] | np.ndarray | TraceSource, rate: float,
    *, label: str, expected_reads: float | None = None,
) -> SizeAdvice:
    """The L1 size the simulator finds for the target hit rate on sampled reads (``rate``: share of keys kept).

    ``expected_reads``: how many reads the sample would hold had it taken
    exactly ``rate`` of them (see :meth:`AccessSample.expected`), for SHARDS' adjustment.
    """
    current = int(config.memory.max_size)
    policy = str(config.memory.eviction_policy)
    trace = materialize(reads) if isinstance(reads, TraceSource) else Trace(label, np.asarray(reads).tolist())
    if len(trace.keys) < MIN_SAMPLED_READS:
        return SizeAdvice("MEMORY_CACHE_MAX_SIZE", current, None, label,
                          f"only {len(trace.keys):,} sampled reads; the simulator needs {MIN_SAMPLED_READS:,}")
    (sampled,) = compute_curves(trace, [policy], points=8, smallest=0.001, largest=1.0)
    # A cache of C entries on the whole workload behaves like one of C x rate on the sample.
    hit_rates, ceiling = sampled.hit_rates, sampled.ceiling
    if expected_reads and expected_reads > 0:
        hit_rates = _adjusted(hit_rates, sampled.requests, expected_reads)
        (ceiling,) = _adjusted((ceiling,), sampled.requests, expected_reads)
    curve = Curve(sampled.workload, policy, tuple(max(1, round(s / rate)) for s in sampled.sizes),
                  hit_rates, max(1, round(sampled.unique_keys / rate)), sampled.requests, ceiling)
    target = _target(config)
    needed = size_for_hit_rate(curve, target)
    at_current = curve.hit_rate_at(current)
    per_entry = _bytes_per_entry(stats.get("l1") or {})
    megabytes = "" if needed.entries is None or per_entry is None else \
        f" (~{math.ceil(needed.entries * per_entry / MB)} MB at the measured {per_entry:,.0f} B per entry)"
    measured = stats.get("hit_rate")
    seen = "" if measured is None else f"; measured hit rate {measured:.2f}"
    head = (f"simulated {policy} on {len(trace.keys):,} reads of {trace.unique_keys:,} keys ({label}): "
            f"{current:,} entries hit ~{at_current:.2f}{seen}")
    if trace.unique_keys < FEW_SAMPLED_KEYS:
        head += f" (only {trace.unique_keys:,} keys sampled: the size is rough)"
    elif measured is not None and abs(measured - at_current) > 0.1:
        # The measured rate is the one point of the curve known for sure: say when the sample misses it.
        head += " (the sample disagrees with the measured rate: raise CACHE_ACCESS_SAMPLE_RATE for a closer size)"
    if needed.entries is None:
        return SizeAdvice("MEMORY_CACHE_MAX_SIZE", current, None, label, f"{head}; {target:.2f} is {needed.why_not}")
    return SizeAdvice("MEMORY_CACHE_MAX_SIZE", current, needed.entries, label,
                      f"{head}; {target:.2f} needs ~{needed.entries:,} entries{megabytes}")


def advise_from_metrics(config: CacheConfig, stats: Mapping[str, Any]) -> SizeAdvice:
    """What the measured fill, evictions and hit rate alone say (no sizing without a simulation)."""
    current = int(config.memory.max_size)
    l1 = stats.get("l1")
    basis = "metrics (no access sample: set CACHE_ACCESS_SAMPLE_RATE, or pass a trace, for a size)"
    if not l1:
        return SizeAdvice("MEMORY_CACHE_MAX_SIZE", current, None, basis, "this cache has no L1")
    entries, capacity, evictions = int(l1["entries"]), int(l1["max_entries"]), int(l1["evictions"])
    hits, lookups = (stats.get("hits") or {}).get("l1", 0), stats.get("lookups") or 0
    l1_rate = hits / lookups if lookups else None
    rate_text = "no reads yet" if l1_rate is None else f"L1 hit rate {l1_rate:.2f}"
    target = _target(config)
    fill = entries / capacity if capacity else 0.0
    if evictions and fill >= 0.9 and l1_rate is not None and l1_rate < target:
        reason = (f"L1 holds {entries:,} of {capacity:,} entries and evicted {evictions:,}; {rate_text} is below "
                  f"{target:.2f}: a larger L1 would likely help")
    elif lookups and not evictions and fill < 0.5:
        reason = (f"L1 holds {entries:,} of {capacity:,} entries and never evicted ({rate_text}): "
                  "it is larger than needed")
    else:
        reason = (f"L1 holds {entries:,} of {capacity:,} entries, {evictions:,} evicted, {rate_text}: "
                  "no change indicated")
    return SizeAdvice("MEMORY_CACHE_MAX_SIZE", current, None, basis, reason)


def run_maintenance(
    cache: Any,
    *,
    client: redis.Redis | None = None,
    trace: TraceSource | None = None,
    record_snapshot: Callable[[], object] | None = None,
    recorded: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> MaintenanceReport:
    """One maintenance pass over ``cache`` (either facade): reclaim, advise, snapshot.

    ``client`` reaches the cache's Redis for the tag sets (none: L1 only);
    ``trace`` replaces the cache's own access sample for the advice;
    ``record_snapshot`` stores the snapshot (a :class:`StatsRecorder`'s
    ``record_once``); ``recorded`` is an analytics report of the service
    (the command line's own cache has served nothing), whose average hit rate
    the advice quotes. A step that fails is reported in ``errors``; the others still run.
    """
    started = clock()
    errors: list[str] = []
    core = cache._core
    config: CacheConfig = cache.config
    expired = core.l1.cleanup() if core.l1 is not None else 0
    sets = pruned = 0
    if client is not None and core.use_l2:
        try:
            sets, pruned = prune_tag_sets(client, core.keys.prefix, int(clock() * 1000))
        except (redis.RedisError, OSError) as exc:
            errors.append(f"tag sets: {exc}")
    stats = cache.stats()
    measured = dict(stats)
    if recorded is not None:
        measured["hit_rate"] = recorded.get("average_hit_rate")
    sample = cache.access_sample
    if trace is not None:
        advice = advise_from_sample(config, measured, trace, 1.0, label=f"trace {trace.name}")
    elif sample is not None and len(sample):
        advice = advise_from_sample(config, measured, sample.trace(), sample.rate,
                                    label=f"sampled reads, {sample.rate:.2%} of keys", expected_reads=sample.expected())
    else:
        advice = advise_from_metrics(config, stats)
    if record_snapshot is not None:
        try:
            record_snapshot()
        except (redis.RedisError, OSError) as exc:
            errors.append(f"snapshot: {exc}")
    for line in errors:
        log.warning("qcache maintenance: %s", line)
    return MaintenanceReport(started, clock() - started, expired, sets, pruned, [advice], stats,
                             dict(recorded) if recorded is not None else None, errors)


@dataclass(frozen=True)
class Job:
    """A maintenance task and how often it runs."""

    name: str
    interval: float
    run: Callable[[], object]


class MaintenanceSchedule:
    """Runs jobs at their intervals in one daemon thread; a failing job is logged and runs again next time.

    The seed's schedule as intervals: ``MaintenanceSchedule.daily(lambda: run_maintenance(cache, ...))``.
    """

    DAY = 86_400.0

    def __init__(self, jobs: Sequence[Job], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not jobs:
            raise ValueError("a schedule needs at least one job")
        for job in jobs:
            if not job.interval > 0:
                raise ValueError(f"job {job.name!r}: the interval must be positive, got {job.interval!r}")
        self.jobs = list(jobs)
        self.clock = clock
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}
        self.failures: dict[str, int] = {job.name: 0 for job in jobs}
        self._due = {job.name: clock() + job.interval for job in jobs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def daily(cls, task: Callable[[], object]) -> MaintenanceSchedule:
        """The seed's daily cleanup as an interval."""
        return cls([Job("daily_maintenance", cls.DAY, task)])

    def run_due(self) -> list[str]:
        """Run every job whose time has come; the names of those that ran."""
        ran = []
        for job in self.jobs:
            if self.clock() >= self._due[job.name]:
                self._due[job.name] = self.clock() + job.interval
                try:
                    job.run()
                except Exception as exc:  # maintenance must never take the service down
                    self.failures[job.name] += 1
                    log.warning("qcache maintenance job %s failed: %s", job.name, exc)
                self.runs[job.name] += 1
                ran.append(job.name)
        return ran

    def start(self) -> MaintenanceSchedule:
        if self._thread is not None:
            raise RuntimeError("the schedule is already running")
        self._thread = threading.Thread(target=self._loop, name="qcache-maintenance", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            wait = min(self._due.values()) - self.clock()
            self._stop.wait(max(0.01, min(wait, 60.0)))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
