"""The main job's console summary: at most :data:`MAX_LINES` lines, the full tables stay in the files.

Key figures, what breaches a threshold or a gate limit, the recommended
configuration and where the files are; a reader who wants more opens
``report.html`` (plots) or ``report.txt`` and ``pytest.log`` (every table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qcache.bench.figures import FigureValue
from qcache.bench.report import Thresholds, hit_rates, latencies
from qcache.bench.results import Run

if TYPE_CHECKING:
    from qcache.tune import Recommendation

MAX_LINES = 40
#: Figures shown by name (the facade's promises); the rest are counted.
SHOWN_FIGURES = 7
LISTED_BREACHES = 5


def _figure_lines(values: Sequence[FigureValue]) -> list[str]:
    measured = [v for v in values if v.value is not None]
    met = sum(1 for v in measured if v.meets_target)
    regressions = [v for v in values if v.breaches_limit]
    lines = [
        (
            f"key figures: {met} of {len(values)} meet their target, {len(regressions)} past the gate limit "
            f"({len(values) - len(measured)} missing)"
        )
    ]
    for v in values[:SHOWN_FIGURES]:
        if v.value is not None:
            verdict = "REGRESSION" if v.breaches_limit else ("ok" if v.meets_target is not False else v.status)
            lines.append(
                f"  {v.figure.name:<34} {v.value:8.3f}  target {v.figure.bound_text(v.figure.target):<8} {verdict}"
            )
    return lines


def _threshold_lines(run: Run, thresholds: Thresholds) -> tuple[list[str], list[str]]:
    """Latency and hit-rate lines, and the breaches (alerts) among them."""
    lines: list[str] = []
    breaches: list[str] = []
    measured = latencies(run, thresholds)
    if measured:
        worst = max(measured, key=lambda o: o.ms)
        alerts = [o for o in measured if o.ms > thresholds.latency_alert_ms]
        between = [o for o in measured if thresholds.healthy_latency_ms <= o.ms <= thresholds.latency_alert_ms]
        lines.append(
            f"latency: {len(measured)} measured, worst {worst.ms:.2f} ms ({worst.what}); "
            f"{len(between)} between {thresholds.healthy_latency_ms:g} and {thresholds.latency_alert_ms:g} ms, "
            f"{len(alerts)} above"
        )
        breaches += [f"latency {o.ms:.1f} ms > {thresholds.latency_alert_ms:g} ms: {o.what}" for o in alerts]
    groups = [g for g in hit_rates(run, thresholds) if g.workload.startswith("simulator")]
    largest: dict[str, int] = {}
    for group in groups:
        largest[group.workload] = max(largest.get(group.workload, 0), group.capacity)
    for group in groups:
        if group.capacity == largest[group.workload]:
            policy, rate = group.best
            verdict = group.flag or "healthy"
            lines.append(
                f"hit rate: {group.workload.removeprefix('simulator, ')} at {group.capacity:,} entries: "
                f"{policy} {rate:.3f} ({verdict})"
            )
    return lines, breaches


def format_summary(
    run: Run,
    values: Sequence[FigureValue],
    thresholds: Thresholds,
    recommendation: Recommendation | None,
    files: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
) -> list[str]:
    """The summary lines (never more than MAX_LINES; the recommendation is cut first, with a pointer)."""
    redis = run.machine_info.get("qcache_redis", {}) or {}
    mode = run.environment.get("mode", "?")
    head = [
        (
            f"qcache main job: run {run.run_id} ({mode} mode), {len(run.benchmarks)} benchmarks, "
            f"Redis {redis.get('server_version', '?')} ({redis.get('method', 'not provisioned')})"
        )
    ]
    head += _figure_lines(values)
    threshold_lines, breaches = _threshold_lines(run, thresholds)
    head += threshold_lines
    breaches = [
        f"gate: {v.figure.name} = {v.value:.3f}, limit {v.figure.bound_text(v.figure.limit)}"
        for v in values
        if v.breaches_limit and v.value is not None
    ] + breaches
    head.append(f"breaches: {len(breaches) or 'none'}")
    head += [f"  {b}" for b in breaches[:LISTED_BREACHES]]
    if len(breaches) > LISTED_BREACHES:
        head.append(f"  ... and {len(breaches) - LISTED_BREACHES} more (report.txt)")
    head += list(notes)
    tail = ["files:"] + [f"  {label:<16}{path}" for label, path in files]
    body: list[str] = []
    if recommendation is not None:
        w = recommendation.workload
        body.append(
            f"recommended for {w.memory_budget_mb:g} MB L1, {w.read_ratio:.0%} reads, {w.value_bytes:,} B "
            f"values, {w.latency_target_ms:g} ms target (why: recommended.env, report.html):"
        )
        body += [f"  {c.setting}={c.value}  ({c.figure})" for c in recommendation.choices]
    room = MAX_LINES - len(head) - len(tail)
    if len(body) > room:
        body = body[: max(0, room - 1)] + ["  ... the rest in recommended.env"]
    return (head + body + tail)[:MAX_LINES]
