"""Reporting (table, CSV, JSON) and the ``qcache simulate`` command."""

from __future__ import annotations

import csv
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from qcache.cli import main
from qcache.memory.policies import DEFAULT_POLICY
from qcache.sim import SimResult, format_table, write_reports
from qcache.sim.cli import parse_workload
from qcache.sim.credits import ARC_CITATION, CACHE2K_CREDIT

RESULTS = [
    SimResult("t.txt", "LRU", 10, 1000, 123, 0.01),
    SimResult("t.txt", DEFAULT_POLICY, 10, 1000, 456, 0.02),
]


def test_table_has_one_row_per_policy_and_size_with_two_decimals() -> None:
    table = format_table(RESULTS, unique_keys=200, default_policy=DEFAULT_POLICY, credit="Credit.")
    lines = table.splitlines()
    assert lines[0] == "trace t.txt: 1,000 requests, 200 distinct keys"
    assert "hit ratio %" in lines[1]
    assert "12.30" in lines[3] and lines[3].startswith("LRU ")
    assert "45.60" in lines[4] and f"{DEFAULT_POLICY} (*)" in lines[4]
    assert "5%" in lines[3]
    assert lines[-1] == "Credit."


def test_table_sums_up_the_default_against_lru_the_best_other_and_belady() -> None:
    results = [
        *RESULTS,
        SimResult("t.txt", "ARC", 10, 1000, 500, 0.01),
        SimResult("t.txt", "BELADY", 10, 1000, 700, 0.01),
    ]
    table = format_table(results, unique_keys=200, default_policy=DEFAULT_POLICY)
    assert (f"size 10: {DEFAULT_POLICY} 45.60%, +33.30 vs LRU, -4.40 vs the best other, "
            "ARC 50.00%, Belady 70.00%") in table.splitlines()
    alone = format_table(RESULTS[1:], unique_keys=200, default_policy=DEFAULT_POLICY)
    assert "vs the best other" not in alone


def test_csv_and_json_carry_every_result_and_the_credit(tmp_path: Path) -> None:
    paths = write_reports(RESULTS, tmp_path / "out", unique_keys=200, credit="Credit.")
    assert [p.name for p in paths] == ["sim_t.txt.csv", "sim_t.txt.json"]
    with paths[0].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["policy"] for row in rows] == ["LRU", DEFAULT_POLICY]
    assert rows[0]["hits"] == "123" and rows[0]["misses"] == "877"
    assert rows[0]["hit_ratio"] == "12.3" and rows[0]["capacity_percent"] == "5.0"
    assert rows[0]["credit"] == "Credit."
    document = json.loads(paths[1].read_text())
    assert document["credit"] == "Credit."
    assert document["unique_keys"] == 200
    assert document["results"][1]["hits"] == 456


def _write_text_trace(path: Path) -> Path:
    rng = np.random.default_rng(0)
    keys = rng.zipf(1.3, 20000) % 3000
    path.write_text("\n".join(f"key-{k}" for k in keys) + "\n")
    return path


