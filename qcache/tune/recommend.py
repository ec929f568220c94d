"""The recommended configuration for a stated workload, each setting with the figure that drove it.

:func:`recommend` strings the decisions together (policy, L1 size, level,
write strategy, compression, batch and pool size) over an
:class:`~qcache.tune.evidence.Evidence` and hit-ratio curves; the result
renders as a ``.env`` file (:mod:`qcache.tune.envfile`). A suite missing
from the evidence leaves its settings at the configuration's defaults and
says so in :attr:`Recommendation.notes`, rather than guessing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from qcache.tune.batching import (
    BatchChoice,
    PoolChoice,
    choose_batch_size,
    choose_pool_size,
)
from qcache.tune.compression import CompressionChoice, choose_compression
from qcache.tune.curves import Curve, by_workload
from qcache.tune.errors import TuneError
from qcache.tune.evidence import Evidence
from qcache.tune.policy import PolicyChoice, choose_policy
from qcache.tune.sizing import (
    MB,
    SizeForTarget,
    bytes_per_entry,
    entries_for_budget,
    size_for_hit_rate,
)
from qcache.tune.thresholds import SEED_THRESHOLDS
from qcache.tune.writes import StrategyChoice, choose_level, choose_write_strategy


@dataclass(frozen=True)
class Workload:
    """What the user states about their service."""

    memory_budget_mb: float = 256.0
    read_ratio: float = 0.9
    value_bytes: int = 1024
    latency_target_ms: float = 10.0
    concurrency: int = 4
    value_kind: str = "search"  # a payload kind the compression suite measures: search, text, embedding

    def __post_init__(self) -> None:
        problems = []
        if not self.memory_budget_mb > 0:
            problems.append(f"memory budget must be > 0 MB, got {self.memory_budget_mb!r}")
        if not 0 <= self.read_ratio <= 1:
            problems.append(f"read ratio must be within 0..1, got {self.read_ratio!r}")
        if self.value_bytes <= 0:
            problems.append(f"value size must be > 0 bytes, got {self.value_bytes!r}")
        if not self.latency_target_ms > 0:
            problems.append(f"latency target must be > 0 ms, got {self.latency_target_ms!r}")
        if self.concurrency < 1:
            problems.append(f"concurrency must be >= 1, got {self.concurrency!r}")
        if problems:
            raise TuneError("; ".join(problems))


@dataclass(frozen=True)
class Choice:
    """One setting: its variable, value, the figure that decided it, and why."""

    setting: str
    value: str
    figure: str  # the number that drove the choice, with its unit or meaning
    reason: str


@dataclass(frozen=True)
class Recommendation:
    """The settings, and the decisions behind them (None where the evidence had no suite to decide from)."""

    workload: Workload
    choices: tuple[Choice, ...]
    sizes: tuple[SizeForTarget, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    policy: PolicyChoice | None = None
    strategy: StrategyChoice | None = None
    compression: CompressionChoice | None = None
    batch: BatchChoice | None = None
    pool: PoolChoice | None = None

    def value(self, setting: str) -> str | None:
        """The recommended value of ``setting`` (None when it is left at the default)."""
        return next((c.value for c in self.choices if c.setting == setting), None)

    def settings(self) -> dict[str, str]:
        return {c.setting: c.value for c in self.choices}


#: When a healthy hit rate is out of reach, size L1 for this close to the workload's ceiling instead.
NEAR_CEILING = 0.02


def _l1_choices(
    workload: Workload, evidence: Evidence, curves: Sequence[Curve]
) -> tuple[list[Choice], list[SizeForTarget], float, list[str], PolicyChoice]:
    """Policy and size; returns the choices, sizes for 0.6 and 0.8, and the L1 hit rate at the chosen size.

    Policies are compared at the middle simulated size that fits the budget
    (where policies differ most; at a size holding every key they all tie).
    L1 is sized for a healthy hit rate, or for NEAR_CEILING under the
    workload's ceiling when a healthy rate is out of reach, within the budget.
    """
    per_entry = bytes_per_entry(workload.value_bytes, evidence.l1_overhead_bytes)
    budget = entries_for_budget(workload.memory_budget_mb, per_entry)
    if budget < 1:
        raise TuneError(f"a {workload.memory_budget_mb:g} MB budget holds no {per_entry:.0f} B entry")
    grouped = by_workload(curves)
    notes: list[str] = []
    judge: dict[str, int] = {}
    for name, group in grouped.items():
        fitting = [s for s in group[0].sizes if s <= budget] or [group[0].sizes[0]]
        judge[name] = fitting[len(fitting) // 2]
    policy = choose_policy(curves, judge, evidence.policy_get_ns)
    chosen_curves = [c for c in curves if c.policy == policy.policy]
    sizes = [
        size_for_hit_rate(c, target)
        for c in chosen_curves
        for target in (SEED_THRESHOLDS.hit_rate_alert, SEED_THRESHOLDS.healthy_hit_rate)
    ]
    needed = 0
    for curve in chosen_curves:
        target = min(SEED_THRESHOLDS.healthy_hit_rate, curve.ceiling - NEAR_CEILING)
        size = size_for_hit_rate(curve, target) if target > 0 else None
        if target < SEED_THRESHOLDS.healthy_hit_rate:
            notes.append(
                f"{curve.workload}: a {SEED_THRESHOLDS.healthy_hit_rate:g} hit rate is out of reach "
                f"(an unbounded cache hits {curve.ceiling:.2f}); sized for {target:.2f} instead"
            )
        needed = max(needed, size.entries if size is not None and size.entries is not None else budget)
    entries = min(budget, needed)
    if needed > budget:
        notes.append(f"the hit rate aimed at needs {needed:,} entries; the budget holds {budget:,}")
    size_figure = f"{needed:,} entries needed, {budget:,} fit the budget"
    judged = {name: min(entries, group[0].unique_keys) for name, group in grouped.items()}
    rates = [c.hit_rate_at(judged[c.workload]) for c in chosen_curves]
    l1_hit = sum(rates) / len(rates)
    memory_mb = max(1, math.ceil(entries * per_entry / MB))
    judged_text = ", ".join(f"{size:,}" for size in judge.values())
    choices = [
        Choice(
            "MEMORY_CACHE_EVICTION_POLICY",
            policy.policy,
            f"hit rate {policy.hit_rate:.3f} vs {policy.baseline} {policy.baseline_hit_rate or 0:.3f}",
            policy.reason + f" (compared at {judged_text} entries)",
        ),
        Choice(
            "MEMORY_CACHE_MAX_SIZE",
            str(entries),
            size_figure,
            f"{policy.policy} at {entries:,} entries hits {l1_hit:.3f} on the workloads simulated",
        ),
        Choice(
            "MEMORY_CACHE_MAX_MEMORY_MB",
            str(memory_mb),
            f"{per_entry:.0f} B per entry",
            f"{entries:,} entries x ({workload.value_bytes:,} B value + "
            f"{per_entry - workload.value_bytes:.0f} B measured L1 overhead), within the "
            f"{workload.memory_budget_mb:g} MB budget",
        ),
    ]
    return choices, sizes, l1_hit, notes, policy


def _write_choices(
    evidence: Evidence, workload: Workload, notes: list[str]
) -> tuple[list[Choice], StrategyChoice | None]:
    if not evidence.op_times:
        notes.append("write strategies not measured in this run: CACHE_WRITE_STRATEGY left at its default")
        return [], None
    strategy = choose_write_strategy(evidence.op_times, workload.read_ratio)
    back, through = strategy.cost("WRITE_BACK"), strategy.cost("WRITE_THROUGH")
    figure = (
        f"{through.us_per_op:.1f} vs {back.us_per_op:.1f} us/op (write-through vs write-back)"
        if back and through
        else "write-through measured alone"
    )
    return [Choice("CACHE_WRITE_STRATEGY", strategy.strategy, figure, strategy.reason)], strategy


def _compression_choices(
    evidence: Evidence, workload: Workload, notes: list[str]
) -> tuple[list[Choice], CompressionChoice | None]:
    if not evidence.codec:
        notes.append("compression not measured in this run: compression settings left at their defaults")
        return [], None
    compression = choose_compression(evidence.codec, workload.value_kind, evidence.l2_get_us, workload.value_bytes)
    enabled = "true" if compression.enabled else "false"
    choices = [Choice("CACHE_COMPRESSION_ENABLED", enabled, compression.figure, compression.reason)]
    if compression.enabled and compression.algorithm and compression.threshold_bytes:
        threshold = compression.threshold_bytes
        choices += [
            Choice(
                "CACHE_COMPRESSION_ALGORITHM",
                compression.algorithm,
                compression.figure,
                "the algorithm storing the fewest bytes at your value size (the cheaper one on a near tie)",
            ),
            Choice(
                "CACHE_COMPRESSION_THRESHOLD",
                str(threshold),
                f"pays from {threshold:,} B",
                f"smaller values are stored as they are: compression pays from {threshold:,} B on",
            ),
        ]
        if workload.value_bytes < threshold:
            notes.append(
                f"values of {workload.value_bytes:,} B are under the compression threshold: "
                "they are stored uncompressed"
            )
    return choices, compression


def _batch_choices(evidence: Evidence, workload: Workload, notes: list[str]) -> tuple[list[Choice], BatchChoice | None]:
    if not evidence.batches:
        notes.append("batches not measured in this run: CACHE_BATCH_SIZE left at its default")
        return [], None
    batch = choose_batch_size(evidence.batches, workload.latency_target_ms)
    return [Choice("CACHE_BATCH_SIZE", str(batch.size), f"{batch.us_per_key:.2f} us per key", batch.reason)], batch


def _pool_choices(evidence: Evidence, workload: Workload, notes: list[str]) -> tuple[list[Choice], PoolChoice | None]:
    if not evidence.pools:
        notes.append("pool sizes not measured in this run: pool settings left at their defaults")
        return [], None
    pool = choose_pool_size(evidence.pools, workload.concurrency, workload.latency_target_ms)
    figure = f"{pool.throughput_ops:,.0f} gets/s, p99 {pool.p99_ms:.2f} ms"
    cap = Choice(
        "REDIS_MAX_CONNECTIONS",
        str(max(pool.pool, workload.concurrency)),
        figure,
        "the pool's cap: at least the pool and the concurrency, so no caller queues behind a connection it cannot get",
    )
    return [Choice("CACHE_CONNECTION_POOL_SIZE", str(pool.pool), figure, pool.reason), cap], pool


def recommend(workload: Workload, evidence: Evidence, curves: Sequence[Curve]) -> Recommendation:
    """Every choice the evidence supports, for ``workload``."""
    if not curves:
        raise TuneError("no hit-ratio curves: simulate a trace or a synthetic workload first")
    choices, sizes, l1_hit, notes, policy = _l1_choices(workload, evidence, curves)
    level = choose_level(l1_hit, evidence.l1_get_us, evidence.l2_get_us)
    choices.append(Choice("CACHE_LEVEL", level.level, f"L1 hit rate {l1_hit:.3f}", level.reason))
    write, strategy = _write_choices(evidence, workload, notes)
    squeeze, compression = _compression_choices(evidence, workload, notes)
    batching, batch = _batch_choices(evidence, workload, notes)
    pooling, pool = _pool_choices(evidence, workload, notes)
    choices += [*write, *squeeze, *batching, *pooling]
    choices.append(
        Choice(
            "CACHE_LATENCY_THRESHOLD",
            f"{workload.latency_target_ms:g}",
            f"{workload.latency_target_ms:g} ms",
            "the stated latency target becomes the alert threshold",
        )
    )
    return Recommendation(
        workload, tuple(choices), tuple(sizes), tuple(notes), policy, strategy, compression, batch, pool
    )
