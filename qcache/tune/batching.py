"""Batch size for ``get_many``/``set_many`` and the connection pool size, from their sweeps.

Batch: the smallest measured batch whose cost per key is within
:data:`NEAR_BEST` of the best, and whose one call stays under the latency
target: past it, bigger batches save little per key but hold a connection
(and the caller) longer.

Pool: at the workload's concurrency (the nearest thread count measured),
the smallest pool whose throughput is within :data:`NEAR_BEST` of the best
pool and whose p99 meets the latency target, and never fewer than
:data:`MIN_POOL` connections for concurrent callers: with one, a single slow
reply (a large value, a blocked server) stalls every caller, which a short
measurement of small values does not show. The knee is the pool size past
which throughput stops growing by :data:`NEAR_BEST`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from qcache.tune.errors import TuneError
from qcache.tune.evidence import BatchSample, PoolSample

NEAR_BEST = 0.10
MIN_POOL = 2


@dataclass(frozen=True)
class BatchChoice:
    size: int
    us_per_key: float
    best_us_per_key: float
    call_ms: float
    reason: str
    rows: tuple[BatchSample, ...] = ()  # the sweep the choice was made from


@dataclass(frozen=True)
class PoolChoice:
    pool: int
    threads: int
    throughput_ops: float
    p99_ms: float
    knee: int | None
    reason: str
    rows: tuple[PoolSample, ...] = ()  # the sweep at ``threads``, by pool size


def choose_batch_size(samples: Sequence[BatchSample], latency_target_ms: float, op: str = "get_many") -> BatchChoice:
    """The batch size for ``op`` (``get_many`` by default: reads are what batches mostly serve)."""
    rows = sorted((s for s in samples if s.op == op), key=lambda s: s.keys)
    if not rows:
        raise TuneError(f"no {op} batch measurements")
    best = min(s.us_per_key for s in rows)
    within = [s for s in rows if s.us / 1000 <= latency_target_ms] or rows[:1]
    chosen = next((s for s in within if s.us_per_key <= best * (1 + NEAR_BEST)), within[-1])
    return BatchChoice(
        chosen.keys,
        chosen.us_per_key,
        best,
        chosen.us / 1000,
        f"{op} of {chosen.keys} keys costs {chosen.us_per_key:.2f} us per key "
        f"(best measured {best:.2f}); one call takes {chosen.us / 1000:.2f} ms "
        f"against a {latency_target_ms:g} ms target",
        tuple(rows),
    )


def pool_knee(rows: Sequence[PoolSample]) -> int | None:
    """The pool size after which one more step of the sweep adds less than NEAR_BEST throughput."""
    ordered = sorted(rows, key=lambda s: s.pool)
    for current, bigger in pairwise(ordered):
        if bigger.throughput_ops < current.throughput_ops * (1 + NEAR_BEST):
            return current.pool
    return ordered[-1].pool if ordered else None


def choose_pool_size(samples: Sequence[PoolSample], concurrency: int, latency_target_ms: float) -> PoolChoice:
    """The pool size for ``concurrency`` threads calling the cache at once."""
    if concurrency < 1:
        raise TuneError(f"concurrency must be >= 1, got {concurrency}")
    if not samples:
        raise TuneError("no pool measurements")
    threads = min({s.threads for s in samples}, key=lambda t: (abs(t - concurrency), -t))
    rows = sorted((s for s in samples if s.threads == threads), key=lambda s: s.pool)
    meeting = [s for s in rows if s.p99_ms <= latency_target_ms] or rows
    if threads > 1:
        meeting = [s for s in meeting if s.pool >= MIN_POOL] or meeting
    best = max(s.throughput_ops for s in meeting)
    chosen = next(s for s in meeting if s.throughput_ops >= best * (1 - NEAR_BEST))
    knee = pool_knee(rows)
    return PoolChoice(
        chosen.pool,
        threads,
        chosen.throughput_ops,
        chosen.p99_ms,
        knee,
        f"with {threads} concurrent threads a pool of {chosen.pool} gives "
        f"{chosen.throughput_ops:,.0f} gets/s (best {best:,.0f}) at p99 {chosen.p99_ms:.2f} ms; "
        f"throughput stops growing past {knee} connections",
        tuple(rows),
    )
