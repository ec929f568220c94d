"""Which eviction policy to run in L1, and by how much it beats the configuration's default (LRU).

The policy with the highest hit rate at the chosen L1 size wins, averaged
over the workloads given; a policy within :data:`TIE` of it that is cheaper
per hit (the per-policy get benchmark) wins instead, since a hit-rate
difference that small does not pay for a slower hit. Belady's optimum is
reported as the ceiling, never chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qcache.sim import BELADY
from qcache.tune.curves import Curve, by_workload
from qcache.tune.errors import TuneError

#: Hit-rate difference (a fraction) below which two policies count as tied.
TIE = 0.005
#: ``MEMORY_CACHE_EVICTION_POLICY``'s default in the configuration (what users get untuned).
CONFIG_DEFAULT_POLICY = "LRU"


@dataclass(frozen=True)
class PolicyChoice:
    """The chosen policy with the figures behind it."""

    policy: str
    hit_rate: float  # mean over the workloads, at each workload's size
    baseline: str  # the configuration's default policy
    baseline_hit_rate: float | None
    belady_hit_rate: float | None
    rates: Mapping[str, float]  # every policy's mean hit rate (Belady left out)
    get_ns: float | None
    tied_with: str | None = None  # a policy with a (barely) higher hit rate that costs more per hit

    @property
    def margin(self) -> float | None:
        """Hit-rate points won over the configuration's default (None without it)."""
        return None if self.baseline_hit_rate is None else self.hit_rate - self.baseline_hit_rate

    @property
    def reason(self) -> str:
        parts = [f"{self.policy} hits {self.hit_rate:.3f}"]
        if self.margin is not None and self.policy != self.baseline:
            parts.append(
                f"{self.margin * 100:+.1f} points over {self.baseline} (the config default, "
                f"{self.baseline_hit_rate:.3f})"
            )
        if self.belady_hit_rate is not None:
            parts.append(f"Belady's optimum {self.belady_hit_rate:.3f}")
        if self.get_ns is not None:
            parts.append(f"{self.get_ns:.0f} ns per L1 hit")
        if self.tied_with is not None:
            parts.append(
                f"{self.tied_with} hits {self.rates[self.tied_with]:.3f}, within {TIE * 100:g} points, "
                "but costs more per hit"
            )
        return "; ".join(parts)


def choose_policy(
    curves: Sequence[Curve],
    sizes: Mapping[str, int],
    get_ns: Mapping[str, float] | None = None,
    baseline: str = CONFIG_DEFAULT_POLICY,
) -> PolicyChoice:
    """Pick the policy for ``curves``, each workload judged at ``sizes[workload]`` entries.

    A workload missing from ``sizes`` is judged at its middle simulated size.
    """
    grouped = by_workload(curves)
    if not grouped:
        raise TuneError("no hit-ratio curves to choose a policy from")
    totals: dict[str, list[float]] = {}
    for workload, group in grouped.items():
        size = sizes.get(workload, group[0].sizes[len(group[0].sizes) // 2])
        for curve in group:
            totals.setdefault(curve.policy, []).append(curve.hit_rate_at(size))
    rates = {p: sum(v) / len(v) for p, v in totals.items() if len(v) == len(grouped)}
    belady = rates.pop(BELADY, None)
    if not rates:
        raise TuneError("no policy was simulated on every workload")
    top = max(rates, key=lambda p: rates[p])
    costs = get_ns or {}
    best = top
    tied = [p for p in rates if rates[top] - rates[p] <= TIE and p in costs]
    if top in costs and tied:
        best = min(tied, key=lambda p: (costs[p], -rates[p]))
    return PolicyChoice(
        best, rates[best], baseline, rates.get(baseline), belady, rates, costs.get(best), top if best != top else None
    )
