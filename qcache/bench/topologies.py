"""Cluster beside standalone: the same benchmark on both Redis deployments of one run, paired.

The batch and levels suites run each Redis benchmark on the standalone
server and on a Redis Cluster (``benchmarks/conftest.py``'s ``topology``);
each records ``extra_info["topology"]`` and its node id differs from its
twin's only in that parameter (``test_get_many_querycache[cluster-100]``
beside ``[standalone-100]``). This module pairs them and formats the
cluster's per-operation median over the standalone one's for ``qcache
report``. The two are timed one after the other in the same run, not in
alternating rounds, so a ratio moves with the machine's load by a tenth or
more; the gated cluster figure (``test_cluster_bench.py``) alternates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qcache.bench.figures import per_op
from qcache.bench.results import Benchmark, Run

#: ``extra_info`` key naming the deployment a benchmark ran on.
TOPOLOGY = "topology"
STANDALONE = "standalone"
CLUSTER = "cluster"
#: The statistic compared: the median round (a benchmark's min is one lucky round on a shared machine).
STAT = "median"


@dataclass(frozen=True)
class TopologyRow:
    """One benchmark on both deployments: seconds per operation (median round) on each."""

    group: str
    benchmark: str  # the node name without the topology parameter
    standalone_s: float
    cluster_s: float

    @property
    def ratio(self) -> float:
        """Cluster time over standalone time: above 1, the cluster is slower."""
        return self.cluster_s / self.standalone_s


def without_topology(name: str, topology: str) -> str:
    """``name`` with its ``topology`` parameter removed: ``f[cluster-100]`` -> ``f[100]``, ``f[cluster]`` -> ``f``."""
    base, bracket, params = name.partition("[")
    if not bracket or not params.endswith("]"):
        return name
    kept = params[:-1].split("-")
    if topology not in kept:
        return name
    kept.remove(topology)  # its one occurrence: another parameter may have the same value
    return f"{base}[{'-'.join(kept)}]" if kept else base


def topology_rows(run: Run) -> list[TopologyRow]:
    """Every benchmark of ``run`` measured on both deployments, grouped, in the order the run took them.

    Run order keeps batch sizes ascending (1, 10, 100, 500, 1000), which
    sorting the group names as text would not.
    """
    sides: dict[str, dict[str, Benchmark]] = {}
    for bench in run.benchmarks.values():
        topology = bench.extra_info.get(TOPOLOGY)
        if topology in (STANDALONE, CLUSTER):
            key = without_topology(bench.fullname, str(topology))
            sides.setdefault(key, {})[str(topology)] = bench
    rows = []
    for pair in sides.values():
        standalone, cluster = pair.get(STANDALONE), pair.get(CLUSTER)
        if standalone is None or cluster is None:
            continue
        standalone_s = per_op(standalone, STAT)
        if standalone_s <= 0:
            continue
        rows.append(TopologyRow(
            group=standalone.group or "",
            benchmark=without_topology(standalone.name, STANDALONE),
            standalone_s=standalone_s,
            cluster_s=per_op(cluster, STAT),
        ))
    first_seen: dict[str, int] = {}
    for row in rows:
        first_seen.setdefault(row.group, len(first_seen))
    rows.sort(key=lambda r: first_seen[r.group])  # stable: run order within a group
    return rows


def format_topologies(rows: Sequence[TopologyRow]) -> list[str]:
    """The pairs as text, one block per benchmark group; nothing when the run has none."""
    if not rows:
        return []
    lines = ["cluster vs standalone: per-operation median on each, timed one after the other in this run "
             "(cluster / standalone; above 1 the cluster is slower)"]
    width = max(len(r.benchmark) for r in rows)
    current = None
    for row in rows:
        if row.group != current:
            current = row.group
            lines.append(f"  {current or '(no group)'}")
        lines.append(f"    {row.benchmark:<{width}}  standalone {row.standalone_s * 1e6:9.2f} us  "
                     f"cluster {row.cluster_s * 1e6:9.2f} us  {row.ratio:6.2f}x")
    return lines
