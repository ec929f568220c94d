"""Exact latencies per user class and operation, in HdrHistograms that merge across processes.

Locust buckets response times below 100 ms to whole milliseconds, while a cache
call takes 20 to 200 µs, so every request is also recorded here in
microseconds. Each process keeps a :class:`LatencyRecorder`; a Locust worker
sends :meth:`LatencyRecorder.drain` payloads to the master, which
:meth:`LatencyRecorder.merge` s them: histograms are added bucket by bucket,
never averaged, so a merged p99 is the p99 of all requests.

Besides the totals, requests are counted in one-second buckets of wall-clock
time (a timeline with its own, coarser, histogram per second), so a run's
throughput and p99 can be followed over time and across a fault.

Recording must cost far less than the 2 µs of an L1 hit, and HdrHistogram's
``record_value`` is pure Python (about 1 µs). So :meth:`LatencyRecorder.record`
only appends one packed integer to an array; :meth:`LatencyRecorder.fold`
(called by the harness every second, by every read and by a drain) adds them
to the histograms in bulk, one ``record_value(value, count)`` per distinct
microsecond value.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

#: Recorded range in microseconds: 1 µs to one minute.
LOWEST_US = 1
HIGHEST_US = 60_000_000
#: Significant digits: 3 for the totals (0.1% resolution), 2 for the per-second timeline.
DIGITS = 3
TIMELINE_DIGITS = 2
#: Version of the drain payload, so a master refuses a worker of another release.
PAYLOAD_VERSION = 1
#: Pending records per operation that trigger a fold from the recording call itself.
FOLD_THRESHOLD = 200_000

# One pending record packs (second - base) << 28 | micros << 2 | outcome into an int64.
_VALUE_BITS = 26  # 2**26 µs > HIGHEST_US
_SHIFT_SECOND = _VALUE_BITS + 2
_NONE, _HIT, _MISS, _ERROR = 0, 1, 2, 3

Key = tuple[str, str]  # (user class, operation)


def new_histogram(digits: int = DIGITS) -> HdrHistogram:
    """An empty histogram over the recorded range."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, digits)


@dataclass
class OperationStats:
    """Counts and the latency histogram of one (user class, operation)."""

    histogram: HdrHistogram = field(default_factory=new_histogram)
    count: int = 0
    errors: int = 0
    hits: int = 0
    misses: int = 0

    def add(self, other: OperationStats) -> None:
        self.histogram.add(other.histogram)
        self.count += other.count
        self.errors += other.errors
        self.hits += other.hits
        self.misses += other.misses


@dataclass
class SecondStats:
    """What happened in one wall-clock second, all users and operations together."""

    histogram: HdrHistogram = field(default_factory=lambda: new_histogram(TIMELINE_DIGITS))
    count: int = 0
    errors: int = 0
    l2_hits: int = 0

    def add(self, other: SecondStats) -> None:
        self.histogram.add(other.histogram)
        self.count += other.count
        self.errors += other.errors
        self.l2_hits += other.l2_hits


@dataclass(frozen=True)
class Summary:
    """Percentiles of one histogram, in microseconds (NaN when it is empty)."""

    count: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float

    @classmethod
    def of(cls, histogram: HdrHistogram) -> Summary:
        if histogram.get_total_count() == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=int(histogram.get_total_count()),
            mean_us=float(histogram.get_mean_value()),
            p50_us=float(histogram.get_value_at_percentile(50)),
            p90_us=float(histogram.get_value_at_percentile(90)),
            p99_us=float(histogram.get_value_at_percentile(99)),
            p999_us=float(histogram.get_value_at_percentile(99.9)),
            max_us=float(histogram.get_max_value()),
        )


