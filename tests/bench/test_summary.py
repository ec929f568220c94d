"""The main job's console summary: at most 40 lines, with the figures, breaches, recommendation and files."""

from __future__ import annotations

from pathlib import Path

from qcache.bench import Thresholds, evaluate_all, load_figures, load_run
from qcache.bench.layout import RunLayout
from qcache.bench.summary import MAX_LINES, format_summary
from qcache.tune import Workload, curves_from_run, gather, recommend

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = max((ROOT / "results" / "reference").iterdir())


def summary(thresholds: Thresholds) -> list[str]:
    run = load_run(RunLayout(REFERENCE))
    values = evaluate_all(load_figures(ROOT / "benchmarks" / "gate.toml"), run)
    rec = recommend(Workload(), gather(run), curves_from_run(run))
    return format_summary(run, values, thresholds, rec, [("report", "r/report.html"), ("text report", "r/report.txt")])


def test_summary_of_the_reference_run_fits_in_forty_lines() -> None:
    lines = summary(Thresholds(50.0, 0.6))
    text = "\n".join(lines)
    assert len(lines) <= MAX_LINES
    assert "key figures:" in text and "latency:" in text and "breaches:" in text
    assert "MEMORY_CACHE_EVICTION_POLICY=" in text and "r/report.html" in text


def test_breaches_are_listed_and_the_summary_still_fits() -> None:
    # A 0.5 ms alert threshold makes dozens of latencies breach: listed up to a few, counted, within 40 lines.
    lines = summary(Thresholds(0.5, 0.6))
    breaches = next(line for line in lines if line.startswith("breaches:"))
    assert int(breaches.split()[1]) > 5
    assert any("more (report.txt)" in line for line in lines)
    assert len(lines) <= MAX_LINES
