"""``qcache report``: the report's content, threshold flags, comparisons, spreads and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from qcache.bench import RunLayout, Thresholds, evaluate_all, format_comparison, format_report, load_run
from qcache.bench.report import hit_rates, latencies
from qcache.cli import main as qcache_main
from qcache.config import CacheConfig
from qcache.errors import ConfigError

from .support import entry, ratio_figure, write_run

A, B = "b.py::test_a", "b.py::test_b"
FIGURES = """
[[figure]]
name = "a-over-b"
what = "a over b"
numerator = "b.py::test_a"
denominator = "b.py::test_b"
better = "lower"
target = 1.0
limit = 1.5
"""


def sample_run(folder: Path, a_seconds: float = 1.2e-6) -> Path:
    """A run with one figure's pair, two facade latencies, eviction hit rates and a simulator result."""
    return write_run(
        folder,
        [
            entry(A, a_seconds),
            entry(B, 1e-6),
            entry("b.py::test_get[fast]", 1e-4, median=1e-4, ops_per_round=100, cache_op="get"),
            entry("b.py::test_set[slow]", 0.3, median=0.3, ops_per_round=5, cache_op="set"),
            entry("b.py::test_pool", 0.1, p99_ms=12.5, ops_per_round=100),
            entry("b.py::test_replay[LRU]", 0.1, policy="LRU", default_policy="LRU", trace="zipf", capacity=100,
                  hit_rate=0.55, credit="Trace credit line"),
            entry("b.py::test_replay[SIEVE]", 0.1, policy="SIEVE", default_policy="LRU", trace="zipf", capacity=100,
                  hit_rate=0.65),
        ],
        environment={"mode": "quick", "cpu_count": 2, "python": "3.11.7", "hiredis": True},
        machine_info={"qcache_redis": {"method": "binary", "server_version": "7.0.15"}},
        simulations={"sim_t.json": {
            "trace": "t.trace", "default_policy": "LRU", "credit": "Sim credit line",
            "results": [
                {"policy": "LRU", "capacity": 10, "hit_ratio": 85.0},
                {"policy": "BELADY", "capacity": 10, "hit_ratio": 99.0},
            ],
        }},
    )


def test_thresholds_flag_alerts_and_unhealthy_values() -> None:
    limits = Thresholds(latency_alert_ms=50.0, hit_rate_alert=0.6)
    assert limits.latency_flag(0.5) == "" and "not healthy" in limits.latency_flag(10.0)
    assert "CACHE_LATENCY_THRESHOLD 50 ms" in limits.latency_flag(50.1)
    assert limits.hit_rate_flag(0.81) == "" and "not healthy" in limits.hit_rate_flag(0.8)
    assert "CACHE_HIT_RATE_THRESHOLD 0.6" in limits.hit_rate_flag(0.59)
    with pytest.raises(ConfigError):
        Thresholds(latency_alert_ms=0.0, hit_rate_alert=0.6)
    with pytest.raises(ConfigError):
        Thresholds(latency_alert_ms=1.0, hit_rate_alert=1.5)


def test_thresholds_come_from_the_configuration() -> None:
    environ = {"CACHE_LATENCY_THRESHOLD": "20", "CACHE_HIT_RATE_THRESHOLD": "0.7"}
    config = CacheConfig.from_env(env_file=None, environ=environ)
    assert Thresholds.from_config(config) == Thresholds(latency_alert_ms=20.0, hit_rate_alert=0.7)


def test_latencies_and_hit_rates_are_read_from_extra_info_and_simulations(tmp_path: Path) -> None:
    run = load_run(RunLayout(sample_run(tmp_path / "r")))
    limits = Thresholds(latency_alert_ms=50.0, hit_rate_alert=0.6)
    found = {o.what: (round(o.ms, 3), o.flag) for o in latencies(run, limits)}
    assert found["median of test_get[fast]"] == (0.001, "")
    slow_ms, slow_flag = found["median of test_set[slow]"]
    assert slow_ms == 60.0 and "CACHE_LATENCY_THRESHOLD" in slow_flag
    assert found["p99 of test_pool"][0] == 12.5 and "not healthy" in found["p99 of test_pool"][1]
    groups = {(g.workload, g.capacity): g for g in hit_rates(run, limits)}
    bench = groups[("eviction bench, zipf", 100)]
    assert bench.best == ("SIEVE", 0.65) and bench.default == "LRU" and "not healthy" in bench.flag
    sim = groups[("simulator, t.trace", 10)]
    assert sim.rates == {"LRU": 0.85} and sim.flag == ""  # Belady is a bound, not a policy


