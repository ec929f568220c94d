"""Counters and bounded latency histograms; pure, no I/O.

Latencies go into a fixed array of log-linear buckets (8 per power of two, so
any percentile is within 12.5% of the truth) instead of a growing list: memory
stays constant however long the process runs, and recording costs a
``bit_length`` and an index. The two hottest paths, an L1 hit of ``get`` and a
``set`` that writes L1 only, skip even that: they are counted exactly without a
lock, and only one call in :data:`LATENCY_SAMPLE_EVERY` is timed (two clock
reads would cost as much as the rest of a hit); see :class:`SampledTally`.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_SUB_BITS = 3
_SUB = 1 << _SUB_BITS
_BUCKETS = (64 - _SUB_BITS) * _SUB
#: Latencies of calls that are all timed (L2 hits, write-back sets) are folded this many at a time.
_FOLD_BATCH = 4096
#: One L1 hit of ``get`` (and one ``set`` that writes L1 only) in this many is timed; a power of two.
LATENCY_SAMPLE_EVERY = 64
#: Timed samples of a :class:`SampledTally` folded at a time (about 16k calls).
_SAMPLE_BATCH = 256


def bucket_of(ns: int) -> int:
    """Bucket index of a duration in nanoseconds."""
    if ns < _SUB:
        return ns if ns > 0 else 0
    length = ns.bit_length()
    return (length - _SUB_BITS) * _SUB + ((ns >> (length - _SUB_BITS - 1)) & (_SUB - 1))


def bucket_bounds(index: int) -> tuple[int, int]:
    """``[low, high)`` nanoseconds covered by bucket ``index``."""
    if index < _SUB:
        return index, index + 1
    length = index // _SUB + _SUB_BITS
    mantissa = index % _SUB
    shift = length - _SUB_BITS - 1
    low = (_SUB + mantissa) << shift
    return low, low + (1 << shift)


class LatencyHistogram:
    """Constant-memory histogram of durations in nanoseconds. Not locked: callers lock."""

    __slots__ = ("counts", "total", "sum_ns", "max_ns")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.total = 0
        self.sum_ns = 0
        self.max_ns = 0

    def record(self, ns: int) -> None:
        self.counts[min(bucket_of(ns), _BUCKETS - 1)] += 1
        self.total += 1
        self.sum_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def record_many(self, samples: list[int], weights: list[int] | None = None) -> None:
        """Record a batch of durations at once, exactly as ``record`` would one by one.

        Vectorised, because the hot paths hand over hundreds of samples at a
        time and a Python-level ``record`` per sample would cost more than the
        operation. ``weights``: how many operations each sample stands for (a
        sampled latency, see :class:`SampledTally`); one each when omitted.
        """
        if not samples:
            return
        values = np.asarray(samples, dtype=np.int64)
        np.maximum(values, 0, out=values)
        # frexp's exponent is the bit length (exact for values below 2**53, i.e. 104 days).
        _, lengths = np.frexp(values.astype(np.float64))
        shift = np.maximum(lengths - (_SUB_BITS + 1), 0)
        index = np.where(values < _SUB, values, (lengths - _SUB_BITS) * _SUB + ((values >> shift) & (_SUB - 1)))
        np.minimum(index, _BUCKETS - 1, out=index)
        if weights is None:
            binned = np.bincount(index)
            total, sum_ns = len(samples), int(values.sum())
        else:
            counted = np.asarray(weights, dtype=np.int64)
            binned = np.bincount(index, weights=counted).astype(np.int64)
            total, sum_ns = int(counted.sum()), int((values * counted).sum())
        counts = self.counts
        for bucket in np.flatnonzero(binned).tolist():
            counts[bucket] += int(binned[bucket])
        self.total += total
        self.sum_ns += sum_ns
        self.max_ns = max(self.max_ns, int(values.max()))

    def percentile(self, fraction: float) -> float:
        """Duration (ns) below which ``fraction`` of the samples fall; 0.0 when empty."""
        if not self.total:
            return 0.0
        rank = max(1, round(fraction * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                low, high = bucket_bounds(index)
                return min((low + high) / 2, float(self.max_ns))
        return float(self.max_ns)  # pragma: no cover - rank never exceeds total

    def nonzero(self) -> dict[str, Any]:
        """JSON-ready: the sum in ns and the non-empty buckets as ``{str(index): count}``."""
        return {
            "sum_ns": self.sum_ns,
            "buckets": {str(index): count for index, count in enumerate(self.counts) if count},
        }

    def summary_ms(self) -> dict[str, float]:
        """Count, mean, p50, p95, p99 and max, in milliseconds."""
        to_ms = 1e-6
        return {
            "count": self.total,
            "mean_ms": (self.sum_ns / self.total * to_ms) if self.total else 0.0,
            "p50_ms": self.percentile(0.50) * to_ms,
            "p95_ms": self.percentile(0.95) * to_ms,
            "p99_ms": self.percentile(0.99) * to_ms,
            "max_ms": self.max_ns * to_ms,
        }


class SampledTally:
    """An exact, lock-free count of a hot operation, with the latency of one call in N.

    Why: an L1 hit costs a few hundred nanoseconds, and timing it (two clock
    reads) plus queueing the latency cost a third of that. So the hot path
    draws a ticket per call instead (``tick``: the next number of an
    :func:`itertools.count`, one C call, atomic under the GIL, so the count is
    exact across threads) and times only about one call in
    :data:`LATENCY_SAMPLE_EVERY`, appending its latency to ``samples``
    (``list.append`` is atomic too). The hot path decides which call to time
    from its ticket: see ``sample_mask``.

    :meth:`take`, under the metrics lock, returns the calls since the last
    take and the samples, each weighted by the calls it stands for: the
    untimed calls are shared out equally among the samples taken with them
    (or given to the latest sample when none came since), so histogram counts
    stay exact and percentiles come from the timed calls.
    """

    __slots__ = ("_drawn", "_latest", "_untimed", "sample_mask", "samples", "tick")

    def __init__(self) -> None:
        self.tick: Callable[[], int] = itertools.count().__next__
        #: A call whose ticket has none of these bits set arms timing of the next call.
        self.sample_mask = LATENCY_SAMPLE_EVERY - 1
        self.samples: list[int] = []
        self._drawn = self.tick()  # the last ticket a take drew; calls draw the ones between
        self._untimed = 0  # calls counted but not yet represented by a sample
        self._latest: int | None = None  # the latest sample taken

    def note(self, ns: int) -> None:
        """One call, timed at ``ns`` nanoseconds (for callers that time every call)."""
        self.tick()
        self.samples.append(ns)

    def take(self) -> tuple[int, list[int], list[int] | None]:
        """``(calls, samples, weights)`` since the last take; the weights add up to the calls they cover.

        ``weights`` is None when each sample stands for one call (every call was timed).

        The caller holds the metrics lock. Calls whose ticket was drawn before
        this take's are all counted here (a call draws its ticket once it has
        happened); a sample may still arrive with the next take.
        """
        ticket = self.tick()
        calls = ticket - self._drawn - 1  # tickets strictly between two takes were drawn by calls
        self._drawn = ticket
        # copy() and the slice deletion are single C calls and appends only extend the end.
        samples = self.samples.copy()
        del self.samples[: len(samples)]
        owed = self._untimed + calls
        weights: list[int] | None
        if samples:
            share, extra = divmod(owed, len(samples))
            weights = None if share == 1 and not extra else [share + 1] * extra + [share] * (len(samples) - extra)
            self._latest = samples[-1]
            self._untimed = 0
        elif owed and self._latest is not None:
            samples, weights = [self._latest], [owed]
            self._untimed = 0
        else:
            weights = []
            self._untimed = owed
        return calls, samples, weights

    def reset(self) -> None:
        """Forget the calls and samples so far (the metrics lock held)."""
        self.take()
        self._untimed = 0


@dataclass
class _Tallies:
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    sets: Counter[str] = field(default_factory=Counter)
    deletes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: dict[str, LatencyHistogram] = field(default_factory=dict)
    # Reads split by outcome ("hit" / "miss"), beside their overall histogram in ``latency``.
    by_outcome: dict[tuple[str, str], LatencyHistogram] = field(default_factory=dict)


class CacheMetrics:
    """Thread-safe tallies for one cache: hits and misses per tier, sets, errors, latencies."""

    enabled = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t = _Tallies()
        # An L1 hit costs under a microsecond; taking the lock and updating a histogram would
        # double it. So L1 hits and L1-only sets are counted lock-free and sampled (SampledTally),
        # and whoever fills a batch of samples, or asks for a snapshot, folds them in under the lock.
        self._l1_hits = SampledTally()
        self._l1_sets = SampledTally()  # sets that only wrote L1 (write-back, memory-only)
        # L2 hits of ``get`` append every latency (the lock costs ~1 us after I/O; a clock read is noise).
        self._l2_hits: list[int] = []
        # (tally, tier, operation): where each sampled tally goes when folded.
        self._tallies = ((self._l1_hits, "hits", "l1", "get"), (self._l1_sets, "sets", "l1", "set"))

    def l1_hit(self, ns: int) -> None:
        """An L1 hit of ``get`` timed at ``ns`` nanoseconds; lock-free (the facade's own path samples)."""
        tally = self._l1_hits
        tally.note(ns)
        if len(tally.samples) >= _FOLD_BATCH:  # every call timed: fold as seldom as the L2 hits do
            self._fold_now()

    def l1_hit_tally(self) -> tuple[SampledTally, int, Callable[[], None]]:
        """The L1 hits' tally, how many samples make a batch, and what folds one.

        For the facade's L1 hot path, which counts and samples inline (see
        :class:`SampledTally`): whoever fills the batch folds it.
        """
        return self._l1_hits, _SAMPLE_BATCH, self._fold_now

    def l1_set_tally(self) -> tuple[SampledTally, int, Callable[[], None]]:
        """:meth:`l1_hit_tally` for sets that write L1 only (the memory-only ``set``)."""
        return self._l1_sets, _SAMPLE_BATCH, self._fold_now

    def _fold_now(self) -> None:
        with self._lock:
            self._fold()

    def l2_hit(self, ns: int) -> None:
        """An L2 hit of ``get`` that took ``ns`` nanoseconds; lock-free like :meth:`l1_hit`."""
        pending = self._l2_hits
        pending.append(ns)
        if len(pending) >= _FOLD_BATCH:
            with self._lock:
                self._fold()

    def l1_set(self, ns: int) -> None:
        """A ``set`` that wrote L1 only, timed at ``ns`` nanoseconds; lock-free like :meth:`l1_hit`."""
        tally = self._l1_sets
        tally.note(ns)
        if len(tally.samples) >= _FOLD_BATCH:  # every call timed: fold as seldom as the L2 hits do
            self._fold_now()

    def _fold(self) -> None:
        """Move counted calls and queued samples into the tallies (caller holds the lock)."""
        t = self._t
        for tally, counter, tier, operation in self._tallies:
            calls, samples, weights = tally.take()
            if calls:
                getattr(t, counter)[tier] += calls
            if samples:
                self._record_many(operation, "hit" if counter == "hits" else None, samples, weights)
        pending = self._l2_hits
        if pending:
            # copy() and the slice deletion are single C calls and appends only ever extend the
            # end, so exactly the copied samples are removed; racing appends wait for the next fold.
            batch = pending.copy()
            del pending[: len(batch)]
            self._record_many("get", "hit", batch)
            t.hits["l2"] += len(batch)

    def hit(self, tier: str, operation: str, ns: int) -> None:
        with self._lock:
            self._t.hits[tier] += 1
            self._observe(operation, ns, "hit")

    def miss(self, operation: str, ns: int) -> None:
        with self._lock:
            self._t.misses["total"] += 1
            self._observe(operation, ns, "miss")

    def tier_miss(self, tier: str) -> None:
        with self._lock:
            self._t.misses[tier] += 1

    def batch_lookup(
        self, l1_hits: int, l2_hits: int, misses: int, ns: int, l1_misses: int = 0, l2_misses: int = 0
    ) -> None:
        """One ``get_many``: hits per tier, keys found nowhere, and misses per tier as ``get`` counts them."""
        with self._lock:
            t = self._t
            t.hits["l1"] += l1_hits
            t.hits["l2"] += l2_hits
            t.misses["total"] += misses
            if l1_misses:
                t.misses["l1"] += l1_misses
            if l2_misses:
                t.misses["l2"] += l2_misses
            self._observe("get_many", ns)

    def stored(self, tier: str, count: int = 1) -> None:
        """Count ``count`` values written to ``tier`` (the call's latency goes through ``timed``)."""
        with self._lock:
            self._t.sets[tier] += count

    def timed(self, operation: str, ns: int) -> None:
        with self._lock:
            self._observe(operation, ns)

    def deleted(self, count: int) -> None:
        with self._lock:
            self._t.deletes += count

    def error(self, kind: str, count: int = 1) -> None:
        """Count ``count`` errors of ``kind`` (one per lost or refused item, not one per batch)."""
        with self._lock:
            self._t.errors[kind] += count

    def _histograms(self, operation: str, outcome: str | None) -> list[LatencyHistogram]:
        """The histograms a latency of ``operation`` goes to: its own, and its outcome's (lock held)."""
        t = self._t
        hist = t.latency.get(operation)
        if hist is None:
            hist = t.latency[operation] = LatencyHistogram()
        if outcome is None:
            return [hist]
        split = t.by_outcome.get((operation, outcome))
        if split is None:
            split = t.by_outcome[(operation, outcome)] = LatencyHistogram()
        return [hist, split]

    def _observe(self, operation: str, ns: int, outcome: str | None = None) -> None:
        """Record one latency (caller holds the lock); a read's also under its outcome."""
        for hist in self._histograms(operation, outcome):
            hist.record(ns)

    def _record_many(
        self, operation: str, outcome: str | None, batch: list[int], weights: list[int] | None = None
    ) -> None:
        """Record folded samples (caller holds the lock), as :meth:`_observe` does one; see ``record_many``."""
        for hist in self._histograms(operation, outcome):
            hist.record_many(batch, weights)

    def reset(self) -> None:
        """Start every count and histogram from zero (``cache.reset_stats()``)."""
        with self._lock:
            for tally, *_ in self._tallies:
                tally.reset()
            self._l2_hits.clear()
            self._t = _Tallies()

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view: counts, hit rate, errors by kind, latency percentiles per operation."""
        with self._lock:
            self._fold()
            t = self._t
            hits = sum(t.hits.values())
            lookups = hits + t.misses["total"]
            return {
                "hits": dict(t.hits),
                "misses": dict(t.misses),
                "lookups": lookups,
                "hit_rate": hits / lookups if lookups else 0.0,
                "sets": dict(t.sets),
                "deletes": t.deletes,
                "errors": dict(t.errors),
                "latency": {op: h.summary_ms() for op, h in sorted(t.latency.items())},
                # Reads' latency by outcome: a miss that goes to Redis and a hit in memory differ by 100x.
                "latency_by_outcome": {
                    op: {outcome: h.summary_ms() for (o, outcome), h in sorted(t.by_outcome.items()) if o == op}
                    for op in sorted({op for op, _ in t.by_outcome})
                },
                # The non-empty buckets (see bucket_bounds), so that two snapshots give a window's percentiles.
                "latency_histograms": {op: h.nonzero() for op, h in sorted(t.latency.items())},
                # Counts are exact; these calls are timed one in N, each timed one standing for the rest.
                "latency_sampling": {"get_l1_hit": LATENCY_SAMPLE_EVERY, "set_l1_only": LATENCY_SAMPLE_EVERY},
            }


class CountsOnlyMetrics(CacheMetrics):
    """What ``CACHE_PERFORMANCE_MONITORING=false`` installs: counts kept, latencies not recorded."""

    def _observe(self, operation: str, ns: int, outcome: str | None = None) -> None:
        pass

    def _record_many(
        self, operation: str, outcome: str | None, batch: list[int], weights: list[int] | None = None
    ) -> None:
        pass


class NullMetrics(CacheMetrics):
    """What ``CACHE_METRICS_ENABLED=false`` installs: every record is a no-op.

    Errors are still counted: they are rare, and health checks depend on them.
    """

    enabled = False

    def l1_hit(self, ns: int) -> None:
        pass

    def l1_hit_tally(self) -> tuple[SampledTally, int, Callable[[], None]]:
        unread = SampledTally()  # counted into nothing: no snapshot ever takes from it
        return unread, _SAMPLE_BATCH, unread.samples.clear

    def l1_set_tally(self) -> tuple[SampledTally, int, Callable[[], None]]:
        return self.l1_hit_tally()

    def l2_hit(self, ns: int) -> None:
        pass

    def l1_set(self, ns: int) -> None:
        pass

    def hit(self, tier: str, operation: str, ns: int) -> None:
        pass

    def miss(self, operation: str, ns: int) -> None:
        pass

    def tier_miss(self, tier: str) -> None:
        pass

    def batch_lookup(
        self, l1_hits: int, l2_hits: int, misses: int, ns: int, l1_misses: int = 0, l2_misses: int = 0
    ) -> None:
        pass

    def stored(self, tier: str, count: int = 1) -> None:
        pass

    def timed(self, operation: str, ns: int) -> None:
        pass

    def deleted(self, count: int) -> None:
        pass


def bucket_growth(later: Mapping[str, int], earlier: Mapping[str, int] | None) -> dict[int, int]:
    """Samples added between two ``latency_histograms`` bucket maps (``earlier`` None: all of ``later``)."""
    before = earlier or {}
    grown: dict[int, int] = {}
    for index, count in later.items():
        added = int(count) - int(before.get(index, 0))
        if added > 0:
            grown[int(index)] = added
    return grown


def bucket_percentile_ms(buckets: Mapping[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile (ms) of bucketed samples, None when there are none."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = max(1, round(fraction * total))
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            low, high = bucket_bounds(index)
            return (low + high) / 2 / 1e6
    return None  # pragma: no cover - rank never exceeds total


@dataclass(frozen=True)
class Totals:
    """The cumulative counts of a ``stats()`` snapshot that windows are computed from."""

    lookups: int
    hits: int
    errors: int
    operations: int  # lookups, sets and deletes

    @classmethod
    def of(cls, stats: Mapping[str, Any]) -> Totals:
        lookups = int(stats.get("lookups", 0))
        return cls(
            lookups=lookups,
            hits=sum(int(v) for v in stats.get("hits", {}).values()),
            errors=sum(int(v) for v in stats.get("errors", {}).values()),
            operations=lookups + sum(int(v) for v in stats.get("sets", {}).values()) + int(stats.get("deletes", 0)),
        )


def histogram_buckets(stats: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """The ``latency_histograms`` buckets of a ``stats()`` snapshot, per operation."""
    return {op: dict(h.get("buckets", {})) for op, h in stats.get("latency_histograms", {}).items()}


@dataclass
class Window:
    """What happened between two snapshots of one process: counts and every operation's latency buckets."""

    lookups: int = 0
    hits: int = 0
    errors: int = 0
    operations: int = 0
    buckets: dict[int, int] = field(default_factory=dict)

    @classmethod
    def between(
        cls,
        later: Totals,
        later_buckets: Mapping[str, Mapping[str, int]],
        earlier: Totals | None,
        earlier_buckets: Mapping[str, Mapping[str, int]] | None,
    ) -> Window:
        """The difference of two snapshots; a counter that went down means a restart or a reset, so the
        later snapshot is the whole window (all counters at once)."""
        restarted = earlier is not None and (
            later.lookups < earlier.lookups or later.hits < earlier.hits
            or later.errors < earlier.errors or later.operations < earlier.operations
        )
        base = None if earlier is None or restarted else earlier
        window = cls(
            lookups=later.lookups - (base.lookups if base else 0),
            hits=later.hits - (base.hits if base else 0),
            errors=later.errors - (base.errors if base else 0),
            operations=later.operations - (base.operations if base else 0),
        )
        for op, buckets in later_buckets.items():
            before = None if base is None or earlier_buckets is None else earlier_buckets.get(op)
            for index, count in bucket_growth(buckets, before).items():
                window.buckets[index] = window.buckets.get(index, 0) + count
        return window

    def add(self, other: Window) -> None:
        self.lookups += other.lookups
        self.hits += other.hits
        self.errors += other.errors
        self.operations += other.operations
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
