"""Markdown tables for the notebooks and the report (numbers formatted once, here)."""

from __future__ import annotations

from collections.abc import Sequence

from qcache.bench import FigureValue, Run
from qcache.bench.peers import PeerRow
from qcache.bench.report import describe_run, figure_status
from qcache.tune.curves import Curve
from qcache.tune.health import Check, count_by_status
from qcache.tune.profiles import ProfileMeasurement
from qcache.tune.recommend import Recommendation
from qcache.tune.sizing import SizeForTarget, size_for_hit_rate
from qcache.tune.thresholds import Status


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-style table; ``|`` inside cells is escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def run_header(run: Run) -> str:
    """Which run, machine and Redis, as markdown lines."""
    return "\n\n".join(f"`{line}`" for line in describe_run(run))


def status_counts(checks: Sequence[Check]) -> str:
    """``52 healthy, 5 warning, 0 alert``."""
    counts = count_by_status(checks)
    return ", ".join(f"{counts[s]} {s.value}" for s in Status)


def checks_table(checks: Sequence[Check], only_flagged: bool = True, limit: int = 20) -> str:
    """The checks (by default only those not healthy), worst first."""
    rows = [c for c in checks if c.status is not Status.HEALTHY] if only_flagged else list(checks)
    if not rows:
        return "_every one healthy_"
    shown = rows[:limit]
    table = markdown_table(
        ["verdict", "what", "value"],
        [[c.status.value.upper(), c.what, f"{c.value:.3f} {c.unit}".strip()] for c in shown],
    )
    if len(rows) > limit:
        table += f"\n\n_... and {len(rows) - limit} more_"
    return table


def choices_table(recommendation: Recommendation) -> str:
    """One row per setting: value, the figure that drove it, and why."""
    return markdown_table(
        ["setting", "value", "figure", "why"],
        [[f"`{c.setting}`", f"**{c.value}**", c.figure, c.reason] for c in recommendation.choices],
    )


def figures_table(values: Sequence[FigureValue]) -> str:
    """The gate's key ratios: value, target, limit and status."""
    return markdown_table(
        ["figure", "value", "target", "gate limit", "status"],
        [
            [
                v.figure.name,
                "n/a" if v.value is None else f"{v.value:.3f}",
                v.figure.bound_text(v.figure.target),
                v.figure.bound_text(v.figure.limit),
                figure_status(v),
            ]
            for v in values
        ],
    )


def peers_table(rows: Sequence[PeerRow]) -> str:
    """The peers comparison: per operation, each contender's time over the baseline, with its serializer."""
    return markdown_table(
        ["operation", "contender", "ratio", "quartiles", "baseline", "serializer"],
        [
            [
                r.operation,
                f"**{r.contender}**" if r.is_qcache else r.contender,
                f"{r.ratio:.3f}",
                f"{r.ratio_q1:.2f}-{r.ratio_q3:.2f}",
                r.baseline,
                r.serializer,
            ]
            for r in rows
        ],
    )


def profiles_table(measured: Sequence[ProfileMeasurement]) -> str:
    """Throughput, latency percentiles and hit rate per measured profile."""
    return markdown_table(
        ["profile", "ops/s", "get p50 ms", "get p99 ms", "set p50 ms", "set p99 ms", "hit rate", "L1 hit rate"],
        [
            [
                m.profile,
                f"{m.ops_per_s:,.0f}",
                f"{m.get_p50_ms:.3f}",
                f"{m.get_p99_ms:.3f}",
                f"{m.set_p50_ms:.3f}",
                f"{m.set_p99_ms:.3f}",
                f"{m.hit_rate:.3f}",
                f"{m.l1_hit_rate:.3f}",
            ]
            for m in measured
        ],
    )


def sizing_table(curves: Sequence[Curve], per_entry_bytes: float, targets: Sequence[float] = (0.6, 0.8)) -> str:
    """Per workload and policy: the entries (and MB) that reach each target, or that it is out of reach."""

    def cell(size: SizeForTarget) -> str:
        if size.entries is None:
            return "out of reach" if "unreachable" in size.why_not else size.why_not
        return f"{size.entries:,} ({size.megabytes(per_entry_bytes) or 0:.1f} MB)"

    rows = [
        [c.workload, c.policy, f"{c.ceiling:.2f}", *(cell(size_for_hit_rate(c, t)) for t in targets)] for c in curves
    ]
    return markdown_table(["workload", "policy", "ceiling (never evicts)", *(f"size for {t:g}" for t in targets)], rows)


def verdict(recommendation: Recommendation) -> str:
    """The recommendation in a few lines, for the top of the report: each setting and the figure behind it."""
    w = recommendation.workload
    head = (
        f"**Recommended configuration** for {w.memory_budget_mb:g} MB of L1, {w.read_ratio:.0%} reads, "
        f"{w.value_bytes:,} B {w.value_kind} values and a {w.latency_target_ms:g} ms target "
        "(why: `90_recommend` below; the plots of each notebook show the evidence):"
    )
    table = markdown_table(
        ["setting", "value", "decided by"],
        [[f"`{c.setting}`", f"**{c.value}**", c.figure] for c in recommendation.choices],
    )
    return head + "\n\n" + table


def run_configuration(run: Run) -> str:
    """What the run measured with: mode, versions, commit, the simulator's sources (from environment.json)."""
    env = run.environment
    commit = env.get("commit")
    rows = [
        ["mode", env.get("mode", "?")],
        [
            "qcache / redis-py / hiredis",
            f"{env.get('qcache', '?')} / {env.get('redis_py', '?')} / {'yes' if env.get('hiredis') else 'no'}",
        ],
        ["commit", f"{str(commit)[:12]}{' (with uncommitted changes)' if env.get('dirty') else ''}" if commit else "?"],
        ["Redis from REDIS_URL", "yes" if env.get("redis_url_from_environment") else "no (provisioned for the run)"],
        [
            "simulator sources",
            ", ".join(str(s.get("trace") or s.get("synthetic")) for s in env.get("simulations", [])) or "none",
        ],
        ["profiles measured", ", ".join(env.get("profiles", [])) or "none"],
        [
            "cache configuration",
            "qcache's defaults, plus the settings each benchmark names (level, strategy, "
            "pool...): the figures compare options, not one deployment",
        ],
    ]
    return markdown_table(["", ""], rows)
