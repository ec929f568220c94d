"""The main job's simulator step on a user's own traces: options pass through, small traces run.

``benchmarks/main.py`` is imported as a module and its simulator step called
directly, so these run in well under a second with no benchmark and no Redis.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def main_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qcache_main_job", ROOT / "benchmarks" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def simulate(main_job: ModuleType, tmp_path: Path, argv: list[str]) -> list[dict]:
    """Parse ``argv`` as the main job would and run its simulator step on the user's traces only
    (its tables and notes go to ``tmp_path/pytest.log``, as the main job's go to the run's log)."""
    args = main_job.parse_args([*argv, "--no-shared-traces"])
    return main_job.run_simulator(tmp_path / "sim", args.trace, [], 1000, main_job.trace_options(args),
                                  args.trace_format, args.sizes, tmp_path / "pytest.log")


def written(tmp_path: Path, trace: str) -> dict:
    return json.loads((tmp_path / "sim" / f"sim_{trace}.json").read_text())


def keys_cycle(distinct: int, requests: int) -> list[str]:
    return [f"k{i % distinct}" for i in range(requests)]


def test_a_csv_with_a_header_is_read_from_the_named_column(main_job: ModuleType, tmp_path: Path) -> None:
    trace = tmp_path / "user.csv"
    rows = [f"{1700000000 + i},{key}" for i, key in enumerate(keys_cycle(300, 3000))]
    trace.write_text("ts,key\n" + "\n".join(rows) + "\n")
    ran = simulate(main_job, tmp_path, ["--trace", str(trace), "--trace-column", "key"])
    assert [r["exit_code"] for r in ran] == [0]
    document = written(tmp_path, "user.csv")
    # 300 keys, not 3000 distinct timestamps plus the header.
    assert document["unique_keys"] == 300


def test_header_delimiter_and_index_pass_through(main_job: ModuleType, tmp_path: Path) -> None:
    trace = tmp_path / "user.tsv"
    trace.write_text("key;ts\n" + "\n".join(f"{k};{i}" for i, k in enumerate(keys_cycle(50, 500))) + "\n")
    ran = simulate(main_job, tmp_path, ["--trace", str(trace), "--trace-header",
                                        "--trace-delimiter", ";", "--sizes", "5"])
    assert [r["exit_code"] for r in ran] == [0]
    document = written(tmp_path, "user.tsv")
    assert document["unique_keys"] == 50 and {row["capacity"] for row in document["results"]} == {5}


def test_a_text_trace_named_dot_trace_is_text_and_small_traces_skip_tiny_defaults(
    main_job: ModuleType, tmp_path: Path
) -> None:
    trace = tmp_path / "user_keys.trace"
    trace.write_text("\n".join(keys_cycle(231, 2000)) + "\n")
    ran = simulate(main_job, tmp_path, ["--trace", str(trace)])
    assert [r["exit_code"] for r in ran] == [0]
    document = written(tmp_path, "user_keys.trace")
    assert document["unique_keys"] == 231
    # 0.1% of 231 keys is no cache: skipped with a note, while 1% and 10% still run.
    assert {row["capacity"] for row in document["results"]} == {2, 23}
    assert "'0.1%' of 231 distinct keys rounds to zero entries; skipped" in (tmp_path / "pytest.log").read_text()


def test_an_explicit_format_wins(main_job: ModuleType, tmp_path: Path) -> None:
    trace = tmp_path / "keys.txt"
    trace.write_bytes(np.arange(40, dtype=">i4").tobytes())
    ran = simulate(main_job, tmp_path, ["--trace", str(trace), "--trace-format", "cache2k",
                                        "--sizes", "4"])
    assert [r["exit_code"] for r in ran] == [0]
    assert written(tmp_path, "keys.txt")["unique_keys"] == 40


def test_bad_trace_options_are_usage_errors(main_job: ModuleType, tmp_path: Path) -> None:
    trace = tmp_path / "k.txt"
    trace.write_text("a\n")
    for argv in (["--trace-delimiter", ";;"], ["--trace-format", "parquet"]):
        with pytest.raises(SystemExit) as stopped:
            main_job.parse_args(["--trace", str(trace), *argv])
        assert stopped.value.code == 2
