"""The run folder of a load test: ``results/load/<run-id>/``.

``summary.json`` holds everything (what ran, the workload, the configuration
with secrets masked, per user class and operation percentiles in µs, the
per-second timeline, and the ramp's knee or the chaos report when the shape
had one); ``operations.csv``, ``users.csv`` and ``timeline.csv`` hold the
tables for spreadsheets, and ``histograms.json`` the full histograms, so
runs can be merged or re-read later. Locust's own CSV and HTML land beside
them. :func:`read_summary` is what ``qcache load check`` and the notebooks use.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qcache.load.chaos import ChaosReport
from qcache.load.histogram import LatencyRecorder, Summary, encode_histogram
from qcache.load.knee import StepResult, knee
from qcache.load.shapes import Compare
from qcache.load.workload import Workload

SUMMARY_VERSION = 1
SUMMARY_FILE = "summary.json"
LOAD_RESULTS_ENV = "QCACHE_LOAD_RESULTS"


class LoadResultsError(ValueError):
    """A load run folder that is missing or does not hold a readable summary."""


def new_run_id(now: float | None = None) -> str:
    """A UTC timestamp that sorts in time order, as the main job names its runs."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def results_root(repository: Path | None = None) -> Path:
    """Where load runs go: ``$QCACHE_LOAD_RESULTS`` or ``results/load`` under the working directory."""
    configured = os.environ.get(LOAD_RESULTS_ENV, "").strip()
    if configured:
        return Path(configured)
    return (repository or Path.cwd()) / "results" / "load"


def latest_run(root: Path) -> Path | None:
    """The newest run folder holding a summary, by name (run ids sort in time order)."""
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if (p / SUMMARY_FILE).is_file())
    return runs[-1] if runs else None


@dataclass(frozen=True)
class RunInfo:
    """What a run was: the facts that are not measurements."""

    run_id: str
    started_at: float
    finished_at: float
    shape: str
    processes: int
    workload: Workload
    config: Mapping[str, Any]
    redis: Mapping[str, Any]
    user_classes: tuple[str, ...]
    cache_users: tuple[str, ...]  # the classes that call qcache (the others are baselines)
    extra: Mapping[str, Any] = field(default_factory=dict)


