"""Reading the committed reference run: the evidence, the curves and the threshold checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qcache.bench import evaluate_all, load_figures, load_run
from qcache.memory.policies import available_policies
from qcache.tune import (
    Status,
    TuneError,
    Workload,
    count_by_status,
    curves_from_run,
    find_results_root,
    gather,
    hit_rate_checks,
    hit_rate_status,
    key_figures,
    latency_checks,
    latency_status,
    open_run,
    recommend,
    render_env,
    validate_env_text,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = max((ROOT / "results" / "reference").iterdir())


def test_thresholds_follow_the_seed() -> None:
    assert latency_status(9.99) is Status.HEALTHY
    assert latency_status(10.0) is Status.WARNING
    assert latency_status(50.0) is Status.WARNING
    assert latency_status(50.01) is Status.ALERT
    assert hit_rate_status(0.59) is Status.ALERT
    assert hit_rate_status(0.6) is Status.WARNING
    assert hit_rate_status(0.8) is Status.WARNING  # the seed: healthy when hit_rate > 0.8
    assert hit_rate_status(0.81) is Status.HEALTHY


def test_reference_run_yields_every_suite() -> None:
    run = open_run(REFERENCE)
    evidence = gather(run)
    assert {t.strategy for t in evidence.op_times} == {"WRITE_THROUGH", "WRITE_BACK", "WRITE_AROUND"}
    assert {s.algorithm for s in evidence.codec} == {"none", "lz4", "zstd"}
    assert evidence.batches and evidence.pools and evidence.encryption
    assert set(evidence.policy_get_ns) == set(available_policies())
    assert evidence.l1_overhead_bytes and evidence.l2_get_us and evidence.l1_get_us
    assert evidence.l2_get_us > evidence.l1_get_us
    curves = curves_from_run(run)
    assert {c.policy for c in curves} >= {"LRU", "BELADY"}


def test_key_figures_are_judged_as_the_gate_judged_them() -> None:
    # The reference run holds a re-measurement (confirm-1): each figure is its best value over both.
    run = open_run(REFERENCE)
    figures = load_figures(ROOT / "benchmarks" / "gate.toml")
    first = evaluate_all(figures, run)
    again = evaluate_all(figures, load_run(run.layout.confirmations()[0]))
    judged = key_figures(run)
    assert [v.figure.name for v in judged] == [f.name for f in figures]
    moved = [(a, b, j) for a, b, j in zip(first, again, judged) if a.value and b.value and a.value != b.value]
    assert moved
    for a, b, j in moved:
        best = min(a.value, b.value) if a.figure.better.value == "lower" else max(a.value, b.value)  # type: ignore[type-var]
        assert j.value == best


def test_reference_checks_cover_every_latency_and_hit_rate() -> None:
    run = open_run(REFERENCE)
    latencies, rates = latency_checks(run), hit_rate_checks(run)
    assert latencies and rates
    assert all(c.status is latency_status(c.value) for c in latencies)
    assert all(c.status is hit_rate_status(c.value) for c in rates)
    assert sum(count_by_status(rates).values()) == len(rates)


def test_reference_recommendation_validates() -> None:
    run = open_run(REFERENCE)
    rec = recommend(Workload(), gather(run), curves_from_run(run))
    assert validate_env_text(render_env(rec)) == []


def test_results_root_is_found_from_a_subfolder_and_a_bad_run_is_an_error(tmp_path: Path) -> None:
    assert find_results_root(ROOT / "notebooks") == ROOT / "results"
    with pytest.raises(Exception, match="no run"):
        open_run("no-such-run", ROOT / "results")
    with pytest.raises(TuneError):
        find_results_root(tmp_path)


def _bench(name: str, median: float, **extra: Any) -> dict[str, Any]:
    """One pytest-benchmark entry of the batch or levels suite."""
    stats = dict.fromkeys(("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3"), median)
    return {"name": name, "fullname": f"benchmarks/x.py::{name}", "group": None, "extra_info": extra,
            "stats": {**stats, "rounds": 5}}


def test_batch_sizes_and_the_l2_get_are_read_from_the_standalone_side_of_a_run(tmp_path: Path) -> None:
    # The batch and levels suites run each Redis benchmark on standalone and on a cluster.
    folder = tmp_path / "run"
    folder.mkdir()
    entries = [
        _bench("test_get_many_querycache[standalone-100]", 1e-3, topology="standalone", cache_op="get_many", keys=100),
        _bench("test_get_many_querycache[cluster-100]", 2e-3, topology="cluster", cache_op="get_many", keys=100),
        _bench("test_l2_get_querycache_l2_only[cluster]", 3e-2, topology="cluster", ops_per_round=100),
        _bench("test_l2_get_querycache_l2_only[standalone]", 2e-2, topology="standalone", ops_per_round=100),
    ]
    (folder / "benchmarks.json").write_text(json.dumps({"benchmarks": entries}))
    evidence = gather(open_run(folder))
    assert [(s.op, s.keys, s.us) for s in evidence.batches] == [("get_many", 100, pytest.approx(1000.0))]
    assert evidence.l2_get_us == pytest.approx(200.0)
    # A run made before the suites crossed topologies names the L2 get without a parameter.
    entries = [_bench("test_l2_get_querycache_l2_only", 1e-2, ops_per_round=100)]
    (folder / "benchmarks.json").write_text(json.dumps({"benchmarks": entries}))
    assert gather(open_run(folder)).l2_get_us == pytest.approx(100.0)
