"""The figures the report prints and the gate checks: ratios measured side by side in one run.

A figure is either

* a *ratio*: the per-operation time of the ``numerator`` benchmark over that
  of the ``denominator`` benchmark from the same run, so the machine's speed
  cancels out. "Costs at most 1.2x the raw call" puts the candidate on top
  (lower is better); "at least 10x the throughput" puts the baseline on top
  (higher is better); or
* a *value*: a dimensionless number the ``source`` benchmark stored in its
  ``extra_info`` under ``field`` (a memory ratio, for example).

Absolute times are never figures: they do not travel between machines.
Per-operation times divide a round's time by ``extra_info["ops_per_round"]``
when a benchmark loops over several operations per round, so a candidate and
a baseline need not use the same loop length.

Definitions live in a TOML file (``benchmarks/gate.toml``) so that limits can
be recalibrated from measured spreads without touching code; this module
parses it strictly (unknown keys, wrong types and duplicates are errors).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from qcache.bench.errors import ResultsError
from qcache.bench.results import STATS, Benchmark, Run
from qcache.errors import ConfigError

#: ``extra_info`` key giving how many operations one benchmark round performs.
OPS_PER_ROUND = "ops_per_round"
DEFAULT_STAT = "min"


class Better(str, Enum):
    """Which direction of a figure is good."""

    LOWER = "lower"
    HIGHER = "higher"


@dataclass(frozen=True)
class Figure:
    """One checked number: how to compute it, what it should be, and its regression limit.

    ``target`` is the promise made by the issue that set the figure
    (reported, met or not). ``limit`` is what the gate enforces: the
    reference value plus a tolerance measured from run-to-run spread, so
    noise passes and a real regression fails. ``optional`` figures depend on
    data that may be absent (shared traces): missing data is reported, not
    failed.
    """

    name: str
    what: str
    better: Better
    numerator: str | None = None
    denominator: str | None = None
    source: str | None = None
    field: str | None = None
    stat: str = DEFAULT_STAT
    target: float | None = None
    limit: float | None = None
    optional: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        ratio = None not in (self.numerator, self.denominator) and self.source is None and self.field is None
        value = None not in (self.source, self.field) and self.numerator is None and self.denominator is None
        if not (ratio or value):
            raise ConfigError(f"figure {self.name!r}: give numerator and denominator (a ratio), "
                              "or source and field (a value)")
        if self.stat not in STATS:
            raise ConfigError(f"figure {self.name!r}: stat {self.stat!r} is not one of {', '.join(STATS)}")

    @property
    def is_ratio(self) -> bool:
        return self.numerator is not None

    @property
    def benchmarks(self) -> tuple[str, ...]:
        """Node ids of the benchmarks the figure reads."""
        ids = (self.numerator, self.denominator) if self.is_ratio else (self.source,)
        return tuple(i for i in ids if i is not None)

    def is_worse(self, value: float, bound: float) -> bool:
        """Whether ``value`` is on the bad side of ``bound``."""
        return value > bound if self.better is Better.LOWER else value < bound

    def bound_text(self, bound: float | None) -> str:
        """``<= 1.2`` or ``>= 10`` (``-`` when there is no bound)."""
        if bound is None:
            return "-"
        return f"{'<=' if self.better is Better.LOWER else '>='} {bound:g}"


@dataclass(frozen=True)
class FigureValue:
    """A figure evaluated on one run: the number, or why it could not be computed."""

    figure: Figure
    value: float | None
    missing: str | None = None

    @property
    def breaches_limit(self) -> bool:
        """True when the value is past the regression limit."""
        f = self.figure
        return self.value is not None and f.limit is not None and f.is_worse(self.value, f.limit)

    @property
    def meets_target(self) -> bool | None:
        """Whether the value meets the issue's target (None: no value or no target)."""
        f = self.figure
        if self.value is None or f.target is None:
            return None
        return not f.is_worse(self.value, f.target)

    @property
    def target_gap(self) -> float | None:
        """How far past its target the value is, as a factor (1.5: half again as bad); None when met or unknown.

        A figure whose target is not met yet is gated by a regression limit
        above the target; the gap says how far the promise still is.
        """
        f = self.figure
        if self.meets_target is not False or self.value is None or f.target is None:
            return None
        if f.better is Better.LOWER:
            return self.value / f.target
        return f.target / self.value if self.value > 0 else math.inf

    @property
    def status(self) -> str:
        """``meets target``, ``misses target (1.52x it)`` or ``no target`` (None value: ``missing``)."""
        if self.value is None:
            return "missing"
        gap = self.target_gap
        if gap is not None:
            return f"misses target ({gap:.2f}x it)"
        return "no target" if self.meets_target is None else "meets target"

    @property
    def fails_gate(self) -> bool:
        """A breached limit, or required data missing from the run."""
        if self.value is None:
            return not self.figure.optional and self.figure.limit is not None
        return self.breaches_limit


def per_op(bench: Benchmark, stat: str) -> float:
    """The statistic of one operation: the round's statistic over ``ops_per_round`` (default 1)."""
    ops = bench.number(OPS_PER_ROUND) if OPS_PER_ROUND in bench.extra_info else 1.0
    if ops <= 0:
        raise ResultsError(f"benchmark {bench.fullname} reports {OPS_PER_ROUND}={ops:g}")
    return bench.stat(stat) / ops


