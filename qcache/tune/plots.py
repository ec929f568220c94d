"""The notebooks' figures: every threshold drawn as a line, every bar or point colored pass or fail.

Needs matplotlib (the ``notebooks`` extra). Each function takes the tuner's
records and returns a :class:`matplotlib.figure.Figure`, so a notebook cell
is one call; the decisions themselves live in the other modules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from qcache.bench import FigureValue, Thresholds
from qcache.sim import BELADY
from qcache.tune.batching import BatchChoice, PoolChoice
from qcache.tune.compression import (
    CPU_SHARE,
    MAX_STORED_FRACTION,
    EncryptionCost,
    Saving,
)
from qcache.tune.curves import Curve, by_workload
from qcache.tune.evidence import BatchSample, OpTime, PoolSample
from qcache.tune.health import Check
from qcache.tune.load import LoadSummary
from qcache.tune.profiles import ProfileMeasurement
from qcache.tune.recommend import Recommendation
from qcache.tune.sizing import SizeForTarget
from qcache.tune.thresholds import (
    SEED_THRESHOLDS,
    Status,
    hit_rate_status,
    latency_status,
)
from qcache.tune.writes import STRATEGIES, WRITE_HEAVY, mix_costs

ALERT_COLOR = "tab:red"
HEALTHY_COLOR = "tab:green"
STRATEGY_COLORS = {"WRITE_THROUGH": "tab:blue", "WRITE_BACK": "tab:orange", "WRITE_AROUND": "tab:purple"}


def _legend_for_status(ax: Axes) -> None:
    handles = [Patch(color=s.color, label=s.value) for s in Status]
    ax.legend(handles=handles, loc="lower right", fontsize=8, title="verdict", title_fontsize=8)


def _latency_lines(ax: Axes, thresholds: Thresholds, vertical: bool = True) -> None:
    line = ax.axvline if vertical else ax.axhline
    line(thresholds.healthy_latency_ms, color=HEALTHY_COLOR, linestyle="--", linewidth=1.2)
    line(thresholds.latency_alert_ms, color=ALERT_COLOR, linestyle="--", linewidth=1.2)


def _hit_rate_lines(ax: Axes, thresholds: Thresholds) -> None:
    ax.axhline(
        thresholds.healthy_hit_rate,
        color=HEALTHY_COLOR,
        linestyle="--",
        linewidth=1.2,
        label=f"healthy {thresholds.healthy_hit_rate:g}",
    )
    ax.axhline(
        thresholds.hit_rate_alert,
        color=ALERT_COLOR,
        linestyle="--",
        linewidth=1.2,
        label=f"alert under {thresholds.hit_rate_alert:g}",
    )


def latency_overview(checks: Sequence[Check], thresholds: Thresholds = SEED_THRESHOLDS, top: int = 25) -> Figure:
    """The slowest ``top`` operation latencies as bars on a log scale, with the 10 ms and 50 ms lines."""
    shown = list(checks)[:top]
    fig, ax = plt.subplots(figsize=(11, 0.28 * len(shown) + 1.6))
    names = [c.what.replace("test_", "") for c in shown][::-1]
    values = [c.value for c in shown][::-1]
    ax.barh(names, values, color=[c.status.color for c in shown][::-1])
    _latency_lines(ax, thresholds)
    ax.set_xscale("log")
    ax.set_xlim(min(values + [0.001]) / 2, thresholds.latency_alert_ms * 3)
    ax.set_xlabel("milliseconds (log scale)")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(
        f"Slowest {len(shown)} of {len(checks)} operation latencies: healthy under "
        f"{thresholds.healthy_latency_ms:g} ms (green line), alert above {thresholds.latency_alert_ms:g} ms (red line)"
    )
    _legend_for_status(ax)
    fig.tight_layout()
    return fig


def hit_rate_overview(checks: Sequence[Check], thresholds: Thresholds = SEED_THRESHOLDS) -> Figure:
    """The best policy's hit rate per workload and cache size, colored by verdict, with the 0.6 and 0.8 lines."""
    best: dict[str, tuple[float, str]] = {}
    for check in checks:
        where, _, policy = check.what.rpartition(", ")
        if where not in best or check.value > best[where][0]:
            best[where] = (check.value, policy)
    labels = list(best)
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(labels) + 1.6))
    values = [best[k][0] for k in labels]
    ax.barh(
        [f"{k} (best: {best[k][1]})" for k in labels],
        values,
        color=[hit_rate_status(v, thresholds).color for v in values],
    )
    ax.axvline(thresholds.healthy_hit_rate, color=HEALTHY_COLOR, linestyle="--")
    ax.axvline(thresholds.hit_rate_alert, color=ALERT_COLOR, linestyle="--")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("hit rate of the best policy at that size")
    ax.set_title(
        f"Hit rates: alert under {thresholds.hit_rate_alert:g} (red line), healthy above "
        f"{thresholds.healthy_hit_rate:g} (green line)"
    )
    _legend_for_status(ax)
    fig.tight_layout()
    return fig


