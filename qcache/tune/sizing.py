"""The L1 size that reaches a hit rate, in entries and in megabytes.

Entries come from a hit-ratio curve (interpolated on log size between the
simulated sizes); megabytes multiply them by the bytes one entry costs in
L1: the value itself plus the per-entry overhead the L1 footprint benchmark
measured (``overhead_bytes_per_entry``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from qcache.tune.curves import Curve
from qcache.tune.errors import TuneError

MB = 1024 * 1024
#: Per-entry L1 overhead assumed when a run has no footprint measurement (bytes; the
#: reference run measured about 450). Only used when the caller passes no measured value.
FALLBACK_OVERHEAD_BYTES = 512.0


@dataclass(frozen=True)
class SizeForTarget:
    """Entries one policy needs on one workload to reach ``target``, or why it cannot."""

    workload: str
    policy: str
    target: float
    entries: int | None
    why_not: str = ""

    @property
    def reachable(self) -> bool:
        return self.entries is not None

    def megabytes(self, bytes_per_entry: float) -> float | None:
        """The size in MB for entries of ``bytes_per_entry`` each (None when unreachable)."""
        return None if self.entries is None else self.entries * bytes_per_entry / MB


def size_for_hit_rate(curve: Curve, target: float) -> SizeForTarget:
    """The smallest size at which ``curve`` reaches ``target``, interpolated between measured sizes.

    Unreachable when even a cache that never evicts stays below the target
    (cold misses alone exceed 1 - target), or when the largest simulated
    size does not get there.
    """
    if not 0 < target <= 1:
        raise TuneError(f"target hit rate must be within (0, 1], got {target!r}")
    if curve.ceiling < target:
        return SizeForTarget(
            curve.workload,
            curve.policy,
            target,
            None,
            f"unreachable: even an unbounded cache hits {curve.ceiling:.2f} "
            f"({curve.unique_keys:,} distinct keys in {curve.requests:,} requests are cold misses)",
        )
    points = list(zip(curve.sizes, curve.hit_rates))
    if points[0][1] >= target:
        return SizeForTarget(curve.workload, curve.policy, target, points[0][0])
    for (s0, r0), (s1, r1) in pairwise(points):
        if r0 < target <= r1:
            t = (target - r0) / (r1 - r0)
            entries = math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
            return SizeForTarget(curve.workload, curve.policy, target, min(s1, math.ceil(entries)))
    if curve.sizes[-1] < curve.unique_keys:
        # Between the largest simulated size and holding every key, which reaches the ceiling.
        s0, r0 = points[-1]
        t = (target - r0) / (curve.ceiling - r0) if curve.ceiling > r0 else 1.0
        entries = math.exp(math.log(s0) + t * (math.log(curve.unique_keys) - math.log(s0)))
        return SizeForTarget(curve.workload, curve.policy, target, min(curve.unique_keys, math.ceil(entries)))
    return SizeForTarget(curve.workload, curve.policy, target, None, f"not reached within {curve.sizes[-1]:,} entries")


def bytes_per_entry(value_bytes: float, overhead_bytes: float | None) -> float:
    """What one L1 entry costs: the value plus the measured per-entry overhead."""
    if value_bytes <= 0:
        raise TuneError(f"value size must be > 0 bytes, got {value_bytes!r}")
    return value_bytes + (FALLBACK_OVERHEAD_BYTES if overhead_bytes is None else overhead_bytes)


def entries_for_budget(budget_mb: float, per_entry: float) -> int:
    """How many entries fit in ``budget_mb`` megabytes."""
    if budget_mb <= 0:
        raise TuneError(f"memory budget must be > 0 MB, got {budget_mb!r}")
    return int(budget_mb * MB // per_entry)