class LatencyRecorder:
    """Every request of one process (or, on a master, of all workers merged).

    Safe to call from threads and greenlets. ``clock`` gives wall-clock
    seconds (injectable for tests); it places requests in the per-second
    timeline that every process of a run shares. A worker's recorder
    (``sends_to_master=True``) keeps only what it has not yet drained; the
    others keep the totals.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, sends_to_master: bool = False) -> None:
        self._clock = clock
        self._sends = sends_to_master
        self._base = int(clock())
        self._lock = threading.Lock()
        self._ops: dict[Key, OperationStats] = {}
        self._seconds: dict[int, SecondStats] = {}
        self._pending: dict[Key, array[int]] = {}
        self._pending_l2: dict[int, int] = {}
        self._pending_outcomes: dict[Key, list[int]] = {}  # [hits, misses] counted per key of a batch
        # Recorded but not yet drained to a master (a worker drains; a local run only folds).
        self._undrained_ops: dict[Key, OperationStats] = {}
        self._undrained_seconds: dict[int, SecondStats] = {}
        # Active seconds per user class: accumulated, plus the start of the running interval.
        self._active_s: dict[str, float] = {}
        self._undrained_active: dict[str, float] = {}
        self._running: dict[str, tuple[int, float]] = {}  # class -> (users running, since)
        # On a master: active seconds reported by each worker, per class.
        self._worker_active: dict[str, dict[str, float]] = {}

    # -- recording -------------------------------------------------------------------

    def record(
        self,
        user: str,
        operation: str,
        micros: float,
        *,
        error: bool = False,
        hit: bool | None = None,
    ) -> None:
        """One request: its latency in µs, whether it failed, and for reads whether it hit."""
        if not micros >= 0:  # also catches NaN: a clock bug, never a latency
            raise ValueError(f"latency must be a non-negative number of microseconds, got {micros!r}")
        value = min(HIGHEST_US, max(LOWEST_US, round(micros)))
        outcome = _ERROR if error else _NONE if hit is None else _HIT if hit else _MISS
        packed = ((int(self._clock()) - self._base) << _SHIFT_SECOND) | (value << 2) | outcome
        with self._lock:
            pending = self._pending.get((user, operation))
            if pending is None:
                pending = self._pending[(user, operation)] = array("q")
            pending.append(packed)
            if len(pending) >= FOLD_THRESHOLD:
                self._fold()

    def count_outcomes(self, user: str, operation: str, *, hits: int, misses: int) -> None:
        """Hits and misses of a batch call, key by key (its latency is recorded once, with ``hit=None``)."""
        if hits < 0 or misses < 0:
            raise ValueError(f"hits and misses cannot be negative, got {hits} and {misses}")
        with self._lock:
            counts = self._pending_outcomes.setdefault((user, operation), [0, 0])
            counts[0] += hits
            counts[1] += misses

    def record_l2_hits(self, count: int, at: float | None = None) -> None:
        """L2 hits the cache counted since the previous sample (read from ``stats()``)."""
        if count <= 0:
            return
        second = int(self._clock() if at is None else at)
        with self._lock:
            self._pending_l2[second] = self._pending_l2.get(second, 0) + count

    def user_started(self, user: str) -> None:
        """A user of class ``user`` started: its class counts as active from now."""
        now = self._clock()
        with self._lock:
            running, since = self._running.get(user, (0, now))
            self._running[user] = (running + 1, since if running else now)

    def user_stopped(self, user: str) -> None:
        """A user of class ``user`` stopped; the class stays active while others run."""
        now = self._clock()
        with self._lock:
            running, since = self._running.get(user, (0, now))
            if running > 1:
                self._running[user] = (running - 1, since)
                return
            self._running.pop(user, None)
            if running == 1:
                self._add_active(user, now - since)

    def _add_active(self, user: str, seconds: float) -> None:
        self._active_s[user] = self._active_s.get(user, 0.0) + seconds
        self._undrained_active[user] = self._undrained_active.get(user, 0.0) + seconds

    # -- folding pending records into histograms -------------------------------------

    def fold(self) -> None:
        """Add every pending record to the histograms (the harness calls this each second)."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        seconds_table = self._undrained_seconds if self._sends else self._seconds
        pending, self._pending = self._pending, {}
        for key, records in pending.items():
            packed = np.frombuffer(records, dtype=np.int64)
            outcome = packed & 3
            values = (packed >> 2) & ((1 << _VALUE_BITS) - 1)
            seconds = (packed >> _SHIFT_SECOND) + self._base
            delta = OperationStats(
                count=len(packed),
                errors=int(np.count_nonzero(outcome == _ERROR)),
                hits=int(np.count_nonzero(outcome == _HIT)),
                misses=int(np.count_nonzero(outcome == _MISS)),
            )
            _record_bulk(delta.histogram, values)
            _add_op(self._undrained_ops if self._sends else self._ops, key, delta)
            for second in np.unique(seconds):
                mask = seconds == second
                in_second = values[mask]
                bucket = SecondStats(
                    count=len(in_second), errors=int(np.count_nonzero(outcome[mask] == _ERROR))
                )
                _record_bulk(bucket.histogram, in_second)
                _add_second(seconds_table, int(second), bucket)
        outcomes, self._pending_outcomes = self._pending_outcomes, {}
        for key, (hits, misses) in outcomes.items():
            _add_op(self._undrained_ops if self._sends else self._ops, key, OperationStats(hits=hits, misses=misses))
        pending_l2, self._pending_l2 = self._pending_l2, {}
        for second, hits in pending_l2.items():
            _add_second(seconds_table, second, SecondStats(l2_hits=hits))

    # -- merging across processes ----------------------------------------------------

    def drain(self) -> dict[str, Any]:
        """What was recorded since the previous drain, as plain data a Locust message carries.

        Only a recorder built with ``sends_to_master=True`` drains. Active
        time of classes still running is cut at now and carried on, so every
        drain reports only seconds it has not reported before.
        """
        if not self._sends:
            raise RuntimeError("only a worker's recorder (sends_to_master=True) drains")
        now = self._clock()
        with self._lock:
            self._fold()
            for user, (count, since) in list(self._running.items()):
                self._add_active(user, now - since)
                self._running[user] = (count, now)
            payload = {
                "version": PAYLOAD_VERSION,
                "operations": [
                    [user, op, encode_histogram(s.histogram), s.count, s.errors, s.hits, s.misses]
                    for (user, op), s in self._undrained_ops.items()
                ],
                "seconds": [
                    [second, encode_histogram(b.histogram), b.count, b.errors, b.l2_hits]
                    for second, b in self._undrained_seconds.items()
                ],
                "active_s": dict(self._undrained_active),
            }
            self._undrained_ops = {}
            self._undrained_seconds = {}
            self._undrained_active = {}
        return payload

    def merge(self, payload: Mapping[str, Any], source: str = "") -> None:
        """Add a worker's drain payload: histograms bucket by bucket, counts summed.

        Active time is summed per ``source`` (a worker id): workers run their
        users at the same time, so a class's active time is the longest any
        one process reports, not their sum.
        """
        if payload.get("version") != PAYLOAD_VERSION:
            raise ValueError(
                f"load payload version {payload.get('version')!r} is not {PAYLOAD_VERSION}: "
                "the master and its workers run different qcache releases"
            )
        operations = [
            ((str(user), str(op)), OperationStats(decode_histogram(encoded), count, errors, hits, misses))
            for user, op, encoded, count, errors, hits, misses in payload["operations"]
        ]
        seconds = [
            (int(second), SecondStats(decode_histogram(encoded, TIMELINE_DIGITS), count, errors, l2_hits))
            for second, encoded, count, errors, l2_hits in payload["seconds"]
        ]
        with self._lock:
            for key, stats in operations:
                _add_op(self._ops, key, stats)
            for second, bucket in seconds:
                _add_second(self._seconds, second, bucket)
            per_class = self._worker_active.setdefault(source, {})
            for user, active in payload["active_s"].items():
                per_class[str(user)] = per_class.get(str(user), 0.0) + float(active)

    # -- reading ---------------------------------------------------------------------

    def operations(self) -> list[tuple[Key, OperationStats]]:
        """Every (user class, operation) recorded or merged, in a stable order."""
        with self._lock:
            self._fold()
            return sorted(self._ops.items())

    def user_summary(self, user: str) -> Summary:
        """All operations of one user class together."""
        merged = new_histogram()
        for (cls, _), stats in self.operations():
            if cls == user:
                merged.add(stats.histogram)
        return Summary.of(merged)

    def timeline(self) -> list[tuple[int, SecondStats]]:
        """The per-second buckets (epoch second, stats), oldest first."""
        with self._lock:
            self._fold()
            return sorted(self._seconds.items())

    def active_seconds(self) -> dict[str, float]:
        """Seconds during which each user class had users running, in any one process."""
        now = self._clock()
        with self._lock:
            local = dict(self._active_s)
            for user, (_, since) in self._running.items():
                local[user] = local.get(user, 0.0) + (now - since)
            sources = [local, *self._worker_active.values()]
        out: dict[str, float] = {}
        for per_class in sources:
            for user, seconds in per_class.items():
                out[user] = max(out.get(user, 0.0), seconds)
        return out

    def reset(self) -> None:
        """Forget everything (a new test started in the same Locust process)."""
        with self._lock:
            for table in (
                self._ops, self._seconds, self._pending, self._pending_l2, self._pending_outcomes,
                self._undrained_ops,
                self._undrained_seconds, self._active_s, self._undrained_active, self._running,
                self._worker_active,
            ):
                table.clear()


def _record_bulk(histogram: HdrHistogram, values: np.ndarray[Any, Any]) -> None:
    """Record many microsecond values: one call per distinct value."""
    distinct, counts = np.unique(values, return_counts=True)
    for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
        histogram.record_value(value, count)


def _add_op(table: dict[Key, OperationStats], key: Key, stats: OperationStats) -> None:
    total = table.get(key)
    if total is None:
        table[key] = stats
    else:
        total.add(stats)


def _add_second(table: dict[int, SecondStats], second: int, stats: SecondStats) -> None:
    total = table.get(second)
    if total is None:
        table[second] = stats
    else:
        total.add(stats)


def encode_histogram(histogram: HdrHistogram) -> str:
    """HdrHistogram's compressed, base64 wire form, as text for JSON and msgpack alike."""
    encoded: bytes = histogram.encode()
    return encoded.decode("ascii")


def decode_histogram(encoded: str, digits: int = DIGITS) -> HdrHistogram:
    """A histogram from its wire form, re-based on our range so it adds to local ones."""
    try:
        base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("a load payload carries a histogram that is not valid base64") from exc
    histogram = new_histogram(digits)
    histogram.decode_and_add(encoded.encode("ascii"))
    return histogram
