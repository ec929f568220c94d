"""Locust load results (``results/load/<run-id>/summary.json``) read into typed records for 50_load.

Optional sections (``ramp``, ``chaos``, ``timeline``...) may be absent and
come back empty or None; a section that is present but malformed is an
error naming the file and the field, never silently skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcache.tune.errors import TuneError

LOAD_DIR = "load"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class OperationStats:
    user: str
    operation: str
    count: int
    errors: int
    rps: float
    p50_us: float
    p99_us: float


@dataclass(frozen=True)
class TimelinePoint:
    t_s: float
    users: int | None  # None in a second no user count was sampled
    rps: float
    errors: int
    p99_us: float


@dataclass(frozen=True)
class RampStep:
    users: int
    rps: float
    p99_us: float
    error_ratio: float


@dataclass(frozen=True)
class Chaos:
    mode: str
    fault_at_s: float
    restart_at_s: float  # NaN when the run does not say (``restart_at_s`` or ``restored_at_s``)
    caller_exceptions: int
    error_ratio: float
    p99_during_fault_us: float
    l2_recovery_s: float | None


@dataclass(frozen=True)
class LoadSummary:
    run_id: str
    shape: str
    duration_s: float
    processes: int
    operations: tuple[OperationStats, ...]
    timeline: tuple[TimelinePoint, ...]
    ramp: tuple[RampStep, ...]
    knee: RampStep | None
    chaos: Chaos | None
    path: Path


class _Reader:
    """Typed field access that names the file and the field on any problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> TuneError:
        return TuneError(f"{self.path}: {where}: {problem}")

    def section(self, doc: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, kind):
            raise self.fail(where, f"{key!r} should be a {kind.__name__}, got {type(value).__name__}")
        return value

    def number(self, doc: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> float:
        value = doc.get(key)
        if value is None and optional:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"{key!r} should be a finite number, got {value!r}")
        return float(value)

    def text(self, doc: Mapping[str, Any], key: str, where: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str):
            raise self.fail(where, f"{key!r} should be text, got {value!r}")
        return value


def read_summary(path: Path) -> LoadSummary:
    """One ``summary.json`` (or the folder holding it)."""
    if path.is_dir():
        path = path / SUMMARY
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuneError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TuneError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise TuneError(f"{path} does not hold a JSON object")
    r = _Reader(path)
    operations = tuple(
        OperationStats(
            r.text(o, "user", f"operations[{i}]"),
            r.text(o, "operation", f"operations[{i}]"),
            int(r.number(o, "count", f"operations[{i}]")),
            int(r.number(o, "errors", f"operations[{i}]")),
            r.number(o, "rps", f"operations[{i}]"),
            r.number(o, "p50_us", f"operations[{i}]"),
            r.number(o, "p99_us", f"operations[{i}]"),
        )
        for i, o in enumerate(_objects(r, doc, "operations"))
    )
    timeline = tuple(
        TimelinePoint(
            r.number(p, "t_s", f"timeline[{i}]"),
            _optional_int(r, p, "users", f"timeline[{i}]"),
            r.number(p, "rps", f"timeline[{i}]"),
            int(r.number(p, "errors", f"timeline[{i}]")),
            r.number(p, "p99_us", f"timeline[{i}]", optional=True),
        )
        for i, p in enumerate(_objects(r, doc, "timeline"))
    )
    ramp_doc = r.section(doc, "ramp", dict, "ramp") or {}
    ramp = tuple(_step(r, s, f"ramp.steps[{i}]") for i, s in enumerate(_objects(r, ramp_doc, "steps", "ramp")))
    knee_doc = r.section(ramp_doc, "knee", dict, "ramp")
    knee = None
    if knee_doc is not None:
        knee = RampStep(
            int(r.number(knee_doc, "users", "ramp.knee")),
            r.number(knee_doc, "rps", "ramp.knee"),
            r.number(knee_doc, "p99_us", "ramp.knee"),
            math.nan,
        )
    chaos_doc = r.section(doc, "chaos", dict, "chaos")
    chaos = None
    if chaos_doc is not None:
        recovery = chaos_doc.get("l2_recovery_s")
        chaos = Chaos(
            r.text(chaos_doc, "mode", "chaos"),
            r.number(chaos_doc, "fault_at_s", "chaos"),
            r.number(
                chaos_doc, "restart_at_s" if "restart_at_s" in chaos_doc else "restored_at_s", "chaos", optional=True
            ),
            int(r.number(chaos_doc, "caller_exceptions", "chaos")),
            r.number(chaos_doc, "error_ratio", "chaos"),
            r.number(chaos_doc, "p99_during_fault_us", "chaos"),
            None if recovery is None else r.number(chaos_doc, "l2_recovery_s", "chaos"),
        )
    return LoadSummary(
        run_id=r.text(doc, "run_id", "top level"),
        shape=r.text(doc, "shape", "top level"),
        duration_s=r.number(doc, "duration_s", "top level"),
        processes=int(r.number(doc, "processes", "top level")) if "processes" in doc else 1,
        operations=operations,
        timeline=timeline,
        ramp=ramp,
        knee=knee,
        chaos=chaos,
        path=path,
    )


def _objects(r: _Reader, doc: Mapping[str, Any], key: str, where: str = "top level") -> list[Mapping[str, Any]]:
    items = r.section(doc, key, list, where) or []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise r.fail(f"{key}[{i}]", "should be an object")
    return items


def _optional_int(r: _Reader, doc: Mapping[str, Any], key: str, where: str) -> int | None:
    value = r.number(doc, key, where, optional=True)
    return None if math.isnan(value) else int(value)


def _step(r: _Reader, doc: Mapping[str, Any], where: str) -> RampStep:
    return RampStep(
        int(r.number(doc, "users", where)),
        r.number(doc, "rps", where),
        r.number(doc, "p99_us", where),
        r.number(doc, "error_ratio", where),
    )


def latest_load_run(results_root: Path) -> Path | None:
    """The newest ``results/load/<run-id>/`` holding a summary.json, or None when there is none."""
    base = results_root / LOAD_DIR
    if not base.is_dir():
        return None
    found = [p for p in base.iterdir() if (p / SUMMARY).is_file()]
    if not found:
        return None
    return max(found, key=lambda p: ((p / SUMMARY).stat().st_mtime, p.name))