def hit_rate_curves(
    curves: Sequence[Curve],
    sizes: Sequence[SizeForTarget] = (),
    thresholds: Thresholds = SEED_THRESHOLDS,
    highlight: str | None = None,
) -> Figure:
    """One panel per workload: hit rate against L1 size per policy, Belady dashed, the ceiling dotted."""
    grouped = by_workload(curves)
    fig, axes = plt.subplots(1, len(grouped), figsize=(6.5 * len(grouped), 4.8), squeeze=False)
    for ax, (workload, group) in zip(axes[0], grouped.items()):
        for curve in group:
            if curve.policy == BELADY:
                ax.plot(curve.sizes, curve.hit_rates, "k--", linewidth=2, label="Belady (optimum)")
                continue
            strong = curve.policy == highlight
            ax.plot(
                curve.sizes,
                curve.hit_rates,
                marker="o",
                markersize=3,
                linewidth=3 if strong else 1.2,
                alpha=1 if strong or highlight is None else 0.6,
                label=f"{curve.policy} (chosen)" if strong else curve.policy,
            )
        ax.axhline(group[0].ceiling, color="grey", linestyle=":", label=f"never evicts {group[0].ceiling:.2f}")
        _hit_rate_lines(ax, thresholds)
        for size in sizes:
            if size.workload == workload and size.entries is not None:
                color = HEALTHY_COLOR if size.target >= thresholds.healthy_hit_rate else ALERT_COLOR
                ax.plot([size.entries], [size.target], marker="*", markersize=16, color=color, zorder=5)
                ax.annotate(
                    f"{size.entries:,}",
                    (size.entries, size.target),
                    textcoords="offset points",
                    xytext=(6, -12),
                    fontsize=8,
                    color=color,
                )
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("L1 size (entries, log scale)")
        ax.set_ylabel("hit rate")
        ax.set_title(workload, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Hit rate per policy and L1 size (stars: the size where the chosen policy reaches 0.6 and 0.8)")
    fig.tight_layout()
    return fig


def policy_margins(rates: Mapping[str, float], baseline: str, chosen: str) -> Figure:
    """Each policy's hit rate at the chosen size, in points above or below the configuration's default."""
    base = rates.get(baseline)
    if base is None:
        raise ValueError(f"no hit rate for the baseline policy {baseline}")
    names = sorted(rates, key=lambda p: rates[p])
    deltas = [100 * (rates[p] - base) for p in names]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    colors = ["tab:blue" if p == chosen else ("tab:green" if d > 0 else "tab:grey") for p, d in zip(names, deltas)]
    ax.barh(names, deltas, color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"hit-rate points against {baseline} (the config default); blue: chosen")
    ax.set_title(f"{chosen} against the other policies at the chosen size")
    fig.tight_layout()
    return fig


def write_strategy_costs(times: Sequence[OpTime], read_ratio: float | None = None) -> Figure:
    """Left: measured get and set per strategy and level. Right: cost per operation against the write share."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    levels = sorted({t.level for t in times})
    ops = ("get", "set", "mixed")
    width = 0.8 / (len(STRATEGIES) * len(ops))
    for i, strategy in enumerate(STRATEGIES):
        for j, op in enumerate(ops):
            values = [
                next((t.us for t in times if (t.strategy, t.level, t.op) == (strategy, lvl, op)), 0.0) for lvl in levels
            ]
            xs = [k + (i * len(ops) + j) * width - 0.4 for k in range(len(levels))]
            left.bar(
                xs, values, width, color=STRATEGY_COLORS[strategy], alpha=(1.0, 0.55, 0.3)[j], label=f"{strategy} {op}"
            )
    left.set_xticks(range(len(levels)), levels)
    left.set_yscale("log")
    left.set_ylabel("microseconds per operation (log)")
    left.set_title("Measured: get, set and 90/10 mixed per strategy and level")
    left.legend(fontsize=6, ncol=3)
    shares = [i / 20 for i in range(21)]
    for strategy in STRATEGIES:
        ys = []
        for share in shares:
            cost = next((c for c in mix_costs(times, 1 - share) if c.strategy == strategy), None)
            ys.append(cost.us_per_op if cost else float("nan"))
        right.plot(shares, ys, color=STRATEGY_COLORS[strategy], label=strategy, linewidth=2)
    right.axvspan(WRITE_HEAVY, 1, color="tab:orange", alpha=0.08, label=f"write-heavy (>= {WRITE_HEAVY:.0%} writes)")
    if read_ratio is not None:
        right.axvline(
            1 - read_ratio, color="black", linestyle=":", label=f"your workload ({1 - read_ratio:.0%} writes)"
        )
    right.set_yscale("log")
    right.set_xlabel("share of writes")
    right.set_ylabel("expected microseconds per operation, level BOTH (log)")
    right.set_title("Cost at your read/write mix")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def compression_tradeoff(rows: Sequence[Saving], l2_get_us: float | None) -> Figure:
    """Stored fraction against added CPU per (algorithm, kind, size); the region where compression pays is shaded."""
    fig, ax = plt.subplots(figsize=(12, 5))
    markers = {"lz4": "o", "zstd": "s"}
    kinds = sorted({r.kind for r in rows})
    colors = dict(zip(kinds, ("tab:blue", "tab:orange", "tab:green", "tab:purple")))
    for row in rows:
        ax.scatter(
            row.extra_us,
            row.stored_fraction,
            marker=markers.get(row.algorithm, "^"),
            color=colors[row.kind],
            s=60,
            edgecolors="black" if row.pays else "none",
        )
        ax.annotate(
            f"{row.algorithm} {row.kind} {row.size}",
            (row.extra_us, row.stored_fraction),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.axhline(
        MAX_STORED_FRACTION, color=ALERT_COLOR, linestyle="--", label=f"pays under {MAX_STORED_FRACTION:g} of the bytes"
    )
    if l2_get_us is not None:
        ax.axvline(
            CPU_SHARE * l2_get_us,
            color="tab:grey",
            linestyle=":",
            label=f"CPU limit for a 1 KB value: {CPU_SHARE:.0%} of a Redis get ({CPU_SHARE * l2_get_us:.0f} us; "
            "grows with the size)",
        )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("CPU added per encode + decode (us, symlog)")
    ax.set_ylabel("stored bytes / uncompressed bytes")
    ax.set_title("Compression: bytes saved against CPU spent (outlined: pays)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def encryption_cost(costs: Sequence[EncryptionCost]) -> Figure:
    """AES-GCM round trip over the plain codec, per value size."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([c.size for c in costs], [c.ratio for c in costs], color="tab:blue")
    ax.axhline(1, color="black", linewidth=0.8)
    for i, c in enumerate(costs):
        ax.annotate(
            f"+{c.encrypted_us - c.plain_us:.1f} us, +{c.extra_bytes} B",
            (i, c.ratio),
            ha="center",
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_ylabel("encode + decode time, encrypted / plain")
    ax.set_title("Cost of AES-GCM per value size")
    fig.tight_layout()
    return fig


def batch_costs(samples: Sequence[BatchSample], choice: BatchChoice | None, latency_target_ms: float) -> Figure:
    """Cost per key and time per call against batch size, with the latency target and the chosen size."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for op in sorted({s.op for s in samples}):
        rows = [s for s in samples if s.op == op]
        left.plot([s.keys for s in rows], [s.us_per_key for s in rows], marker="o", label=op)
        right.plot([s.keys for s in rows], [s.us / 1000 for s in rows], marker="o", label=op)
        for s in rows:
            right.scatter([s.keys], [s.us / 1000], color=latency_status(s.us / 1000).color, zorder=5)
    if choice is not None:
        left.axvline(choice.size, color="black", linestyle=":", label=f"chosen: {choice.size}")
    right.axhline(
        latency_target_ms, color=ALERT_COLOR, linestyle="--", label=f"latency target {latency_target_ms:g} ms"
    )
    right.axhline(SEED_THRESHOLDS.healthy_latency_ms, color=HEALTHY_COLOR, linestyle="--", label="healthy 10 ms")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("keys per call (log)")
        ax.legend(fontsize=8)
    left.set_ylabel("microseconds per key (log)")
    left.set_title("Cost per key falls with the batch size, then flattens")
    right.set_ylabel("milliseconds per call (log)")
    right.set_title("One call's latency against the target")
    fig.tight_layout()
    return fig


def pool_sweep(samples: Sequence[PoolSample], choice: PoolChoice | None, latency_target_ms: float) -> Figure:
    """Throughput and p99 against pool size, one line per thread count; p99 points colored pass or fail."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for threads in sorted({s.threads for s in samples}):
        rows = sorted((s for s in samples if s.threads == threads), key=lambda s: s.pool)
        pools = [s.pool for s in rows]
        left.plot(pools, [s.throughput_ops for s in rows], marker="o", label=f"{threads} threads")
        right.plot(pools, [s.p99_ms for s in rows], label=f"{threads} threads")
        right.scatter(pools, [s.p99_ms for s in rows], color=[latency_status(s.p99_ms).color for s in rows], zorder=5)
    if choice is not None:
        left.axvline(choice.pool, color="black", linestyle=":", label=f"chosen: {choice.pool}")
        if choice.knee is not None and choice.knee != choice.pool:
            left.axvline(
                choice.knee,
                color="tab:purple",
                linestyle="--",
                label=f"knee at {choice.threads} threads: {choice.knee}",
            )
    _latency_lines(right, SEED_THRESHOLDS, vertical=False)
    right.axhline(latency_target_ms, color="black", linestyle=":", label=f"target {latency_target_ms:g} ms")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("pool size (connections, log)")
        ax.legend(fontsize=8)
    left.set_ylabel("gets per second")
    left.set_title("Throughput against pool size")
    right.set_yscale("log")
    right.set_ylabel("p99 (ms, log)")
    right.set_title("p99 against pool size (green line 10 ms, red 50 ms)")
    fig.tight_layout()
    return fig


def load_timeline(summary: LoadSummary, thresholds: Thresholds = SEED_THRESHOLDS) -> Figure:
    """Throughput and p99 over time, users on a twin axis, the chaos fault marked."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    t = [p.t_s for p in summary.timeline]
    top.plot(t, [p.rps for p in summary.timeline], color="tab:blue", label="requests/s")
    users = top.twinx()
    users.plot(
        t,
        [math.nan if p.users is None else p.users for p in summary.timeline],
        color="tab:grey",
        linestyle=":",
        label="users",
    )
    users.set_ylabel("users")
    p99 = [p.p99_us / 1000 for p in summary.timeline]
    bottom.plot(t, p99, color="black", linewidth=0.8)
    bottom.scatter(t, p99, color=[latency_status(v, thresholds).color for v in p99], s=12, zorder=5)
    _latency_lines(bottom, thresholds, vertical=False)
    if summary.chaos is not None:
        for ax in (top, bottom):
            end = summary.chaos.restart_at_s if math.isfinite(summary.chaos.restart_at_s) else summary.duration_s
            ax.axvspan(summary.chaos.fault_at_s, end, color=ALERT_COLOR, alpha=0.1, label=f"Redis {summary.chaos.mode}")
    top.set_ylabel("requests/s")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 (ms, log)")
    bottom.set_xlabel("seconds into the run")
    top.set_title(f"Load run {summary.run_id} ({summary.shape}): throughput and p99 over time")
    fig.tight_layout()
    return fig


def ramp_knee(summary: LoadSummary, thresholds: Thresholds = SEED_THRESHOLDS) -> Figure:
    """Throughput and p99 per ramp step, the knee marked."""
    fig, ax = plt.subplots(figsize=(9, 4))
    users = [s.users for s in summary.ramp]
    ax.plot(users, [s.rps for s in summary.ramp], marker="o", color="tab:blue", label="requests/s")
    ax.set_xlabel("users")
    ax.set_ylabel("requests/s")
    twin = ax.twinx()
    p99 = [s.p99_us / 1000 for s in summary.ramp]
    twin.scatter(users, p99, color=[latency_status(v, thresholds).color for v in p99], zorder=5)
    twin.plot(users, p99, color="black", linewidth=0.8)
    _latency_lines(twin, thresholds, vertical=False)
    twin.set_yscale("log")
    twin.set_ylabel("p99 (ms, log)")
    if summary.knee is not None:
        ax.axvline(summary.knee.users, color="black", linestyle=":", label=f"knee: {summary.knee.users} users")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Ramp: where throughput stops growing")
    fig.tight_layout()
    return fig


def profile_comparison(measured: Sequence[ProfileMeasurement], thresholds: Thresholds = SEED_THRESHOLDS) -> Figure:
    """Throughput, p99 and hit rate per profile, each p99 and hit rate colored by its verdict."""
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 3.8))
    names = [m.profile for m in measured]
    left.bar(names, [m.ops_per_s for m in measured], color="tab:blue")
    left.set_title("operations per second")
    width = 0.4
    xs = range(len(names))
    middle.bar(
        [x - width / 2 for x in xs],
        [m.get_p99_ms for m in measured],
        width,
        color=[latency_status(m.get_p99_ms, thresholds).color for m in measured],
        label="get p99",
    )
    middle.bar(
        [x + width / 2 for x in xs],
        [m.set_p99_ms for m in measured],
        width,
        hatch="//",
        color=[latency_status(m.set_p99_ms, thresholds).color for m in measured],
        label="set p99",
    )
    middle.set_xticks(list(xs), names)
    _latency_lines(middle, thresholds, vertical=False)
    middle.set_yscale("log")
    middle.set_title("p99 (ms, log; hatched: set)")
    right.bar(
        [x - width / 2 for x in xs],
        [m.hit_rate for m in measured],
        width,
        color=[hit_rate_status(m.hit_rate, thresholds).color for m in measured],
        label="cache (L1 or Redis)",
    )
    right.bar(
        [x + width / 2 for x in xs],
        [m.l1_hit_rate for m in measured],
        width,
        hatch="//",
        color=[hit_rate_status(m.l1_hit_rate, thresholds).color for m in measured],
        label="L1 alone",
    )
    right.set_xticks(list(xs), names)
    right.axhline(thresholds.healthy_hit_rate, color=HEALTHY_COLOR, linestyle="--")
    right.axhline(thresholds.hit_rate_alert, color=ALERT_COLOR, linestyle="--")
    right.set_ylim(0, 1)
    right.set_title("hit rate (hatched: served by L1 alone)")
    for ax in (left, middle, right):
        ax.tick_params(axis="x", labelsize=8, rotation=15)
    fig.tight_layout()
    return fig


def _highlight(names: Sequence[str], chosen: str | None, base: str = "tab:grey") -> list[str]:
    return ["tab:blue" if name == chosen else base for name in names]


def decision_board(recommendation: Recommendation, thresholds: Thresholds = SEED_THRESHOLDS) -> Figure:
    """One figure answering "what do I pick, and why": each decision's options, the chosen one in blue."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    (policy_ax, write_ax, compress_ax), (batch_ax, pool_ax, size_ax) = axes
    w = recommendation.workload
    policy = recommendation.policy
    if policy is not None:
        names = sorted(policy.rates, key=lambda p: policy.rates[p])
        policy_ax.barh(names, [policy.rates[p] for p in names], color=_highlight(names, policy.policy))
        if policy.belady_hit_rate is not None:
            policy_ax.axvline(policy.belady_hit_rate, color="black", linestyle="--", label="Belady (optimum)")
        policy_ax.axvline(thresholds.hit_rate_alert, color=ALERT_COLOR, linestyle="--", label="alert 0.6")
        policy_ax.axvline(thresholds.healthy_hit_rate, color=HEALTHY_COLOR, linestyle="--", label="healthy above 0.8")
        policy_ax.set_xlim(0, 1)
        policy_ax.legend(fontsize=7, loc="lower right")
        policy_ax.set_title(f"Eviction policy: {policy.policy}\n(hit rate; LRU is the config default)", fontsize=10)
    strategy = recommendation.strategy
    if strategy is not None:
        names = [c.strategy for c in strategy.costs]
        bars = write_ax.bar(
            [n.replace("WRITE_", "") for n in names],
            [c.us_per_op for c in strategy.costs],
            color=_highlight(names, strategy.strategy),
        )
        write_ax.bar_label(bars, labels=[f"{c.us_per_op:.1f} us" for c in strategy.costs], fontsize=8)
        write_ax.set_ylabel("us per operation at your mix")
        write_ax.set_title(
            f"Write strategy: {strategy.strategy}\n({1 - w.read_ratio:.0%} writes; write-back "
            "loses queued writes on a crash)",
            fontsize=10,
        )
    compression = recommendation.compression
    if compression is not None:
        mine = list(compression.savings)
        labels = [f"{r.algorithm} {r.size}" for r in mine]
        compress_ax.barh(
            labels,
            [r.stored_fraction for r in mine],
            color=[
                "tab:blue"
                if r.pays and r.algorithm == compression.algorithm
                else ("tab:green" if r.pays else "tab:grey")
                for r in mine
            ],
        )
        compress_ax.axvline(MAX_STORED_FRACTION, color=ALERT_COLOR, linestyle="--", label="pays under 0.8")
        compress_ax.set_xlim(0, 1.1)
        compress_ax.tick_params(axis="y", labelsize=7)
        compress_ax.legend(fontsize=7, loc="lower right")
        verdict = f"{compression.algorithm} from {compression.threshold_bytes:,} B" if compression.enabled else "off"
        compress_ax.set_title(
            f"Compression of {w.value_kind} values: {verdict}\n(stored / uncompressed bytes; green and blue pay)",
            fontsize=10,
        )
    batch = recommendation.batch
    if batch is not None and batch.rows:
        batch_ax.plot([r.keys for r in batch.rows], [r.us_per_key for r in batch.rows], marker="o", color="tab:grey")
        batch_ax.scatter(
            [batch.size], [batch.us_per_key], color="tab:blue", s=120, zorder=5, label=f"chosen {batch.size}"
        )
        batch_ax.set_xscale("log")
        batch_ax.set_yscale("log")
        batch_ax.set_xlabel("keys per get_many (log)")
        batch_ax.set_ylabel("us per key (log)")
        batch_ax.legend(fontsize=7)
        batch_ax.set_title(
            f"Batch size: {batch.size} keys\n(one call {batch.call_ms:.2f} ms, target {w.latency_target_ms:g} ms)",
            fontsize=10,
        )
    pool = recommendation.pool
    if pool is not None and pool.rows:
        pool_ax.plot([r.pool for r in pool.rows], [r.throughput_ops for r in pool.rows], marker="o", color="tab:grey")
        pool_ax.scatter(
            [r.pool for r in pool.rows],
            [r.throughput_ops for r in pool.rows],
            color=[latency_status(r.p99_ms, thresholds).color for r in pool.rows],
            zorder=4,
        )
        pool_ax.scatter(
            [pool.pool], [pool.throughput_ops], color="tab:blue", s=150, zorder=5, label=f"chosen {pool.pool}"
        )
        pool_ax.set_xscale("log")
        pool_ax.set_xlabel("pool size (log; dots colored by p99 verdict)")
        pool_ax.set_ylabel("gets per second")
        pool_ax.legend(fontsize=7)
        pool_ax.set_title(
            f"Pool: {pool.pool} connections for {pool.threads} threads\n(p99 {pool.p99_ms:.2f} ms; "
            f"gains stop past {pool.knee})",
            fontsize=10,
        )
    sizes = [s for s in recommendation.sizes if s.entries is not None]
    if sizes:
        labels = [f"{s.workload[:24]} {s.target:g}" for s in sizes]
        size_ax.barh(
            labels,
            [s.entries or 0 for s in sizes],
            color=[HEALTHY_COLOR if s.target >= thresholds.healthy_hit_rate else ALERT_COLOR for s in sizes],
        )
        chosen_size = recommendation.value("MEMORY_CACHE_MAX_SIZE")
        if chosen_size is not None:
            size_ax.axvline(int(chosen_size), color="tab:blue", linewidth=2, label=f"chosen {int(chosen_size):,}")
        size_ax.set_xscale("log")
        size_ax.tick_params(axis="y", labelsize=7)
        size_ax.legend(fontsize=7, loc="lower right")
        out_of_reach = not any(s.target >= thresholds.healthy_hit_rate for s in sizes)
        size_ax.set_title(
            "L1 entries needed for 0.6 (red) and 0.8 (green); blue: chosen"
            + ("\n(0.8 is out of reach: cold misses; sized near the ceiling)" if out_of_reach else ""),
            fontsize=10,
        )
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_axis_off()
            ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("What to pick, and why (blue: the choice)", fontsize=13)
    fig.tight_layout()
    return fig


def key_figures(values: Sequence[FigureValue]) -> Figure:
    """Each gate figure as a share of its limit (1.0: at the limit; past it: a regression).

    Lower-is-better figures show value / limit, higher-is-better ones limit /
    value, so every bar reads the same way: shorter is better. Green meets
    the figure's target, orange misses the target but holds the limit, red
    is past the limit.
    """
    shown = [v for v in values if v.value and v.figure.limit]
    fig, ax = plt.subplots(figsize=(11, 0.26 * len(shown) + 1.6))
    shares, colors = [], []
    for v in shown:
        value, limit = v.value or 0.0, v.figure.limit or 1.0
        shares.append(value / limit if v.figure.better.value == "lower" else limit / value)
        colors.append(ALERT_COLOR if v.breaches_limit else ("tab:orange" if v.meets_target is False else HEALTHY_COLOR))
    ax.barh([v.figure.name for v in shown][::-1], shares[::-1], color=colors[::-1])
    ax.axvline(1.0, color=ALERT_COLOR, linestyle="--", label="the gate limit")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("share of the gate limit (shorter is better; past 1.0 is a regression)")
    ax.set_title("Key ratios against their gate limits (green: meets its target, orange: misses it, red: regression)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
