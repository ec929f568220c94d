"""Write strategy and cache level from the measured per-operation times and the read/write mix.

Every strategy is priced at the workload's mix (reads x get + writes x set,
at level BOTH). Write-through is kept unless the workload is write-heavy
(at least :data:`WRITE_HEAVY` of operations are writes) and write-back is at
least :data:`MIN_SPEEDUP` times faster on that mix: write-back answers from
L1 and flushes to Redis later, so writes still pending when a process dies
are lost and other processes see a write only after the flush. That price is
worth paying only where writes dominate the time. Write-around (Redis only,
L1 filled by the next read) is priced and shown, not chosen automatically.

The level is BOTH when L1 serves a useful share of reads at the chosen size
(:data:`MIN_L1_HIT_RATE`), L2_REDIS otherwise: an L1 that rarely hits costs
memory and a copy per write for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qcache.tune.errors import TuneError
from qcache.tune.evidence import OpTime

WRITE_HEAVY = 0.3
MIN_SPEEDUP = 2.0
MIN_L1_HIT_RATE = 0.05
STRATEGIES = ("WRITE_THROUGH", "WRITE_BACK", "WRITE_AROUND")
#: What each strategy risks, for the report and the notebooks.
DURABILITY = {
    "WRITE_THROUGH": "durable: set() returns once Redis has the value; every process sees it at once",
    "WRITE_BACK": "set() returns from L1; writes pending in the queue are lost if the process dies, "
    "and other processes see a write only after the flush",
    "WRITE_AROUND": "durable: the value goes to Redis only; the next read pays an L2 round trip to fill L1",
}


@dataclass(frozen=True)
class MixCost:
    """One strategy at level BOTH priced at a read/write mix."""

    strategy: str
    get_us: float
    set_us: float
    read_ratio: float

    @property
    def us_per_op(self) -> float:
        return self.read_ratio * self.get_us + (1 - self.read_ratio) * self.set_us


@dataclass(frozen=True)
class StrategyChoice:
    strategy: str
    costs: tuple[MixCost, ...]
    read_ratio: float
    reason: str

    def cost(self, strategy: str) -> MixCost | None:
        return next((c for c in self.costs if c.strategy == strategy), None)


@dataclass(frozen=True)
class LevelChoice:
    level: str
    l1_hit_rate: float
    reason: str


def _check_ratio(read_ratio: float) -> None:
    if not 0 <= read_ratio <= 1:
        raise TuneError(f"read ratio must be within 0..1, got {read_ratio!r}")


def mix_costs(times: Sequence[OpTime], read_ratio: float, level: str = "BOTH") -> list[MixCost]:
    """Each strategy with both a get and a set measured at ``level``, priced at ``read_ratio``."""
    _check_ratio(read_ratio)
    by_key = {(t.strategy, t.level, t.op): t.us for t in times}
    costs = []
    for strategy in STRATEGIES:
        get_us, set_us = by_key.get((strategy, level, "get")), by_key.get((strategy, level, "set"))
        if get_us is not None and set_us is not None:
            costs.append(MixCost(strategy, get_us, set_us, read_ratio))
    return costs


def choose_write_strategy(times: Sequence[OpTime], read_ratio: float) -> StrategyChoice:
    """Write-through unless writes dominate and write-back is at least MIN_SPEEDUP faster."""
    costs = mix_costs(times, read_ratio)
    by_name = {c.strategy: c for c in costs}
    through, back = by_name.get("WRITE_THROUGH"), by_name.get("WRITE_BACK")
    if through is None:
        raise TuneError("no write-through get and set measured at level BOTH")
    writes = 1 - read_ratio
    if back is None:
        return StrategyChoice(
            "WRITE_THROUGH",
            tuple(costs),
            read_ratio,
            "write-back was not measured; write-through is the durable default",
        )
    speedup = through.us_per_op / back.us_per_op if back.us_per_op > 0 else float("inf")
    figures = (
        f"at {writes:.0%} writes write-back costs {back.us_per_op:.1f} us/op, "
        f"write-through {through.us_per_op:.1f} us/op ({speedup:.1f}x)"
    )
    if writes >= WRITE_HEAVY and speedup >= MIN_SPEEDUP:
        return StrategyChoice(
            "WRITE_BACK",
            tuple(costs),
            read_ratio,
            f"{figures}; writes dominate, so the speed is worth the risk ({DURABILITY['WRITE_BACK']})",
        )
    why = (
        f"writes are under {WRITE_HEAVY:.0%} of operations"
        if writes < WRITE_HEAVY
        else f"write-back is less than {MIN_SPEEDUP:g}x faster"
    )
    return StrategyChoice(
        "WRITE_THROUGH",
        tuple(costs),
        read_ratio,
        f"{figures}; {why}, so durability wins ({DURABILITY['WRITE_THROUGH']})",
    )


def choose_level(l1_hit_rate: float, l1_get_us: float | None, l2_get_us: float | None) -> LevelChoice:
    """BOTH when L1 would serve at least MIN_L1_HIT_RATE of reads, else Redis only."""
    expected = ""
    if l1_get_us is not None and l2_get_us is not None:
        both = l1_hit_rate * l1_get_us + (1 - l1_hit_rate) * l2_get_us
        expected = (
            f"; expected read {both:.1f} us with L1 in front against {l2_get_us:.1f} us "
            f"from Redis alone (an L1 hit {l1_get_us:.2f} us)"
        )
    if l1_hit_rate >= MIN_L1_HIT_RATE:
        return LevelChoice("BOTH", l1_hit_rate, f"L1 serves {l1_hit_rate:.0%} of reads at the chosen size{expected}")
    return LevelChoice(
        "L2_REDIS",
        l1_hit_rate,
        f"L1 would serve only {l1_hit_rate:.1%} of reads (< {MIN_L1_HIT_RATE:.0%}): not worth its memory{expected}",
    )
