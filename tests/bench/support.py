"""Builders for run folders as the main job writes them, with numbers chosen by each test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qcache.bench import Figure
from qcache.bench.figures import Better


def entry(fullname: str, seconds: float, *, median: float | None = None, group: str | None = None,
          **extra_info: Any) -> dict[str, Any]:
    """One pytest-benchmark JSON entry whose min is ``seconds`` (median defaults to 1.1x that)."""
    med = seconds * 1.1 if median is None else median
    return {
        "group": group,
        "name": fullname.rsplit("::", 1)[-1],
        "fullname": fullname,
        "params": None,
        "extra_info": extra_info,
        "stats": {"min": seconds, "max": med * 2, "mean": med, "median": med, "stddev": med / 10,
                  "iqr": med / 10, "q1": seconds, "q3": med * 1.2, "rounds": 10},
    }


def write_run(folder: Path, entries: list[dict[str, Any]], *, environment: dict[str, Any] | None = None,
              machine_info: dict[str, Any] | None = None,
              simulations: dict[str, dict[str, Any]] | None = None) -> Path:
    """A run folder holding ``benchmarks.json`` (and environment.json / simulation/*.json when given)."""
    folder.mkdir(parents=True)
    document = {"machine_info": machine_info or {}, "benchmarks": entries, "datetime": "2025-01-01T00:00:00"}
    (folder / "benchmarks.json").write_text(json.dumps(document))
    if environment is not None:
        (folder / "environment.json").write_text(json.dumps(environment))
    for name, content in (simulations or {}).items():
        (folder / "simulation").mkdir(exist_ok=True)
        (folder / "simulation" / name).write_text(json.dumps(content))
    return folder


def ratio_figure(name: str, numerator: str, denominator: str, *, better: str = "lower",
                 target: float | None = None, limit: float | None = None, optional: bool = False,
                 stat: str = "min") -> Figure:
    return Figure(name=name, what=f"{name} for a test", better=Better(better), numerator=numerator,
                  denominator=denominator, target=target, limit=limit, optional=optional, stat=stat)
