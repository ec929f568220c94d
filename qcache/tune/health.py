"""Every latency and hit rate of a run against the seed's thresholds (00_overview).

Latencies are the p99 of benchmarks that time each call and the median of
facade operations; hit rates come from the eviction benchmarks and the
simulator, per workload, cache size and policy. Each becomes a
:class:`Check` with a :class:`~qcache.tune.thresholds.Status`, so a plot can
color it and a summary can count the breaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qcache.bench import FigureValue, Run, Thresholds, best_of, check, evaluate_all, load_figures, load_run
from qcache.bench.report import hit_rates, latencies
from qcache.tune.thresholds import (
    SEED_THRESHOLDS,
    Status,
    hit_rate_status,
    latency_status,
)


@dataclass(frozen=True)
class Check:
    """One measured number, what it measures, and its verdict."""

    kind: str  # "latency" (ms) or "hit rate" (fraction)
    what: str
    value: float
    status: Status

    @property
    def unit(self) -> str:
        return "ms" if self.kind == "latency" else ""


def latency_checks(run: Run, thresholds: Thresholds = SEED_THRESHOLDS) -> list[Check]:
    """Every operation latency the run measured, slowest first."""
    found = [Check("latency", op.what, op.ms, latency_status(op.ms, thresholds)) for op in latencies(run, thresholds)]
    return sorted(found, key=lambda c: -c.value)


def hit_rate_checks(run: Run, thresholds: Thresholds = SEED_THRESHOLDS) -> list[Check]:
    """Every hit rate (workload, size, policy) the run measured; bounds such as Belady left out."""
    found: list[Check] = []
    for group in hit_rates(run, thresholds):
        for policy, rate in sorted(group.rates.items()):
            what = f"{group.workload}, {group.capacity:,} entries, {policy}"
            found.append(Check("hit rate", what, rate, hit_rate_status(rate, thresholds)))
    return found


def breaches(checks: Sequence[Check]) -> list[Check]:
    """The checks past the alert threshold."""
    return [c for c in checks if c.status is Status.ALERT]


def count_by_status(checks: Sequence[Check]) -> dict[Status, int]:
    """How many checks are healthy, warnings and alerts (every status present, zero or not)."""
    counts = dict.fromkeys(Status, 0)
    for one in checks:
        counts[one.status] += 1
    return counts


def key_figures(run: Run) -> list[FigureValue]:
    """The gate's ratios on this run, judged as the gate judged them.

    Figures come from the ``benchmarks/gate.toml`` of the repository holding
    the run (none when there is none, as ``qcache report`` does). When the
    gate measured breached figures again (``confirm-<n>/``), each figure is
    its best value over the run and those re-measurements.
    """
    from qcache.bench.cli import find_figures

    path = find_figures(None, run.layout.root)
    if path is None:
        return []
    figures = load_figures(path)
    confirmations = run.layout.confirmations()
    if not confirmations:
        return evaluate_all(figures, run)
    verdicts = [check(run, figures), *(check(load_run(c), figures) for c in confirmations)]
    return list(best_of(verdicts).values)