def test_simulate_command_prints_the_table_and_writes_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _write_text_trace(tmp_path / "mine.txt")
    code = main(
        [
            "simulate", "--trace", str(trace), "--policies", "lru,default,belady,unbounded",
            "--sizes", "1%,100", "--output", str(tmp_path / "res"), "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "LRU" in out and "BELADY" in out and "UNBOUNDED" in out
    assert f"{DEFAULT_POLICY} (*)" in out
    assert (tmp_path / "res" / "sim_mine.txt.csv").is_file()
    rows = list(csv.DictReader((tmp_path / "res" / "sim_mine.txt.csv").open()))
    assert len(rows) == len({"LRU", DEFAULT_POLICY, "BELADY", "UNBOUNDED"}) * 2
    by_policy = {(row["policy"], row["capacity"]): float(row["hit_ratio"]) for row in rows}
    assert by_policy[("LRU", "100")] <= by_policy[("BELADY", "100")] <= by_policy[("UNBOUNDED", "100")]


def test_simulate_command_credits_known_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache2k = tmp_path / "cache2k_small.trace.xz"
    cache2k.write_bytes(lzma.compress(np.arange(500, dtype=">i4").repeat(2).tobytes()))
    assert main(["simulate", "--trace", str(cache2k), "--policies", "LRU", "--sizes", "10",
                 "--no-write"]) == 0
    assert CACHE2K_CREDIT in capsys.readouterr().out
    arc = tmp_path / "small.lis"
    arc.write_text("".join(f"{k} 1 0 {i}\n" for i, k in enumerate([1, 2, 1, 3, 1])))
    assert main(["simulate", "--trace", str(arc), "--policies", "LRU", "--sizes", "2",
                 "--no-write"]) == 0
    assert ARC_CITATION in capsys.readouterr().out


def test_simulate_command_on_a_csv_column_with_a_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.csv"
    path.write_text("ts,user\n" + "".join(f"{i},{(i * 7) % 50}\n" for i in range(3000)))
    code = main(["simulate", "--trace", str(path), "--column", "user", "--policies", "SIEVE",
                 "--sizes", "2,40", "--curve", "6", "--no-write"])
    assert code == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("SIEVE")]
    assert len(rows) >= 5


def test_simulate_command_on_a_synthetic_workload_with_scans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", "--synthetic", "zipf:keys=2000,requests=20000,exponent=0.9,seed=4",
                 "--scan", "every=1000,length=200", "--policies", "lru,s3-fifo",
                 "--sizes", "5%", "--output", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "zipf(exponent=0.9" in out and "+scan(every=1000" in out
    assert len(list(tmp_path.glob("sim_zipf*.json"))) == 1


def test_progress_bar_draws_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _write_text_trace(tmp_path / "p.txt")
    assert main(["simulate", "--trace", str(trace), "--policies", "LRU", "--sizes", "10",
                 "--no-write", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "req/s" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--trace", "{tmp}/missing.txt"], "does not exist"),
        (["--trace", "{tmp}/empty.txt"], "no requests"),
        (["--trace", "{tmp}/ok.txt", "--policies", "nope"], "unknown eviction policy 'nope'"),
        (["--trace", "{tmp}/ok.txt", "--sizes", "0"], "must be positive"),
        (["--trace", "{tmp}/ok.txt", "--sizes", "0.0001%"], "rounds to zero"),
        (["--trace", "{tmp}/ok.txt", "--sizes", "1,2", "--curve", "1"], "at least 2"),
        (["--synthetic", "pareto:keys=3"], "unknown synthetic workload"),
        (["--synthetic", "zipf:keys=10,bogus=1"], "invalid parameters"),
        (["--synthetic", "zipf:keys"], "name=value"),
        (["--synthetic", "zipf:keys=10,requests=10", "--scan", "every=x,length=2"], "integers"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "ok.txt").write_text("a\nb\na\n")
    argv = ["simulate", *(a.replace("{tmp}", str(tmp_path)) for a in arguments), "--no-write"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "qcache simulate: error:" in err and message in err


def test_workload_specs_parse_numbers() -> None:
    workload = parse_workload("hotspot:keys=1_000,requests=500,hot_fraction=0.1,seed=3")
    assert "hot_fraction=0.1" in workload.name and "keys=1000" in workload.name


def test_default_sizes_that_round_to_zero_are_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "small.txt"
    trace.write_text("\n".join(f"k{i % 300}" for i in range(3000)) + "\n")
    assert main(["simulate", "--trace", str(trace), "--policies", "LRU", "--no-write"]) == 0
    out, err = capsys.readouterr()
    assert "'0.1%' of 300 distinct keys rounds to zero entries; skipped" in err
    assert [line.split()[1] for line in out.splitlines()[3:]] == ["3", "30"]
    # Sizes the user chose are never dropped: the same size given explicitly is still an error.
    assert main(["simulate", "--trace", str(trace), "--sizes", "0.1%", "--no-write"]) == 2
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("a\nb\n")
    assert main(["simulate", "--trace", str(tiny), "--no-write"]) == 2
    assert "none of the default sizes" in capsys.readouterr().err


def test_simulate_reads_a_csv_described_by_libcachesim_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("version,time,op,size,lbn\n" + "".join(f"1,{t},2a,512,{t % 7}\n" for t in range(200)))
    assert main(["simulate", "--trace", str(path), "--policies", "LRU", "--sizes", "7",
                 "--no-write"]) == 2
    assert "--column" in capsys.readouterr().err
    assert main(["simulate", "--trace", str(path), "--libcachesim-params",
                 "obj-id-col=5,has-header=true,delimiter=,", "--policies", "LRU", "--sizes", "7",
                 "--no-write"]) == 0
    assert "193" in capsys.readouterr().out  # 200 requests over 7 keys: 7 cold misses
    assert main(["simulate", "--trace", str(path), "--libcachesim-params", "obj-id-col=5",
                 "--column", "1"]) == 2
