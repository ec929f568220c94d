"""Hit-ratio (miss-ratio) curves per policy, read from a run or computed with the simulator.

A :class:`Curve` is one policy on one workload: hit rates (fractions) at
ascending cache sizes, plus the workload's ceiling (the hit rate of a cache
that never evicts: only cold misses remain). Belady's optimum is a curve
like the others, under the name ``BELADY``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcache.bench import Run
from qcache.memory.policies import available_policies
from qcache.sim import (
    BELADY,
    UNBOUNDED,
    TraceFile,
    Zipf,
    curve_sizes,
    materialize,
    shared_traces_dir,
    simulate,
)
from qcache.sim.sources import Trace, TraceSource
from qcache.tune.errors import TuneError


@dataclass(frozen=True)
class Curve:
    """Hit rate of one policy at several sizes of one workload."""

    workload: str
    policy: str
    sizes: tuple[int, ...]
    hit_rates: tuple[float, ...]
    unique_keys: int
    requests: int
    ceiling: float  # hit rate of an unbounded cache on this workload

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.hit_rates) or not self.sizes:
            raise TuneError(f"curve {self.workload}/{self.policy}: sizes and hit rates must pair up")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise TuneError(f"curve {self.workload}/{self.policy}: sizes must be distinct and ascending")
        if any(not 0.0 <= r <= 1.0 for r in (*self.hit_rates, self.ceiling)):
            raise TuneError(f"curve {self.workload}/{self.policy}: hit rates must be fractions in 0..1")

    def hit_rate_at(self, size: int) -> float:
        """Hit rate at ``size`` entries, interpolated on log(size) between measured points.

        Below the smallest size the first point is returned; past the largest,
        the rate rises on log(size) to the ceiling, reached when every
        distinct key fits.
        """
        if size >= self.unique_keys:
            return self.ceiling
        if size <= self.sizes[0]:
            return self.hit_rates[0]
        for (s0, r0), (s1, r1) in zip(zip(self.sizes, self.hit_rates), zip(self.sizes[1:], self.hit_rates[1:])):
            if s0 <= size <= s1:
                t = (math.log(size) - math.log(s0)) / (math.log(s1) - math.log(s0))
                return r0 + t * (r1 - r0)
        # Past the largest simulated size: towards the ceiling, reached when every key fits.
        s0, r0 = self.sizes[-1], self.hit_rates[-1]
        t = (math.log(size) - math.log(s0)) / (math.log(self.unique_keys) - math.log(s0))
        return r0 + t * max(0.0, self.ceiling - r0)


def curves_from_documents(documents: Iterable[Mapping[str, Any]]) -> list[Curve]:
    """Curves from the simulator's JSON documents (``simulation/sim_*.json`` of a run).

    A document lacking its results, or a row without numbers, is an error
    naming the document: a curve is never drawn from made-up points.
    """
    curves: list[Curve] = []
    for document in documents:
        name = document.get("trace")
        rows = document.get("results")
        unique = document.get("unique_keys")
        if not isinstance(name, str) or not isinstance(rows, list) or not isinstance(unique, int):
            raise TuneError("a simulator document without trace, results or unique_keys")
        points: dict[str, dict[int, float]] = {}
        requests = 0
        for row in rows:
            policy, capacity, ratio = row.get("policy"), row.get("capacity"), row.get("hit_ratio")
            if not isinstance(policy, str) or not isinstance(capacity, int) or not isinstance(ratio, (int, float)):
                raise TuneError(f"simulator results of {name}: a row without policy, capacity or hit_ratio")
            requests = int(row.get("requests", requests))
            points.setdefault(policy, {})[capacity] = float(ratio) / 100.0
        ceiling_points = points.pop(UNBOUNDED, None)
        ceiling = max(ceiling_points.values()) if ceiling_points else 1.0 - unique / max(requests, 1)
        for policy, by_size in sorted(points.items()):
            sizes = sorted(by_size)
            curves.append(
                Curve(name, policy, tuple(sizes), tuple(by_size[s] for s in sizes), unique, requests, ceiling)
            )
    return curves


def curves_from_run(run: Run) -> list[Curve]:
    """The curves the main job's simulator wrote for this run (few sizes; see :func:`compute_curves`)."""
    return curves_from_documents(run.simulations())


def default_policies() -> list[str]:
    """Every registered policy plus Belady's optimum."""
    return [*available_policies(), BELADY]


def compute_curves(
    source: TraceSource | Trace,
    policies: Sequence[str] | None = None,
    *,
    points: int = 10,
    smallest: float = 0.001,
    largest: float = 0.5,
    max_requests: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Curve]:
    """Simulate ``source`` at ``points`` sizes from ``smallest`` to ``largest`` of its distinct keys.

    ``max_requests`` keeps the first requests only (a prefix keeps the
    trace's order, which a sample would not), so a notebook stays quick.
    """
    trace = materialize(source)
    if max_requests is not None and len(trace.keys) > max_requests:
        trace = Trace(f"{trace.name}[:{max_requests}]", trace.keys[:max_requests], trace.credit)
    unique = trace.unique_keys
    low = max(1, round(unique * smallest))
    high = max(low, round(unique * largest))
    sizes = curve_sizes(low, high, points)
    names = list(policies) if policies is not None else default_policies()
    results = simulate(trace, [*names, UNBOUNDED], sizes, progress=progress)
    ceiling = next(r.hits for r in results if r.policy == UNBOUNDED) / len(trace.keys)
    by_policy: dict[str, list[float]] = {}
    for result in results:
        if result.policy != UNBOUNDED:
            by_policy.setdefault(result.policy, []).append(result.hits / result.requests)
    return [
        Curve(trace.name, policy, tuple(sizes), tuple(rates), unique, len(trace.keys), ceiling)
        for policy, rates in by_policy.items()
    ]


#: Names of the shared reference traces (cache2k ``*.trace*``, ARC ``*.lis*``).
SHARED_TRACE_PATTERNS = ("*.trace*", "*.lis*")
#: The synthetic stand-in when there is no trace: web-like skew, as in the main job.
SYNTHETIC_WORKLOAD = Zipf(keys=100_000, requests=300_000, exponent=0.9, seed=1)


def workload_sources(trace: str | Path | None = None) -> list[TraceSource]:
    """What to draw curves on: the given trace, else the shared traces when present, else a synthetic Zipf."""
    if trace:
        path = Path(trace)
        if not path.is_file():
            raise TuneError(f"trace {path} does not exist")
        return [TraceFile(path)]
    folder = shared_traces_dir()
    if folder is not None:
        found = sorted({p for pattern in SHARED_TRACE_PATTERNS for p in folder.glob(pattern) if p.is_file()})
        if found:
            return [TraceFile(p) for p in found]
    return [SYNTHETIC_WORKLOAD]


def by_workload(curves: Iterable[Curve]) -> dict[str, list[Curve]]:
    """Curves grouped by workload, in first-seen order."""
    grouped: dict[str, list[Curve]] = {}
    for curve in curves:
        grouped.setdefault(curve.workload, []).append(curve)
    return grouped
