"""Figures: parsing the definitions, computing them on a run, and the gate built on them."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from qcache.bench import (
    Better,
    Figure,
    RunLayout,
    best_of,
    breached_benchmarks,
    check,
    evaluate,
    load_figures,
    load_run,
    parse_figures,
    spread,
)
from qcache.bench.gate import MIN_RUNS_TO_DROP, SPREAD_FACTOR, TOLERANCE_FLOOR
from qcache.bench.results import Run
from qcache.errors import ConfigError

from .support import entry, ratio_figure, write_run

ROOT = Path(__file__).resolve().parents[2]
A, B, C = "b.py::test_a", "b.py::test_b", "b.py::test_c"


def run_of(tmp_path: Path, name: str, *entries: dict[str, Any]) -> Run:
    return load_run(RunLayout(write_run(tmp_path / name, list(entries))))


# ------------------------------------------------------------------ parsing


def test_ratio_and_value_figures_parse_with_the_default_statistic() -> None:
    figures = parse_figures({
        "gate": {"stat": "median"},
        "figure": [
            {"name": "r", "what": "a over b", "better": "lower", "numerator": A, "denominator": B,
             "target": 1.2, "limit": 1.5},
            {"name": "v", "what": "a field", "better": "higher", "source": C, "field": "x", "stat": "min",
             "optional": True, "note": "why"},
        ],
    })
    ratio, value = figures
    assert ratio.is_ratio and ratio.benchmarks == (A, B) and ratio.stat == "median" and ratio.limit == 1.5
    assert not value.is_ratio and value.benchmarks == (C,) and value.stat == "min" and value.optional
    assert value.target is None and value.limit is None


def test_every_problem_of_a_figures_file_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_figures({
            "extra": 1,
            "gate": {"stat": "p99"},
            "figure": [
                {"name": "a", "what": "w", "better": "lower", "numerator": A},  # no denominator
                {"name": "b", "what": "w", "better": "sideways", "source": A, "field": "f"},
                {"name": "c", "what": "w", "better": "lower", "source": A, "field": "f", "limit": -1},
                {"name": "d", "what": "w", "better": "lower", "source": A, "field": "f", "target": True},
                {"what": "w", "better": "lower", "source": A, "field": "f", "colour": "red"},
                {"name": "e", "what": "w", "better": "lower", "source": A, "field": "f"},
                {"name": "e", "what": "w", "better": "lower", "numerator": A, "denominator": B, "field": "f"},
            ],
        })
    text = "\n".join(caught.value.problems)
    for expected in ("unknown top-level keys: extra", "[gate] stat 'p99'", "figure 'a': give numerator",
                     "better must be 'lower' or 'higher'", "limit must be a positive number",
                     "target must not be a boolean", "unknown key 'colour'", "missing 'name'",
                     "figure 'e': give numerator and denominator"):
        assert expected in text, expected


def test_a_duplicate_name_is_a_problem() -> None:
    one = {"name": "e", "what": "w", "better": "lower", "source": A, "field": "f"}
    with pytest.raises(ConfigError, match="1 problem") as caught:
        parse_figures({"figure": [one, dict(one)]})
    assert caught.value.problems == ["figure 'e' is defined twice"]


def test_load_figures_reports_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_figures(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[figure]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_figures(bad)


# ----------------------------------------------------------------- computing


def test_a_ratio_divides_per_operation_times(tmp_path: Path) -> None:
    # 100 operations per round in 2 ms against one 10 us operation: 20 us / 10 us.
    run = run_of(tmp_path, "r", entry(A, 2e-3, ops_per_round=100), entry(B, 1e-5))
    assert evaluate(ratio_figure("f", A, B), run).value == pytest.approx(2.0)
    assert evaluate(ratio_figure("f", B, A), run).value == pytest.approx(0.5)
    assert evaluate(ratio_figure("f", A, B, stat="median"), run).value == pytest.approx(2.0)


def test_a_value_figure_reads_extra_info(tmp_path: Path) -> None:
    run = run_of(tmp_path, "r", entry(C, 1.0, memory_ratio=1.42))
    [figure] = parse_figures({"figure": [
        {"name": "m", "what": "w", "better": "lower", "source": C, "field": "memory_ratio"}]})
    assert evaluate(figure, run).value == pytest.approx(1.42)


def test_missing_data_gives_no_value_and_says_why(tmp_path: Path) -> None:
    run = run_of(tmp_path, "r", entry(A, 1e-6), entry(B, 1e-6, ops_per_round=0))
    missing = evaluate(ratio_figure("f", A, C), run)
    assert missing.value is None and "b.py::test_c is not in the run" in (missing.missing or "")
    zero_ops = evaluate(ratio_figure("f", A, B), run)
    assert zero_ops.value is None and "ops_per_round=0" in (zero_ops.missing or "")


@pytest.mark.parametrize(
    ("better", "value", "limit", "target", "breaches", "meets", "gap"),
    [
        ("lower", 1.1, 1.2, 1.0, False, False, 1.1),
        ("lower", 1.3, 1.2, 1.5, True, True, None),
        ("higher", 12.0, 8.0, 10.0, False, True, None),
        ("higher", 8.0, 4.0, 10.0, False, False, 1.25),
        ("higher", 7.0, 8.0, 10.0, True, False, 10 / 7),
    ],
)
def test_limits_and_targets_follow_the_good_direction(
    tmp_path: Path, better: str, value: float, limit: float, target: float, breaches: bool, meets: bool,
    gap: float | None,
) -> None:
    run = run_of(tmp_path, "r", entry(A, value * 1e-6), entry(B, 1e-6))
    result = evaluate(ratio_figure("f", A, B, better=better, limit=limit, target=target), run)
    assert result.value == pytest.approx(value)
    assert result.breaches_limit is breaches and result.fails_gate is breaches
    assert result.meets_target is meets
    # A figure short of its target is gated by a regression limit; the gap says how far the target is.
    assert result.target_gap == (None if gap is None else pytest.approx(gap))
    assert result.status == ("meets target" if meets else f"misses target ({gap:.2f}x it)")


# ------------------------------------------------------------------- the gate


def test_the_gate_fails_on_breached_limits_and_missing_required_figures(tmp_path: Path) -> None:
    run = run_of(tmp_path, "r", entry(A, 3e-6), entry(B, 1e-6))
    figures = [
        ratio_figure("within", A, B, limit=4.0),
        ratio_figure("breached", A, B, limit=2.0),
        ratio_figure("no-limit", A, B, target=1.0),
        ratio_figure("missing-required", A, C, limit=2.0),
        ratio_figure("missing-optional", A, C, limit=2.0, optional=True),
    ]
    verdict = check(run, figures)
    assert not verdict.passed
    assert [v.figure.name for v in verdict.failures] == ["breached", "missing-required"]
    assert breached_benchmarks(verdict) == [A, B, C]
    record = verdict.as_dict()
    assert record["failures"] == ["breached", "missing-required"]
    assert json.loads(json.dumps(record))["figures"][0]["value"] == pytest.approx(3.0)
    assert check(run, figures[:1] + figures[2:3] + figures[4:]).passed


def test_a_breach_stands_only_if_every_attempt_breaches(tmp_path: Path) -> None:
    figures = [ratio_figure("lower", A, B, limit=2.0), ratio_figure("higher", B, A, better="higher", limit=0.5)]
    noisy = check(run_of(tmp_path, "first", entry(A, 3e-6), entry(B, 1e-6)), figures)
    assert [v.figure.name for v in noisy.failures] == ["lower", "higher"]
    calm = check(run_of(tmp_path, "again", entry(A, 1.5e-6), entry(B, 1e-6)), figures)
    merged = best_of([noisy, calm])
    assert merged.passed and merged.values[0].value == pytest.approx(1.5)
    worse = check(run_of(tmp_path, "worse", entry(A, 4e-6), entry(B, 1e-6)), figures)
    assert not best_of([noisy, worse]).passed
    assert best_of([noisy, worse]).values[0].value == pytest.approx(3.0)
    partial = check(run_of(tmp_path, "partial", entry(A, 1e-6)), figures)  # baseline not re-run
    assert best_of([noisy, partial]).values[0].value == pytest.approx(3.0)
    with pytest.raises(ValueError):
        best_of([])
    with pytest.raises(ValueError):
        best_of([noisy, check(run_of(tmp_path, "other", entry(A, 1e-6), entry(B, 1e-6)), figures[::-1])])


def test_spread_sets_the_tolerance_from_run_to_run_variation(tmp_path: Path) -> None:
    lower = ratio_figure("lower", A, B)
    higher = ratio_figure("higher", B, A, better="higher")
    gone = ratio_figure("gone", A, C)
    runs = [run_of(tmp_path, f"r{i}", entry(A, value * 1e-6), entry(B, 1e-6))
            for i, value in enumerate([1.0, 1.2, 1.1])]
    spreads, incomplete = spread(runs, [lower, higher, gone])
    assert incomplete == ["gone"]
    low, high = spreads
    assert low.values == pytest.approx((1.0, 1.2, 1.1)) and low.median == pytest.approx(1.1)
    # 1.0 is 1.1x better than the median: the largest deviation either way, as a factor.
    assert low.deviation == pytest.approx(0.1)
    assert low.tolerance == pytest.approx(max(TOLERANCE_FLOOR, SPREAD_FACTOR * 0.1))
    assert low.proposed_limit == pytest.approx(1.1 * (1 + low.tolerance))
    assert high.deviation == pytest.approx(low.deviation)  # the same runs, seen the other way up
    assert high.proposed_limit == pytest.approx(high.median / (1 + high.tolerance))
    steady = [run_of(tmp_path, f"s{i}", entry(A, 2e-6), entry(B, 1e-6)) for i in range(2)]
    [flat], _ = spread(steady, [lower])
    assert flat.deviation == 0 and flat.tolerance == TOLERANCE_FLOOR


def test_one_spike_among_enough_runs_does_not_widen_the_tolerance(tmp_path: Path) -> None:
    values = [1.0, 1.02, 0.98, 1.01, 3.0]  # one run where a neighbour took both cores
    runs = [run_of(tmp_path, f"r{i}", entry(A, v * 1e-6), entry(B, 1e-6)) for i, v in enumerate(values)]
    [result], _ = spread(runs, [ratio_figure("f", A, B)])
    assert len(values) >= MIN_RUNS_TO_DROP
    assert result.median == pytest.approx(1.01)
    assert result.deviation == pytest.approx(1.01 / 0.98 - 1)
    assert result.tolerance == TOLERANCE_FLOOR
    [short], _ = spread(runs[1:], [ratio_figure("f", A, B)])  # four runs: nothing is left out
    assert short.deviation == pytest.approx(3.0 / short.median - 1)


# ------------------------------------------------------ the committed figures


def test_the_committed_figures_parse_and_name_benchmarks_that_exist() -> None:
    """Every node id in benchmarks/gate.toml is collected by pytest: a renamed benchmark fails here first."""
    figures = load_figures(ROOT / "benchmarks" / "gate.toml")
    assert figures and all(f.target is not None for f in figures)
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    nodes = set(collected.stdout.split())
    missing = sorted({node for f in figures for node in f.benchmarks} - nodes)
    assert not missing, f"figures name benchmarks pytest does not collect: {missing}"
    document = tomllib.loads((ROOT / "benchmarks" / "gate.toml").read_text())
    assert len(document["figure"]) == len(figures)


def test_a_figure_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="give numerator and denominator"):
        Figure(name="f", what="w", better=Better.LOWER, numerator=A)
    with pytest.raises(ConfigError, match="give numerator and denominator"):
        Figure(name="f", what="w", better=Better.LOWER, numerator=A, denominator=B, field="x")
    with pytest.raises(ConfigError, match="stat 'p99'"):
        Figure(name="f", what="w", better=Better.LOWER, source=A, field="x", stat="p99")
