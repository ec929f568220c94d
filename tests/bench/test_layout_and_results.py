"""Run folders: ids, creation, finding a run by spec, and reading one back."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qcache.bench import ResultsError, RunLayout, load_run, new_run_id, resolve_run, run_folders

from .support import entry, write_run


def test_run_ids_are_utc_timestamps_that_sort_by_time() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert new_run_id(moment) == "20250304T030607Z"
    later = new_run_id(moment + timedelta(seconds=1))
    assert sorted([later, new_run_id(moment)]) == [new_run_id(moment), later]


def test_create_makes_a_fresh_folder_and_refuses_to_reuse_one(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "runs" / "r1").create()
    assert layout.root.is_dir() and layout.run_id == "r1"
    assert layout.benchmarks.name == "benchmarks.json" and layout.simulation.name == "simulation"
    with pytest.raises(ResultsError, match="already exists"):
        RunLayout(tmp_path / "runs" / "r1").create()


def made_at(folder: Path, seconds: float) -> Path:
    """Date a run folder's results (what "latest" goes by)."""
    os.utime(folder / "benchmarks.json", (seconds, seconds))
    return folder


def test_latest_prefers_scratch_runs_and_falls_back_to_the_reference(tmp_path: Path) -> None:
    reference = made_at(write_run(tmp_path / "reference" / "20250101T000000Z", []), 3_000)
    assert resolve_run(None, tmp_path).root == reference
    made_at(write_run(tmp_path / "runs" / "zz-named-early", []), 1_000)
    newest = made_at(write_run(tmp_path / "runs" / "aa-named-late", []), 2_000)
    (tmp_path / "runs" / "20990101T000000Z").mkdir()  # an interrupted run without results is ignored
    assert resolve_run(None, tmp_path).root == newest
    assert [p.name for p in run_folders(tmp_path)] == ["zz-named-early", "aa-named-late", "20250101T000000Z"]


def test_a_run_is_found_by_folder_file_or_id_and_anything_else_is_an_error(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "runs" / "abc", [])
    assert resolve_run(str(folder), tmp_path).root == folder
    assert resolve_run(str(folder / "benchmarks.json"), tmp_path).root == folder
    assert resolve_run("abc", tmp_path).root == folder
    with pytest.raises(ResultsError, match="no run 'nope'"):
        resolve_run("nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="has no benchmarks.json"):
        resolve_run(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ResultsError, match="no benchmark runs"):
        resolve_run(None, tmp_path / "elsewhere")


def test_load_run_reads_statistics_extra_info_environment_and_simulations(tmp_path: Path) -> None:
    folder = write_run(
        tmp_path / "r",
        [entry("b.py::test_x[1]", 2e-6, median=3e-6, group="g", ops_per_round=10, note="n")],
        environment={"mode": "quick"},
        simulations={"sim_a.json": {"trace": "a", "results": []}},
    )
    run = load_run(RunLayout(folder))
    bench = run.get("b.py::test_x[1]")
    assert bench is not None and run.get("b.py::missing") is None
    assert (bench.stat("min"), bench.stat("median"), bench.group) == (2e-6, 3e-6, "g")
    assert bench.number("ops_per_round") == 10.0
    assert run.environment == {"mode": "quick"} and run.run_id == "r"
    assert [doc["trace"] for doc in run.simulations()] == ["a"]
    with pytest.raises(ValueError, match="unknown statistic"):
        bench.stat("p99")


@pytest.mark.parametrize("value", [None, "12", True, float("nan")])
def test_a_non_numeric_extra_info_value_is_an_error_naming_the_benchmark(tmp_path: Path, value: object) -> None:
    folder = write_run(tmp_path / "r", [entry("b.py::test_x", 1e-6, field=value)])
    bench = load_run(RunLayout(folder)).get("b.py::test_x")
    assert bench is not None
    with pytest.raises(ResultsError, match=r"b.py::test_x has no numeric extra_info 'field'"):
        bench.number("field")


def test_malformed_results_are_errors_not_defaults(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "r").create()
    with pytest.raises(ResultsError, match="does not exist"):
        load_run(layout)
    layout.benchmarks.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_run(layout)
    layout.benchmarks.write_text(json.dumps({"machine_info": {}}))
    with pytest.raises(ResultsError, match="no 'benchmarks' list"):
        load_run(layout)
    broken = entry("b.py::test_x", 1e-6)
    del broken["stats"]["median"]
    layout.benchmarks.write_text(json.dumps({"benchmarks": [broken]}))
    with pytest.raises(ResultsError, match=r"b.py::test_x has no numeric stats.median"):
        load_run(layout)