def _number(value: float | None) -> float | None:
    """JSON has no NaN: an empty histogram's percentile is written as null."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def build_summary(
    recorder: LatencyRecorder,
    info: RunInfo,
    *,
    users_by_second: Mapping[int, int] | None = None,
    ramp_steps: Sequence[StepResult] | None = None,
    chaos: ChaosReport | None = None,
    compare: Compare | None = None,
) -> dict[str, Any]:
    """The whole summary as plain data (the schema of ``summary.json``)."""
    active = recorder.active_seconds()
    operations: list[dict[str, Any]] = []
    for (user, operation), stats in recorder.operations():
        summary = Summary.of(stats.histogram)
        seconds = active.get(user, 0.0)
        operations.append({
            "user": user,
            "operation": operation,
            "count": stats.count,
            "errors": stats.errors,
            "hits": stats.hits,
            "misses": stats.misses,
            "rps": stats.count / seconds if seconds > 0 else None,
            **{k: _number(v) for k, v in dataclasses.asdict(summary).items() if k != "count"},
        })
    users: list[dict[str, Any]] = []
    for user in sorted({str(op["user"]) for op in operations}):
        mine = [op for op in operations if op["user"] == user]
        count = sum(op["count"] for op in mine)
        hits = sum(op["hits"] for op in mine)
        misses = sum(op["misses"] for op in mine)
        seconds = active.get(user, 0.0)
        overall = recorder.user_summary(user)
        users.append({
            "user": user,
            "cache_user": user in info.cache_users,
            "count": count,
            "errors": sum(op["errors"] for op in mine),
            "hit_rate": hits / (hits + misses) if hits + misses else None,
            "active_s": seconds,
            "rps": count / seconds if seconds > 0 else None,
            "p50_us": _number(overall.p50_us),
            "p99_us": _number(overall.p99_us),
            "p999_us": _number(overall.p999_us),
        })
    timeline = [
        {
            "t_s": second - int(info.started_at),  # whole seconds, the run's first second is 0
            "users": (users_by_second or {}).get(second),
            "rps": bucket.count,  # one-second buckets: the count is the rate
            "errors": bucket.errors,
            "p99_us": _number(Summary.of(bucket.histogram).p99_us),
            "l2_hits": bucket.l2_hits,
        }
        for second, bucket in recorder.timeline()
    ]
    summary_doc: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "run_id": info.run_id,
        "started_at": _iso(info.started_at),
        "finished_at": _iso(info.finished_at),
        "duration_s": info.finished_at - info.started_at,
        "shape": info.shape,
        "processes": info.processes,
        "user_classes": list(info.user_classes),
        "workload": info.workload.describe(),
        "config": dict(info.config),
        "redis": dict(info.redis),
        "operations": operations,
        "users": users,
        "timeline": timeline,
        **dict(info.extra),
    }
    if info.shape == "compare":  # only alternating phases compare classes fairly (see shapes.Compare)
        counts = [(float(second - int(info.started_at)), bucket.count) for second, bucket in recorder.timeline()]
        summary_doc["comparison"] = _comparison(users, compare, counts)
    if ramp_steps is not None:
        best = knee(ramp_steps)
        summary_doc["ramp"] = {
            "steps": [
                {"users": s.users, "seconds": s.seconds, "rps": s.rps,
                 "p99_us": _number(s.p99_us), "error_ratio": _number(s.error_ratio)}
                for s in ramp_steps
            ],
            "knee": None if best is None else {"users": best.users, "rps": best.rps, "p99_us": best.p99_us},
        }
    if chaos is not None:
        summary_doc["chaos"] = {k: _number(v) for k, v in dataclasses.asdict(chaos).items()}
    return summary_doc


def phase_ratios(compare: Compare, timeline: Sequence[tuple[float, int]]) -> list[float]:
    """Per round, the first class's requests per second over the second's, from whole seconds.

    ``timeline`` holds (seconds since the start, requests in that second). The
    first second of each phase is left out (users start, or the previous
    class is still stopping), as the benchmarks leave out nothing but pair
    adjacent rounds: a burst of load elsewhere on the machine then moves one
    round's ratio, not the median.
    """
    def rate(phase: int) -> float | None:
        begin, end = phase * compare.phase_s + 1.0, (phase + 1) * compare.phase_s
        counts = [count for t, count in timeline if begin <= t and t + 1 <= end]
        return sum(counts) / len(counts) if counts else None

    ratios = []
    for round_ in range(compare.rounds):
        first, second = rate(2 * round_), rate(2 * round_ + 1)
        if first and second:
            ratios.append(first / second)
    return ratios


def _comparison(users: Sequence[Mapping[str, Any]], compare: Compare | None,
                timeline: Sequence[tuple[float, int]]) -> list[dict[str, Any]]:
    """Each cache user's throughput and p99 over every baseline user's, when both ran.

    ``throughput_ratio`` divides the totals over each class's active time;
    ``median_round_ratio`` is the median of the per-round ratios (see
    :func:`phase_ratios`), the steadier figure on a shared machine.
    """
    rounds = phase_ratios(compare, timeline) if compare is not None else []
    baselines = [u for u in users if not u["cache_user"] and u["rps"]]
    out = []
    for cache_user in (u for u in users if u["cache_user"] and u["rps"]):
        for baseline in baselines:
            entry: dict[str, Any] = {
                "user": cache_user["user"],
                "baseline": baseline["user"],
                "throughput_ratio": cache_user["rps"] / baseline["rps"],
                "p99_ratio": (cache_user["p99_us"] / baseline["p99_us"])
                if cache_user["p99_us"] and baseline["p99_us"] else None,
            }
            if compare is not None and rounds and {compare.first, compare.second} == {entry["user"], entry["baseline"]}:
                per_round = rounds if compare.first == entry["user"] else [1 / r for r in rounds]
                entry["round_ratios"] = per_round
                entry["median_round_ratio"] = statistics.median(per_round)
            out.append(entry)
    return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def write_run(directory: Path, summary: Mapping[str, Any], recorder: LatencyRecorder) -> Path:
    """Write ``summary.json``, the CSV tables and the histograms; returns the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / SUMMARY_FILE, summary)
    _write_csv(directory / "operations.csv", summary["operations"])
    _write_csv(directory / "users.csv", summary["users"])
    _write_csv(directory / "timeline.csv", summary["timeline"])
    histograms = {
        f"{user}/{operation}": encode_histogram(stats.histogram) for (user, operation), stats in recorder.operations()
    }
    _write_json(directory / "histograms.json", {"format": "HdrHistogram base64, microseconds", **histograms})
    return directory


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    temporary.replace(path)


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_summary(directory: Path) -> dict[str, Any]:
    """A run's summary, checked enough that its readers can trust its shape."""
    path = directory / SUMMARY_FILE
    if not path.is_file():
        raise LoadResultsError(f"{directory} holds no {SUMMARY_FILE}: not a load run folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadResultsError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != SUMMARY_VERSION:
        raise LoadResultsError(f"{path} is not a version {SUMMARY_VERSION} load summary")
    missing = [key for key in ("run_id", "operations", "users", "timeline", "config") if key not in data]
    if missing:
        raise LoadResultsError(f"{path} lacks {', '.join(missing)}")
    return data


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A few lines for the console at the end of a run: per user, then the shape's own result."""
    lines = []
    for user in summary["users"]:
        rps = f"{user['rps']:,.0f} req/s" if user.get("rps") else "- req/s"
        p50 = f"{user['p50_us']:,.0f}" if user.get("p50_us") is not None else "-"
        p99 = f"{user['p99_us']:,.0f}" if user.get("p99_us") is not None else "-"
        hit_rate = f"{user['hit_rate']:.3f}" if user.get("hit_rate") is not None else "-"
        lines.append(f"  {user['user']:<20} {rps:>14}  p50 {p50:>7} µs  p99 {p99:>8} µs  "
                     f"hit rate {hit_rate:>5}  errors {user['errors']}")
    for row in summary.get("comparison", []):
        median = row.get("median_round_ratio")
        rounds = f", median of {len(row['round_ratios'])} rounds {median:.2f}x" if median is not None else ""
        lines.append(f"  compare: {row['user']} / {row['baseline']} throughput {row['throughput_ratio']:.2f}x{rounds}")
    ramp = summary.get("ramp")
    if ramp is not None:
        best = ramp["knee"]
        lines.append("  ramp knee: none (no step kept p99 below 10 ms with errors below 1%)" if best is None
                     else f"  ramp knee: {best['rps']:,.0f} req/s at {best['users']} users, "
                          f"p99 {best['p99_us'] / 1000:.2f} ms")
    chaos = summary.get("chaos")
    if chaos is not None:
        recovery = ("L2 hits did not resume" if chaos["l2_recovery_s"] is None
                    else f"L2 hits back {chaos['l2_recovery_s']:.1f} s after")
        lines.append(f"  chaos: {chaos['mode']} at {chaos['fault_at_s']:.1f} s, Redis back at "
                     f"{chaos['restored_at_s']:.1f} s, {recovery}; caller exceptions {chaos['caller_exceptions']}")
        if chaos.get("p99_during_fault_us") is not None:
            p99_ms = chaos["p99_during_fault_us"] / 1000
            lines.append(f"         from the fault until L2 recovered: p99 {p99_ms:.2f} ms, "
                         f"longest call {chaos['max_during_fault_us'] / 1000:.1f} ms, "
                         f"error ratio {chaos['error_ratio']:.4f}")
    if summary.get("fault_error"):
        lines.append(f"  chaos: the fault could not be injected: {summary['fault_error']}")
    return lines
