"""A run's results, read back from its folder into typed records.

Only the fields the report and the gate use are kept, each checked on the way
in: a run whose JSON lacks a statistic is an error naming the benchmark, not
a figure computed from a default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qcache.bench.errors import ResultsError
from qcache.bench.layout import RunLayout

#: pytest-benchmark statistics a figure may compare (seconds per round, except ``rounds``).
STATS = ("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3", "rounds")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a run: its identity, timing statistics and ``extra_info``."""

    fullname: str
    name: str
    group: str | None
    stats: Mapping[str, float]
    extra_info: Mapping[str, Any] = field(default_factory=dict)

    def stat(self, name: str) -> float:
        """A timing statistic by name (``min``, ``median``...)."""
        if name not in STATS:
            raise ValueError(f"unknown statistic {name!r}; known: {', '.join(STATS)}")
        return self.stats[name]

    def number(self, key: str) -> float:
        """A numeric ``extra_info`` entry; ResultsError when absent or not a number."""
        value = self.extra_info.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ResultsError(f"benchmark {self.fullname} has no numeric extra_info {key!r} (got {value!r})")
        return float(value)


@dataclass(frozen=True)
class Run:
    """Everything read from one run folder."""

    layout: RunLayout
    benchmarks: Mapping[str, Benchmark]
    machine_info: Mapping[str, Any]
    environment: Mapping[str, Any]
    datetime: str | None

    @property
    def run_id(self) -> str:
        return self.layout.run_id

    def get(self, fullname: str) -> Benchmark | None:
        """The benchmark with this pytest node id, or None when the run does not have it."""
        return self.benchmarks.get(fullname)

    def simulations(self) -> list[Mapping[str, Any]]:
        """The simulator's JSON documents of this run (``simulation/*.json``), by file name."""
        folder = self.layout.simulation
        if not folder.is_dir():
            return []
        return [_read_json(path) for path in sorted(folder.glob("*.json"))]


def load_run(layout: RunLayout) -> Run:
    """Read ``benchmarks.json`` (required) and ``environment.json`` (optional) of a run folder."""
    document = _read_json(layout.benchmarks)
    entries = document.get("benchmarks")
    if not isinstance(entries, list):
        raise ResultsError(f"{layout.benchmarks} has no 'benchmarks' list; is it pytest-benchmark JSON?")
    benchmarks: dict[str, Benchmark] = {}
    for entry in entries:
        bench = _benchmark(entry, layout.benchmarks)
        benchmarks[bench.fullname] = bench
    environment = _read_json(layout.environment) if layout.environment.is_file() else {}
    machine_info = document.get("machine_info")
    return Run(
        layout=layout,
        benchmarks=benchmarks,
        machine_info=machine_info if isinstance(machine_info, dict) else {},
        environment=environment,
        datetime=document.get("datetime") if isinstance(document.get("datetime"), str) else None,
    )


def _benchmark(entry: Any, source: Path) -> Benchmark:
    """One entry of pytest-benchmark's list, checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("fullname"), str):
        raise ResultsError(f"{source}: a benchmark entry without a 'fullname'")
    fullname: str = entry["fullname"]
    raw_stats = entry.get("stats")
    if not isinstance(raw_stats, dict):
        raise ResultsError(f"{source}: benchmark {fullname} has no 'stats'")
    stats: dict[str, float] = {}
    for name in STATS:
        value = raw_stats.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"{source}: benchmark {fullname} has no numeric stats.{name}")
        stats[name] = float(value)
    extra = entry.get("extra_info")
    group = entry.get("group")
    return Benchmark(
        fullname=fullname,
        name=str(entry.get("name", fullname)),
        group=group if isinstance(group, str) else None,
        stats=stats,
        extra_info=extra if isinstance(extra, dict) else {},
    )


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ResultsError saying what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ResultsError(f"{path} does not hold a JSON object")
    return document
