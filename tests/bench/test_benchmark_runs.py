"""How the benchmark suites run (benchmarks/conftest.py) and the main job end to end.

Both start real pytest processes: a synthetic suite under the real
conftest for the run modes, and ``benchmarks/main.py`` on two tiny
benchmarks for the results layout and the gate. Nothing here asserts a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SUITE = '''
import pytest

@pytest.mark.benchmark(group="g")
def test_measured(benchmark, smoke):
    benchmark.extra_info["smoke"] = smoke
    assert benchmark(sum, [1, 2, 3]) == 6
    assert benchmark.enabled is not smoke

@pytest.mark.timing
def test_asserts_a_ratio():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A copy of the benchmark conftest with a measured test and a timing test beside it."""
    for name in ("conftest.py", "bench_support.py"):
        pytester.makepyfile(**{name[:-3]: (ROOT / "benchmarks" / name).read_text()})
    pytester.makeini("[pytest]\nmarkers =\n    timing: asserts time ratios\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_a_plain_run_smoke_runs_benchmarks_once_and_skips_timing_tests(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*asserts time ratios: runs only when benchmarks measure*"])
    result.stdout.no_fnmatch_line("*Name (time in*")


def test_benchmark_only_measures_in_quick_mode_and_records_the_machine(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--benchmark-only", "--benchmark-json=out.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)  # the timing test is not a benchmark: pytest-benchmark skips it
    document = json.loads((suite.path / "out.json").read_text())
    [bench] = document["benchmarks"]
    assert bench["extra_info"]["smoke"] is False and bench["options"]["max_time"] == 0.25
    info = document["machine_info"]["qcache_bench"]
    assert info["mode"] == "quick" and info["cpu_count"] >= 1 and isinstance(info["hiredis"], bool)


def test_full_mode_with_benchmarks_enabled_runs_timing_tests_too(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--benchmark-enable", "--bench-mode=full", "--benchmark-json=out.json",
                                        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    [bench] = json.loads((suite.path / "out.json").read_text())["benchmarks"]
    assert bench["options"]["max_time"] == 1.0


def test_an_explicit_max_time_wins_over_the_mode(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("--benchmark-only", "--benchmark-max-time=0.05", "--benchmark-json=out.json",
                               "-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=1)
    [bench] = json.loads((suite.path / "out.json").read_text())["benchmarks"]
    assert bench["options"]["max_time"] == 0.05


TOPOLOGY_SUITE = '''
from redis.cluster import RedisCluster

LEFT = {}


def test_on_each_topology(benchmark, topology):
    cache = topology.make_cache("L2_REDIS")
    cache.set_many({f"k{i}": i for i in range(50)}, ttl=60)
    raw = [topology.key_prefix + f"raw{i}" for i in range(50)]
    pipe = topology.client.pipeline(transaction=False)
    for key in raw:
        pipe.set(key, b"1", px=60_000)
    pipe.execute()
    assert topology.mget(raw) == [b"1"] * 50
    assert isinstance(topology.client, RedisCluster) is (topology.name == "cluster")
    assert benchmark(cache.get_many, ["k1", "k49"]) == {"k1": 1, "k49": 49}
    LEFT[topology.name] = (cache.config.core.key_prefix + ":", topology.key_prefix)


def test_nothing_is_left_behind(redis_client, redis_cluster):
    clients = {"standalone": redis_client, "cluster": redis_cluster.client()}
    assert set(LEFT) == set(clients)
    for name, prefixes in LEFT.items():
        for prefix in prefixes:
            assert list(clients[name].scan_iter(match=prefix + "*")) == [], (name, prefix)
'''


def test_redis_benchmarks_run_on_standalone_and_cluster_and_clean_up_both(pytester: pytest.Pytester) -> None:
    for name in ("conftest.py", "bench_support.py"):
        pytester.makepyfile(**{name[:-3]: (ROOT / "benchmarks" / name).read_text()})
    pytester.makepyfile(test_topology=TOPOLOGY_SUITE)
    # --benchmark-enable rather than -only: the check that follows is not a benchmark
    result = pytester.runpytest_subprocess("--benchmark-enable", "--benchmark-json=out.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    benches = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert {b["name"]: b["extra_info"]["topology"] for b in benches} == {
        "test_on_each_topology[standalone]": "standalone", "test_on_each_topology[cluster]": "cluster",
    }


GATE = """
[[figure]]
name = "dict-over-ttlcache"
what = "dict.get over TTLCache.get, with a limit no machine meets"
numerator = "benchmarks/test_levels_bench.py::test_l1_hit_dict"
denominator = "benchmarks/test_levels_bench.py::test_l1_hit_cachetools_ttlcache"
better = "lower"
target = 1.0
limit = 0.000001
"""


def test_the_main_job_writes_the_layout_reports_and_fails_a_confirmed_regression(tmp_path: Path) -> None:
    figures = tmp_path / "gate.toml"
    figures.write_text(GATE)
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "main.py"), "--output", str(tmp_path / "runs"),
         "--run-id", "e2e", "-k", "test_l1_hit_dict or test_l1_hit_cachetools_ttlcache",
         "--no-shared-traces", "--sim-requests", "2000", "--gate", "--figures", str(figures),
         "--confirmations", "1", "--no-notebooks"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    run = tmp_path / "runs" / "e2e"
    for name in ("benchmarks.json", "environment.json", "pytest.log", "report.txt", "gate.json",
                 "confirm-1/benchmarks.json"):
        assert (run / name).is_file(), name
    assert len(list((run / "simulation").glob("sim_zipf*.csv"))) == 1
    document = json.loads((run / "benchmarks.json").read_text())
    assert len(document["benchmarks"]) == 2 and "data" not in document["benchmarks"][0]["stats"]
    environment = json.loads((run / "environment.json").read_text())
    assert environment["mode"] == "quick" and environment["simulations"][0]["synthetic"].startswith("zipf:")
    gate = json.loads((run / "gate.json").read_text())
    assert gate["passed"] is False and gate["failures"] == ["dict-over-ttlcache"]
    assert "measuring again (1/1)" in completed.stdout
    assert "gate: FAILED (1 figure(s))" in (run / "report.txt").read_text()
    summary = completed.stdout[completed.stdout.index("qcache main job: run e2e"):].splitlines()
    assert len(summary) <= 40
    assert f"text report     {run}/report.txt" in completed.stdout
    assert "gate: dict-over-ttlcache" in completed.stdout  # the breach, named in the summary
    assert "notebooks skipped (--no-notebooks)" in completed.stdout
    assert (run / "recommended.env").is_file()
