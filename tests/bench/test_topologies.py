"""Cluster beside standalone in the report: benchmarks paired by node id across the topology parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qcache.bench import Thresholds, format_report, load_run
from qcache.bench.layout import RunLayout
from qcache.bench.topologies import format_topologies, topology_rows, without_topology

from .support import entry, write_run

BATCH = "benchmarks/test_batch_bench.py::"
LEVELS = "benchmarks/test_levels_bench.py::"


def on(fullname: str, topology: str, median: float, group: str, **extra: Any) -> dict[str, Any]:
    return entry(fullname, median / 2, median=median, group=group, topology=topology, **extra)


def topologies_run(tmp_path: Path) -> Any:
    return load_run(RunLayout(write_run(tmp_path / "r", [
        on(BATCH + "test_get_many_querycache[standalone-100]", "standalone", 1e-3, "batch: get_many of 100 keys"),
        on(BATCH + "test_get_many_querycache[cluster-100]", "cluster", 1.5e-3, "batch: get_many of 100 keys"),
        on(BATCH + "test_get_many_querycache[standalone-10]", "standalone", 4e-4, "batch: get_many of 10 keys"),
        on(BATCH + "test_get_many_querycache[cluster-10]", "cluster", 2e-4, "batch: get_many of 10 keys"),
        # 100 gets per round: per-operation times on both sides
        on(LEVELS + "test_l2_get_querycache_l2_only[standalone]", "standalone", 1e-2, "levels: get",
           ops_per_round=100),
        on(LEVELS + "test_l2_get_querycache_l2_only[cluster]", "cluster", 1.2e-2, "levels: get", ops_per_round=100),
        on(LEVELS + "test_set_querycache[BOTH-standalone]", "standalone", 3e-2, "levels: set", ops_per_round=100),
        on(LEVELS + "test_set_querycache[BOTH-cluster]", "cluster", 6e-2, "levels: set", ops_per_round=100),
        # no twin on the cluster: not a row
        on(LEVELS + "test_set_querycache[L1_MEMORY]", "standalone", 1e-3, "levels: set", ops_per_round=100),
        on(BATCH + "test_set_many_querycache[cluster-1]", "cluster", 1e-4, "batch: set_many of 1 key"),
        # no topology label: not a row
        entry(LEVELS + "test_l1_hit_dict", 1e-6, group="levels: get"),
    ])))


@pytest.mark.parametrize(("name", "topology", "expected"), [
    ("test_get_many_querycache[cluster-100]", "cluster", "test_get_many_querycache[100]"),
    ("test_get_many_querycache[standalone-100]", "standalone", "test_get_many_querycache[100]"),
    ("test_set_querycache[BOTH-cluster]", "cluster", "test_set_querycache[BOTH]"),
    ("test_l2_get_querycache_l2_only[cluster]", "cluster", "test_l2_get_querycache_l2_only"),
    ("test_l1_hit_querycache[both-metrics]", "cluster", "test_l1_hit_querycache[both-metrics]"),
    ("test_l1_hit_dict", "standalone", "test_l1_hit_dict"),
])
def test_the_topology_parameter_is_removed_from_a_node_name(name: str, topology: str, expected: str) -> None:
    assert without_topology(name, topology) == expected


def test_rows_pair_each_cluster_benchmark_with_its_standalone_twin_per_operation(tmp_path: Path) -> None:
    rows = topology_rows(topologies_run(tmp_path))
    assert [(r.group, r.benchmark) for r in rows] == [  # grouped, in the order the run took them
        ("batch: get_many of 100 keys", "test_get_many_querycache[100]"),
        ("batch: get_many of 10 keys", "test_get_many_querycache[10]"),
        ("levels: get", "test_l2_get_querycache_l2_only"),
        ("levels: set", "test_set_querycache[BOTH]"),
    ]
    ratios = [r.ratio for r in rows]
    assert ratios == pytest.approx([1.5, 0.5, 1.2, 2.0])
    assert rows[2].standalone_s == pytest.approx(1e-4) and rows[2].cluster_s == pytest.approx(1.2e-4)


def test_the_report_shows_the_pairs_by_group_and_leaves_the_section_out_without_any(tmp_path: Path) -> None:
    text = format_report(topologies_run(tmp_path), [], Thresholds(50.0, 0.6))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cluster vs standalone:"))
    assert lines[start + 1] == "  batch: get_many of 100 keys"
    assert lines[start + 3] == "  batch: get_many of 10 keys"
    assert lines[start + 4].split() == ["test_get_many_querycache[10]", "standalone", "400.00", "us",
                                        "cluster", "200.00", "us", "0.50x"]
    assert "test_l2_get_querycache_l2_only" in lines[start + 6] and lines[start + 6].endswith("1.20x")
    assert "L1_MEMORY" not in "\n".join(lines[start:start + 10])

    plain = load_run(RunLayout(write_run(tmp_path / "plain", [entry(LEVELS + "test_l1_hit_dict", 1e-6)])))
    assert topology_rows(plain) == [] and format_topologies([]) == []
    assert "cluster vs standalone" not in format_report(plain, [], Thresholds(50.0, 0.6))


def test_only_the_topology_parameter_is_removed() -> None:
    assert without_topology("test_f[cluster-100]", "cluster") == "test_f[100]"
    assert without_topology("test_f[cluster]", "cluster") == "test_f"
    assert without_topology("test_f[cluster-cluster]", "cluster") == "test_f[cluster]"  # another parameter's value
    assert without_topology("test_f[standalone-100]", "cluster") == "test_f[standalone-100]"
    assert without_topology("test_f", "cluster") == "test_f"
