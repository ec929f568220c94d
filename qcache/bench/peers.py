"""The peers comparison: qcache beside the caches a user would pick instead, read from one run.

``benchmarks/test_peers_bench.py`` times each contender against its
operation's baseline in alternating rounds and labels the benchmark's
``extra_info`` (``peer_operation``, ``peer``, ``serializer``, ``baseline``,
``ratio`` and its quartiles). This module gathers those labels into rows and
formats them for ``qcache report`` and the overview notebook. A ratio is the
contender's time over the baseline's, both measured side by side: lower is
faster. Peers that were not installed left no benchmark; they are named as
missing rather than silently absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qcache.bench.results import Run

#: The libraries the comparison is meant to cover (their benchmarks skip when one is not installed).
PEERS = ("cachetools", "cachebox", "theine", "dogpile.cache", "aiocache", "cashews")
#: The operations in the order the report lists them, with what each measures.
OPERATIONS = {
    "l1-hit": "in-process hit, 1k entries held (sync)",
    "l1-set": "in-process set of a new key (sync)",
    "async-l1-hit": "in-process hit (async)",
    "l2-hit": "Redis hit, small dict",
    "write-through-set": "write to Redis (and L1 where there is one), small dict",
    "get-many-100-small": "batch read of 100 small dicts from Redis",
    "get-many-100-embeddings": "batch read of 100 embeddings (1536 float32) from Redis",
    "two-tier-read": "read of a value held in process in front of Redis",
    "l1-memory": "resident bytes per 1 KiB entry, 100k entries (a byte ratio, not a time)",
}


@dataclass(frozen=True)
class PeerRow:
    """One contender on one operation: its time over the baseline's (median of adjacent round pairs)."""

    operation: str
    contender: str
    serializer: str
    baseline: str
    ratio: float
    ratio_q1: float
    ratio_q3: float
    contender_ns: float
    baseline_ns: float

    @property
    def is_qcache(self) -> bool:
        return self.contender.startswith("qcache")


def peer_rows(run: Run) -> list[PeerRow]:
    """Every peer benchmark of ``run``, by operation (in :data:`OPERATIONS` order), fastest first."""
    rows: list[PeerRow] = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        operation = extra.get("peer_operation")
        if not isinstance(operation, str) or "ratio" not in extra:
            continue
        rows.append(PeerRow(
            operation=operation,
            contender=str(extra.get("peer", "?")),
            serializer=str(extra.get("serializer", "?")),
            baseline=str(extra.get("baseline", "?")),
            ratio=bench.number("ratio"),
            ratio_q1=bench.number("ratio_q1") if "ratio_q1" in extra else bench.number("ratio"),
            ratio_q3=bench.number("ratio_q3") if "ratio_q3" in extra else bench.number("ratio"),
            contender_ns=bench.number("top_ns") if "top_ns" in extra else 0.0,
            baseline_ns=bench.number("bottom_ns") if "bottom_ns" in extra else 0.0,
        ))
    order = {name: index for index, name in enumerate(OPERATIONS)}
    rows.sort(key=lambda r: (order.get(r.operation, len(order)), r.operation, r.ratio))
    return rows


def missing_peers(rows: Sequence[PeerRow]) -> list[str]:
    """The peers of :data:`PEERS` no row names, as contender or baseline (not installed, or not run)."""
    named = " ".join(f"{r.contender} {r.baseline}" for r in rows)
    return [peer for peer in PEERS if peer not in named]


def format_peers(rows: Sequence[PeerRow]) -> list[str]:
    """The comparison as text: per operation its baseline, then each contender's ratio and serializer."""
    if not rows:
        return ["peers: no peer benchmarks in this run (benchmarks/test_peers_bench.py; pip install qcache[peers])"]
    lines = ["peers: contender time over the operation's baseline, side by side in this run "
             "(median of interleaved round pairs; lower is faster)"]
    width = max(len(r.contender) for r in rows)
    current = None
    for row in rows:
        if row.operation != current:
            current = row.operation
            what = OPERATIONS.get(current, "")
            lines.append(f"  {current}{f' ({what})' if what else ''}")
        mark = "*" if row.is_qcache else " "
        lines.append(
            f"   {mark}{row.contender:<{width}}  {row.ratio:7.3f}x  ({row.ratio_q1:.2f}-{row.ratio_q3:.2f})  "
            f"vs {row.baseline}  [{row.serializer}]"
        )
    missing = missing_peers(rows)
    if missing:
        lines.append(f"  not measured (not installed? pip install qcache[peers]): {', '.join(missing)}")
    return lines
