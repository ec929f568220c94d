"""The regression gate: figures against committed limits, and limits from measured spread.

Why limits come from spread: on a shared, noisy machine a ratio moves from
run to run even when nothing changed. The gate must never fail on that
noise, and must still fail when a change makes a figure really worse. So each
limit is the figure's median over several reference runs, moved in the bad
direction by a tolerance: twice the largest deviation from the median those
runs showed (never less than a floor, since a handful of runs underestimates
the spread). The single most extreme run is left out of that deviation when
there are at least :data:`MIN_RUNS_TO_DROP` runs, because a one-off spike
(a neighbour saturating both cores) is what the second defence handles: a
breach is measured again (:func:`best_of`) and fails only if every attempt
breaches. Noise rarely repeats three times; a regression always does.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qcache.bench.figures import Better, Figure, FigureValue, evaluate_all
from qcache.bench.results import Run

#: Tolerance = max(TOLERANCE_FLOOR, SPREAD_FACTOR x the largest deviation across reference runs).
TOLERANCE_FLOOR = 0.20
SPREAD_FACTOR = 2.0
#: From this many runs on, the most extreme run is left out of the deviation (see above).
MIN_RUNS_TO_DROP = 5


@dataclass(frozen=True)
class Verdict:
    """The gate's result on one run (possibly merged with confirmation runs)."""

    values: tuple[FigureValue, ...]

    @property
    def failures(self) -> list[FigureValue]:
        """Figures past their limit, and required figures the run could not compute."""
        return [v for v in self.values if v.fails_gate]

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of every figure and the outcome."""
        return {
            "passed": self.passed,
            "failures": [v.figure.name for v in self.failures],
            "figures": [
                {
                    "name": v.figure.name,
                    "value": v.value,
                    "limit": v.figure.limit,
                    "target": v.figure.target,
                    "better": v.figure.better.value,
                    "meets_target": v.meets_target,
                    "target_gap": v.target_gap,
                    "fails_gate": v.fails_gate,
                    "missing": v.missing,
                }
                for v in self.values
            ],
        }


def check(run: Run, figures: Sequence[Figure]) -> Verdict:
    """Evaluate every figure on ``run`` against its limit."""
    return Verdict(tuple(evaluate_all(figures, run)))


def best_of(verdicts: Sequence[Verdict]) -> Verdict:
    """Per figure, the best value any attempt measured (attempts must list the same figures).

    Used to confirm a breach: the gate re-measures the breached figures and
    keeps the best value, so a figure fails only if every attempt breached.
    """
    if not verdicts:
        raise ValueError("best_of() needs at least one verdict")
    merged: list[FigureValue] = []
    for attempts in zip(*(v.values for v in verdicts), strict=True):
        figure = attempts[0].figure
        if any(a.figure.name != figure.name for a in attempts):
            raise ValueError("verdicts list different figures")
        measured = [a for a in attempts if a.value is not None]
        if not measured:
            merged.append(attempts[0])
            continue
        pick = min if figure.better is Better.LOWER else max
        merged.append(pick(measured, key=lambda a: a.value or 0.0))  # every value in `measured` is set
    return Verdict(tuple(merged))


def breached_benchmarks(verdict: Verdict) -> list[str]:
    """Node ids of the benchmarks behind the failing figures (what a confirmation re-runs)."""
    ids: list[str] = []
    for value in verdict.failures:
        ids.extend(node for node in value.figure.benchmarks if node not in ids)
    return ids


@dataclass(frozen=True)
class Spread:
    """How one figure varied over several runs, and the limit that spread suggests."""

    figure: Figure
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def deviations(self) -> list[float]:
        """Each run's distance from the median as a factor minus one (0.1: 10% off, either way).

        Factors rather than differences, so "10% better" and "10% worse" weigh
        the same for lower-is-better and higher-is-better figures alike.
        """
        median = self.median
        if median <= 0:
            return [0.0 for _ in self.values]
        return [max(v / median, median / v) - 1 if v > 0 else float("inf") for v in self.values]

    @property
    def deviation(self) -> float:
        """The largest deviation, leaving out the most extreme run when there are enough runs."""
        ordered = sorted(self.deviations())
        if len(ordered) >= MIN_RUNS_TO_DROP:
            ordered = ordered[:-1]
        return ordered[-1] if ordered else 0.0

    @property
    def tolerance(self) -> float:
        return max(TOLERANCE_FLOOR, SPREAD_FACTOR * self.deviation)

    @property
    def proposed_limit(self) -> float:
        """The median moved by the tolerance in the bad direction."""
        if self.figure.better is Better.LOWER:
            return self.median * (1 + self.tolerance)
        return self.median / (1 + self.tolerance)


def spread(runs: Sequence[Run], figures: Iterable[Figure]) -> tuple[list[Spread], list[str]]:
    """Per figure, its values over ``runs``; figures with no value in some run are listed apart."""
    evaluated = [evaluate_all(list(figures), run) for run in runs]
    spreads: list[Spread] = []
    incomplete: list[str] = []
    for per_run in zip(*evaluated, strict=True):
        figure = per_run[0].figure
        values = tuple(v.value for v in per_run if v.value is not None)
        if len(values) < len(per_run) or not values:
            incomplete.append(figure.name)
        if values:
            spreads.append(Spread(figure, values))
    return spreads, incomplete
