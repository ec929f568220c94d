"""The peers comparison read from a run: rows, their order, the text report and the notebook table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcache.bench import Thresholds, format_report, load_run
from qcache.bench.layout import RunLayout
from qcache.bench.peers import PEERS, format_peers, missing_peers, peer_rows
from qcache.tune.tables import peers_table

from .support import entry, write_run


def peer(name: str, operation: str, contender: str, ratio: float, baseline: str, serializer: str) -> dict[str, Any]:
    return entry(f"benchmarks/test_peers_bench.py::{name}", 1e-3, peer_operation=operation, peer=contender,
                 serializer=serializer, baseline=baseline, ratio=ratio, ratio_q1=ratio * 0.9,
                 ratio_q3=ratio * 1.1, top_ns=ratio * 1000.0, bottom_ns=1000.0, pairs=21)


def peers_run(tmp_path: Path) -> Any:
    return load_run(RunLayout(write_run(tmp_path / "r", [
        peer("test_peer_on_redis[l2-hit-qcache]", "l2-hit", "qcache QueryCache", 1.13,
             "redis-py GET + msgpack", "msgpack"),
        peer("test_peer_on_redis[l2-hit-dogpile]", "l2-hit", "dogpile.cache redis", 1.09,
             "redis-py GET + msgpack", "pickle"),
        peer("test_peer_in_process[l1-hit-qcache]", "l1-hit", "qcache QueryCache", 0.45,
             "cachetools TTLCache", "none"),
        peer("test_peer_in_process[l1-hit-cachebox]", "l1-hit", "cachebox TTLCache (Rust)", 0.07,
             "cachetools TTLCache", "none"),
        entry("benchmarks/test_cache_bench.py::test_other", 1e-6, ratio=2.0),  # no peer label: not a row
    ])))


def test_rows_come_from_labelled_benchmarks_in_operation_order_fastest_first(tmp_path: Path) -> None:
    rows = peer_rows(peers_run(tmp_path))
    assert [(r.operation, r.contender) for r in rows] == [
        ("l1-hit", "cachebox TTLCache (Rust)"), ("l1-hit", "qcache QueryCache"),
        ("l2-hit", "dogpile.cache redis"), ("l2-hit", "qcache QueryCache"),
    ]
    first = rows[0]
    assert first.ratio == 0.07 and first.ratio_q1 == 0.07 * 0.9 and first.baseline == "cachetools TTLCache"
    assert rows[1].is_qcache and not first.is_qcache


def test_peers_not_in_the_run_are_named_as_missing(tmp_path: Path) -> None:
    rows = peer_rows(peers_run(tmp_path))
    assert missing_peers(rows) == ["theine", "aiocache", "cashews"]
    assert missing_peers([]) == list(PEERS)
    text = "\n".join(format_peers(rows))
    assert "not measured (not installed? pip install qcache[peers]): theine, aiocache, cashews" in text
    assert "no peer benchmarks in this run" in format_peers([])[0]


def test_the_report_and_the_notebook_table_show_each_contender_with_its_serializer(tmp_path: Path) -> None:
    run = peers_run(tmp_path)
    text = format_report(run, [], Thresholds(50.0, 0.6))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("peers:"))
    assert lines[start + 1].startswith("  l1-hit (in-process hit")
    assert "cachebox TTLCache (Rust)" in lines[start + 2] and "0.070x" in lines[start + 2]
    assert lines[start + 3].lstrip().startswith("*qcache QueryCache") and "[none]" in lines[start + 3]
    assert "vs redis-py GET + msgpack  [pickle]" in text
    table = peers_table(peer_rows(run))
    assert "| l2-hit | **qcache QueryCache** | 1.130 | 1.02-1.24 | redis-py GET + msgpack | msgpack |" in table
