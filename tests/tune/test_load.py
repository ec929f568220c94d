"""The Locust summary reader: the documented schema, absent optional sections, and malformed ones."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from qcache.tune import TuneError
from qcache.tune.load import latest_load_run, read_summary


def summary(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "r1",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:01:00Z",
        "duration_s": 60.0,
        "shape": "chaos",
        "processes": 2,
        "workload": {"keys": 1000, "zipf_s": 1.0, "value_bytes": 512, "hot_keys": 10, "read_ratio": 0.9},
        "config": {},
        "redis": {"method": "binary", "server_version": "7"},
        "operations": [
            {
                "user": "ReadHeavyUser",
                "operation": "get",
                "count": 100,
                "errors": 1,
                "hits": 80,
                "misses": 20,
                "rps": 50.0,
                "mean_us": 300.0,
                "p50_us": 250.0,
                "p90_us": 400.0,
                "p99_us": 900.0,
                "p999_us": 1500.0,
                "max_us": 2000.0,
            }
        ],
        "users": [],
        "timeline": [{"t_s": 1.0, "users": 5, "rps": 40.0, "errors": 0, "p99_us": 800.0, "l2_hits": 3}],
        "ramp": {
            "steps": [{"users": 5, "rps": 40.0, "p99_us": 800.0, "error_ratio": 0.0}],
            "knee": {"users": 5, "rps": 40.0, "p99_us": 800.0},
        },
        "chaos": {
            "mode": "kill",
            "fault_at_s": 10.0,
            "restart_at_s": 20.0,
            "caller_exceptions": 0,
            "error_ratio": 0.01,
            "p99_during_fault_us": 5000.0,
            "l2_recovery_s": None,
        },
    }
    doc.update(changes)
    return doc


def write(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(doc))
    return folder


def test_full_summary_reads_into_records(tmp_path: Path) -> None:
    loaded = read_summary(write(tmp_path / "load" / "r1", summary()))
    assert loaded.shape == "chaos" and loaded.processes == 2
    assert loaded.operations[0].p99_us == 900.0
    assert loaded.timeline[0].users == 5 and loaded.knee is not None and loaded.knee.users == 5
    assert loaded.chaos is not None and loaded.chaos.l2_recovery_s is None
    assert math.isnan(loaded.knee.error_ratio)


def test_optional_sections_may_be_absent(tmp_path: Path) -> None:
    doc = summary(shape="steady")
    for key in ("ramp", "chaos", "timeline"):
        del doc[key]
    loaded = read_summary(write(tmp_path / "r", doc))
    assert loaded.ramp == () and loaded.knee is None and loaded.chaos is None and loaded.timeline == ()


def test_malformed_sections_name_the_field(tmp_path: Path) -> None:
    bad = summary()
    bad["operations"][0]["p99_us"] = "fast"
    with pytest.raises(TuneError, match=r"operations\[0\].*p99_us"):
        read_summary(write(tmp_path / "a", bad))
    with pytest.raises(TuneError, match="chaos"):
        read_summary(write(tmp_path / "b", summary(chaos=[1, 2])))
    with pytest.raises(TuneError, match="does not exist"):
        read_summary(tmp_path / "missing")


def test_latest_load_run(tmp_path: Path) -> None:
    assert latest_load_run(tmp_path) is None
    write(tmp_path / "load" / "a", summary())
    newest = write(tmp_path / "load" / "b", summary(run_id="b"))
    assert latest_load_run(tmp_path) == newest