def test_the_report_shows_figures_flags_and_credits(tmp_path: Path) -> None:
    run = load_run(RunLayout(sample_run(tmp_path / "r")))
    figure = ratio_figure("a-over-b", A, B, target=1.0, limit=1.5)
    text = format_report(run, evaluate_all([figure], run), Thresholds(50.0, 0.6))
    assert "run r (quick mode)" in text and "Redis 7.0.15 provisioned by binary" in text
    assert "a-over-b" in text and "1.200" in text and "misses target (1.20x it)" in text and "REGRESSION" not in text
    assert "ABOVE CACHE_LATENCY_THRESHOLD 50 ms: median of test_set[slow] = 60.000 ms" in text
    assert "Trace credit line" in text and "Sim credit line" in text
    noted = format_report(run, evaluate_all([figure], run), Thresholds(50.0, 0.6), notes=["a-over-b: measured again"])
    assert "  note: a-over-b: measured again" in noted.splitlines()


def test_comparison_shows_each_figure_in_both_runs(tmp_path: Path) -> None:
    base = load_run(RunLayout(sample_run(tmp_path / "base")))
    new = load_run(RunLayout(sample_run(tmp_path / "new", a_seconds=1.8e-6)))
    figures = [ratio_figure("a-over-b", A, B)]
    text = format_comparison(base, evaluate_all(figures, base), new, evaluate_all(figures, new))
    assert "A: run base" in text and "B: run new" in text
    assert "+50.0%" in text and "x1.50" in text


def cli(*args: str) -> int:
    return qcache_main(["report", *args])


def test_cli_report_and_gate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "gate.toml"
    figures.write_text(FIGURES)
    good = sample_run(tmp_path / "results" / "runs" / "good")
    sample_run(tmp_path / "results" / "runs" / "bad", a_seconds=2e-6)
    common = ("--figures", str(figures), "--results", str(tmp_path / "results"))
    assert cli(str(good), "--gate", *common) == 0
    assert "gate: PASSED (1 figures within their limits)" in capsys.readouterr().out
    assert cli("bad", "--gate", *common) == 1
    out = capsys.readouterr().out
    assert "gate: FAILED (1 figure(s))" in out and "a-over-b: 2.000, limit <= 1.5 (a over b)" in out
    assert cli("bad", "--compare", "good", *common) == 0
    assert "+66.7%" in capsys.readouterr().out
    assert cli("--spread", "good", "bad", *common) == 0
    assert "spread over 2 run(s)" in capsys.readouterr().out


def test_cli_bad_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "gate.toml"
    figures.write_text(FIGURES + 'colour = "red"\n')
    run = sample_run(tmp_path / "run")
    assert cli(str(run), "--figures", str(figures)) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err
    figures.write_text(FIGURES)
    assert cli("nope", "--figures", str(figures), "--results", str(tmp_path)) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert cli("--spread", str(run), "--gate", "--figures", str(figures)) == 2


def test_the_figures_come_from_the_repository_holding_the_run_wherever_report_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "checkout"
    (repository / "benchmarks").mkdir(parents=True)
    (repository / "benchmarks" / "gate.toml").write_text(FIGURES)
    run = sample_run(repository / "results" / "runs" / "r1", a_seconds=2e-6)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli(str(run)) == 0
    assert "a-over-b" in capsys.readouterr().out
    assert cli(str(run), "--gate") == 1
    assert "gate: FAILED" in capsys.readouterr().out
    assert cli("--spread", str(run), str(run)) == 0
    assert "a-over-b" in capsys.readouterr().out


def test_without_a_figures_file_the_report_leaves_the_figures_out_but_the_gate_needs_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = sample_run(tmp_path / "lonely")
    monkeypatch.chdir(tmp_path)
    assert cli(str(run)) == 0
    out, err = capsys.readouterr()
    assert "qcache benchmark report" in out and "a-over-b" not in out
    assert "key figures and gate limits left out" in err
    assert cli(str(run), "--gate") == 2
    assert "no figures file" in capsys.readouterr().err


def test_the_gate_judges_a_run_with_its_recorded_re_measurements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the main job did: a breach the gate measured again counts only if every attempt breached."""
    figures = tmp_path / "gate.toml"
    figures.write_text(FIGURES)
    run = sample_run(tmp_path / "run", a_seconds=2e-6)  # 2.0 against a 1.5 limit
    common = ("--figures", str(figures))
    sample_run(RunLayout(run).confirmation(1).root, a_seconds=1.9e-6)  # still past the limit
    assert cli(str(run), "--gate", *common) == 1
    assert "a-over-b: 1.900" in capsys.readouterr().out
    sample_run(RunLayout(run).confirmation(2).root, a_seconds=1.1e-6)
    assert cli(str(run), "--gate", *common) == 0
    out = capsys.readouterr().out
    assert "its 2 re-measurement(s)" in out and "gate: PASSED" in out
    sample_run(RunLayout(run).confirmation(4).root, a_seconds=9e-6)  # no confirm-3: not part of the record
    assert [c.root.name for c in RunLayout(run).confirmations()] == ["confirm-1", "confirm-2"]