def evaluate(figure: Figure, run: Run) -> FigureValue:
    """Compute ``figure`` on ``run``; a missing benchmark or field yields a value of None with the reason."""
    found: list[Benchmark] = []
    for node in figure.benchmarks:
        bench = run.get(node)
        if bench is None:
            return FigureValue(figure, None, f"benchmark {node} is not in the run")
        found.append(bench)
    try:
        if not figure.is_ratio:
            assert figure.field is not None
            return FigureValue(figure, found[0].number(figure.field))
        numerator, denominator = (per_op(bench, figure.stat) for bench in found)
        if denominator <= 0:
            return FigureValue(figure, None, f"{figure.denominator} measured {denominator:g} s")
        return FigureValue(figure, numerator / denominator)
    except ResultsError as exc:
        return FigureValue(figure, None, str(exc))


def evaluate_all(figures: Sequence[Figure], run: Run) -> list[FigureValue]:
    """Every figure on one run, in definition order."""
    return [evaluate(figure, run) for figure in figures]


# ---------------------------------------------------------------- loading

_FIGURE_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "what": str,
    "better": str,
    "numerator": str,
    "denominator": str,
    "source": str,
    "field": str,
    "stat": str,
    "target": (int, float),
    "limit": (int, float),
    "optional": bool,
    "note": str,
}
_REQUIRED = ("name", "what", "better")


def load_figures(path: Path) -> list[Figure]:
    """Parse a figures file; ConfigError listing every problem at once."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"figures file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read figures file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_figures(document, str(path))


def parse_figures(document: Mapping[str, Any], source: str = "<figures>") -> list[Figure]:
    """Figures from a parsed TOML document (``[gate] stat`` default, ``[[figure]]`` tables)."""
    problems: list[str] = []
    unknown_top = set(document) - {"gate", "figure"}
    if unknown_top:
        problems.append(f"unknown top-level keys: {', '.join(sorted(unknown_top))}")
    gate = document.get("gate", {})
    default_stat = DEFAULT_STAT
    if not isinstance(gate, dict) or set(gate) - {"stat"}:
        problems.append("[gate] may only set 'stat'")
    elif "stat" in gate:
        default_stat = gate["stat"]
        if default_stat not in STATS:
            problems.append(f"[gate] stat {default_stat!r} is not one of {', '.join(STATS)}")
    tables = document.get("figure", [])
    if not isinstance(tables, list):
        problems.append("'figure' must be an array of tables ([[figure]])")
        tables = []
    figures: list[Figure] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        figure = _parse_figure(table, f"figure #{index + 1}", default_stat, problems)
        if figure is None:
            continue
        if figure.name in seen:
            problems.append(f"figure {figure.name!r} is defined twice")
        seen.add(figure.name)
        figures.append(figure)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the figures", problems)
    return figures


def _parse_figure(table: Any, label: str, default_stat: str, problems: list[str]) -> Figure | None:
    """One ``[[figure]]`` table, or None after recording its problems."""
    if not isinstance(table, dict):
        problems.append(f"{label}: not a table")
        return None
    before = len(problems)
    label = f"figure {table['name']!r}" if isinstance(table.get("name"), str) else label
    for key, value in table.items():
        expected = _FIGURE_KEYS.get(key)
        if expected is None:
            problems.append(f"{label}: unknown key {key!r}")
        elif isinstance(value, bool) and expected is not bool:
            problems.append(f"{label}: {key} must not be a boolean")
        elif not isinstance(value, expected):
            problems.append(f"{label}: {key} has the wrong type ({type(value).__name__})")
    for key in _REQUIRED:
        if key not in table:
            problems.append(f"{label}: missing {key!r}")
    if len(problems) > before:
        return None
    ratio_keys = {"numerator", "denominator"} & set(table)
    value_keys = {"source", "field"} & set(table)
    if not (ratio_keys == {"numerator", "denominator"} and not value_keys
            or value_keys == {"source", "field"} and not ratio_keys):
        problems.append(f"{label}: give numerator and denominator (a ratio) or source and field (a value)")
    try:
        better = Better(table["better"])
    except ValueError:
        problems.append(f"{label}: better must be 'lower' or 'higher', got {table['better']!r}")
        better = Better.LOWER
    stat = table.get("stat", default_stat)
    if stat not in STATS:
        problems.append(f"{label}: stat {stat!r} is not one of {', '.join(STATS)}")
    for key in ("target", "limit"):
        if key in table and not (math.isfinite(table[key]) and table[key] > 0):
            problems.append(f"{label}: {key} must be a positive number, got {table[key]!r}")
    if len(problems) > before:
        return None
    return Figure(
        name=table["name"],
        what=table["what"],
        better=better,
        numerator=table.get("numerator"),
        denominator=table.get("denominator"),
        source=table.get("source"),
        field=table.get("field"),
        stat=stat,
        target=float(table["target"]) if "target" in table else None,
        limit=float(table["limit"]) if "limit" in table else None,
        optional=table.get("optional", False),
        note=table.get("note", ""),
    )
