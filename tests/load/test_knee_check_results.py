"""The ramp's knee, the run folder, and `qcache load check` on summaries with known figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qcache.cli import main as qcache_main
from qcache.load.check import Thresholds, check_summary
from qcache.load.histogram import LatencyRecorder, SecondStats
from qcache.load.knee import knee, ramp_steps
from qcache.load.results import (
    LoadResultsError,
    RunInfo,
    build_summary,
    latest_run,
    read_summary,
    summary_lines,
    write_run,
)
from qcache.load.shapes import Ramp
from qcache.load.workload import Workload

START = 1_700_000_000


def _second(count: int, latency_us: int, errors: int = 0) -> SecondStats:
    stats = SecondStats(count=count, errors=errors)
    stats.histogram.record_value(latency_us, count)
    return stats


def test_the_knee_is_the_busiest_step_that_stayed_healthy() -> None:
    ramp = Ramp(start_users=10, step_users=10, steps=4, step_s=5.0)
    # Per step: requests per second and latency; step 3 is faster but slow (p99 12 ms), step 4 errs.
    per_step = [(1000, 800), (1800, 2_000), (2500, 12_000), (2600, 900)]
    timeline = []
    for step, (rps, latency) in enumerate(per_step):
        for offset in range(5):
            errors = rps // 10 if step == 3 else 0
            timeline.append((step * 5.0 + offset, _second(rps, latency, errors)))
    steps = ramp_steps(ramp, timeline)
    assert [s.seconds for s in steps] == [4, 4, 4, 4]  # the spawn second of each step is left out
    assert [s.users for s in steps] == [10, 20, 30, 40]
    assert [s.healthy() for s in steps] == [True, True, False, False]
    best = knee(steps)
    assert best is not None and best.users == 20 and best.rps == pytest.approx(1800)


def test_no_healthy_step_means_no_knee() -> None:
    ramp = Ramp(start_users=1, step_users=1, steps=2, step_s=3.0)
    timeline = [(t, _second(100, 20_000)) for t in range(6)]
    assert knee(ramp_steps(ramp, timeline)) is None
    assert knee(ramp_steps(ramp, [])) is None  # nothing measured is never healthy


def _summary(latency_us: int, hits: int, misses: int, errors: int = 0) -> dict:
    clock_now = [float(START)]
    recorder = LatencyRecorder(clock=lambda: clock_now[0])
    recorder.user_started("CacheUserA")
    recorder.user_started("RawUser")
    for i in range(hits + misses):
        recorder.record("CacheUserA", "get", latency_us, hit=i < hits)
        recorder.record("RawUser", "get", 50_000, hit=True)  # a slow baseline: never checked
    for _ in range(errors):
        recorder.record("CacheUserA", "set", latency_us, error=True)
    clock_now[0] += 10
    info = RunInfo(
        run_id="20260101T000000Z", started_at=START, finished_at=START + 10, shape="compare",
        processes=1, workload=Workload(), config={"CACHE_ENCRYPTION_KEY": "***"}, redis={"method": "binary"},
        user_classes=("CacheUserA", "RawUser"), cache_users=("CacheUserA",),
        extra={"thresholds": {"latency_alert_ms": 50.0, "hit_rate": 0.6}},
    )
    return build_summary(recorder, info)


def test_a_healthy_run_has_no_breach_and_baselines_are_not_checked() -> None:
    summary = _summary(latency_us=300, hits=90, misses=10)
    assert check_summary(summary, Thresholds.of_run(summary)) == []
    cache_user, _baseline = summary["users"]
    assert cache_user["rps"] == pytest.approx(10.0) and cache_user["hit_rate"] == pytest.approx(0.9)
    [comparison] = summary["comparison"]
    assert comparison["throughput_ratio"] == pytest.approx(1.0)
    assert comparison["p99_ratio"] == pytest.approx(300 / 50_000, rel=1e-2)


def test_each_breach_is_named() -> None:
    summary = _summary(latency_us=60_000, hits=50, misses=50, errors=5)
    breaches = check_summary(summary, Thresholds.of_run(summary))
    described = [b.describe() for b in breaches]
    assert any("CacheUserA get: p99" in d and "alert" in d for d in described)
    assert any("CacheUserA get: p99" in d and "10 ms healthy" in d for d in described)
    assert any("hit rate 0.500 below CACHE_HIT_RATE_THRESHOLD" in d for d in described)
    assert any("error ratio" in d for d in described)
    assert not any("RawUser" in d for d in described)


def test_thresholds_from_the_run_can_be_overridden() -> None:
    summary = _summary(latency_us=20_000, hits=70, misses=30)
    assert {b.severity for b in check_summary(summary, Thresholds.of_run(summary))} == {"unhealthy"}
    relaxed = Thresholds.of_run(summary, latency_alert_ms=10, hit_rate=0.75)
    assert {(b.figure, b.severity) for b in check_summary(summary, relaxed)} == {
        ("p99", "alert"), ("p99", "unhealthy"), ("hit rate", "breach")
    }


def test_run_folder_round_trip_and_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _summary(latency_us=300, hits=90, misses=10)
    recorder = LatencyRecorder()
    folder = write_run(tmp_path / good["run_id"], good, recorder)
    for name in ("summary.json", "operations.csv", "users.csv", "timeline.csv", "histograms.json"):
        assert (folder / name).is_file()
    assert read_summary(folder) == json.loads((folder / "summary.json").read_text())
    assert latest_run(tmp_path) == folder
    assert qcache_main(["load", "check", str(folder)]) == 0
    assert "no breach" in capsys.readouterr().out

    bad = _summary(latency_us=60_000, hits=10, misses=90)
    bad["run_id"] = "20260101T000001Z"
    later = write_run(tmp_path / bad["run_id"], bad, recorder)
    assert qcache_main(["load", "check", str(later)]) == 1
    out = capsys.readouterr().out
    # 3 significant digits: 60,000 µs reads back as 60.0xx ms.
    assert re.search(r"BREACH CacheUserA get: p99 60\.0\d\d ms above the alert threshold \(50 ms\)", out)
    assert qcache_main(["load", "check", str(later), "--latency-threshold-ms", "100",
                        "--hit-rate-threshold", "0.05"]) == 1  # still above 10 ms healthy
    assert "above the 10 ms healthy bound" in capsys.readouterr().out


def test_unreadable_runs_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert qcache_main(["load", "check", str(tmp_path)]) == 2
    (tmp_path / "summary.json").write_text("{not json")
    assert qcache_main(["load", "check", str(tmp_path)]) == 2
    with pytest.raises(LoadResultsError, match="cannot be read"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(LoadResultsError, match="lacks run_id"):
        read_summary(tmp_path)
    monkeypatch.setenv("QCACHE_LOAD_RESULTS", str(tmp_path / "none"))
    assert qcache_main(["load", "check"]) == 2


def test_summary_never_holds_nan(tmp_path: Path) -> None:
    recorder = LatencyRecorder()
    recorder.user_started("Idle")
    info = RunInfo(run_id="x", started_at=START, finished_at=START + 1, shape="steady", processes=1,
                   workload=Workload(), config={}, redis={}, user_classes=("Idle",), cache_users=("Idle",))
    summary = build_summary(recorder, info)
    write_run(tmp_path, summary, recorder)  # json.dumps(allow_nan=False) would raise on a NaN
    assert summary["users"] == []


def test_the_console_summary_names_users_and_the_shape_result() -> None:
    summary = _summary(latency_us=300, hits=90, misses=10)
    summary["ramp"] = {"steps": [], "knee": {"users": 20, "rps": 1234.0, "p99_us": 4500.0}}
    summary["chaos"] = {"mode": "kill", "fault_at_s": 2.0, "restored_at_s": 3.5, "caller_exceptions": 0,
                        "l2_recovery_s": 1.2, "error_ratio": 0.0, "p99_during_fault_us": 900.0,
                        "max_during_fault_us": 2_000_000.0}
    lines = "\n".join(summary_lines(summary))
    assert "CacheUserA" in lines and "hit rate 0.900" in lines
    assert "compare: CacheUserA / RawUser throughput 1.00x" in lines
    assert "ramp knee: 1,234 req/s at 20 users, p99 4.50 ms" in lines
    assert "chaos: kill at 2.0 s, Redis back at 3.5 s, L2 hits back 1.2 s after; caller exceptions 0" in lines
    assert "p99 0.90 ms, longest call 2000.0 ms, error ratio 0.0000" in lines
    summary["ramp"]["knee"] = None
    assert "ramp knee: none" in "\n".join(summary_lines(summary))


def test_compare_rounds_pair_adjacent_phases_and_ignore_a_disturbed_one() -> None:
    from qcache.load.results import phase_ratios
    from qcache.load.shapes import Compare

    compare = Compare("Cache", "Raw", users=4, phase_s=3.0, rounds=3)
    # Each phase: its first second left out; the cache does 2000/s, the raw user 1000/s, except that
    # round 2's raw phase ran while the machine was busy (400/s).
    rates = [2000, 1000, 2000, 400, 2000, 1000]
    timeline = [(phase * 3.0 + offset, rates[phase]) for phase in range(6) for offset in (0, 1, 2)]
    assert phase_ratios(compare, timeline) == [2.0, 5.0, 2.0]
    assert phase_ratios(compare, []) == []
