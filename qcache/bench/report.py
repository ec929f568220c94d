"""Text for ``qcache report``: key ratios, threshold breaches, two-run comparisons, spreads.

Pure formatting over :mod:`qcache.bench.results` and :mod:`qcache.bench.figures`;
nothing here measures or reads files except through those modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qcache.bench.figures import FigureValue, per_op
from qcache.bench.gate import MIN_RUNS_TO_DROP, SPREAD_FACTOR, TOLERANCE_FLOOR, Spread, Verdict
from qcache.bench.peers import format_peers, peer_rows
from qcache.bench.results import Run
from qcache.bench.topologies import format_topologies, topology_rows
from qcache.config.sections import MemoryConfig
from qcache.errors import ConfigError

if TYPE_CHECKING:
    from qcache.config import CacheConfig

#: The seed's health rule: an operation is healthy under 10 ms, a cache healthy above 0.8 hit rate.
HEALTHY_LATENCY_MS = 10.0
HEALTHY_HIT_RATE = 0.8
#: How many benchmarks a comparison lists (those whose time moved most).
COMPARE_LISTED = 12
#: How many flagged latencies the report lists (worst first).
FLAGGED_LISTED = 10
#: ``MEMORY_CACHE_EVICTION_POLICY``'s default: the policy an untuned cache runs.
CONFIG_DEFAULT_POLICY = MemoryConfig().eviction_policy
#: Simulator rows that are bounds, not policies.
_BOUNDS = frozenset({"BELADY", "UNBOUNDED"})


@dataclass(frozen=True)
class Thresholds:
    """What the report holds latencies and hit rates against.

    ``latency_alert_ms`` and ``hit_rate_alert`` come from the configuration
    (``CACHE_LATENCY_THRESHOLD``, ``CACHE_HIT_RATE_THRESHOLD``), so a user's
    own limits apply; the healthy bounds are the seed's fixed rule.
    """

    latency_alert_ms: float
    hit_rate_alert: float
    healthy_latency_ms: float = HEALTHY_LATENCY_MS
    healthy_hit_rate: float = HEALTHY_HIT_RATE

    @classmethod
    def from_config(cls, config: CacheConfig) -> Thresholds:
        """Read the monitoring section of a :class:`qcache.config.CacheConfig`."""
        monitoring = config.monitoring
        return cls(float(monitoring.latency_threshold_ms), float(monitoring.hit_rate_threshold))

    def __post_init__(self) -> None:
        if not self.latency_alert_ms > 0:
            raise ConfigError(f"latency threshold must be > 0 ms, got {self.latency_alert_ms!r}")
        if not 0 <= self.hit_rate_alert <= 1:
            raise ConfigError(f"hit rate threshold must be within 0..1, got {self.hit_rate_alert!r}")

    def latency_flag(self, ms: float) -> str:
        """'' when healthy, otherwise which bound the latency crosses."""
        if ms > self.latency_alert_ms:
            return f"ABOVE CACHE_LATENCY_THRESHOLD {self.latency_alert_ms:g} ms"
        if ms >= self.healthy_latency_ms:
            return f"not healthy (>= {self.healthy_latency_ms:g} ms)"
        return ""

    def hit_rate_flag(self, rate: float) -> str:
        """'' when healthy, otherwise which bound the hit rate falls under."""
        if rate < self.hit_rate_alert:
            return f"BELOW CACHE_HIT_RATE_THRESHOLD {self.hit_rate_alert:g}"
        if rate <= self.healthy_hit_rate:
            return f"not healthy (<= {self.healthy_hit_rate:g})"
        return ""


@dataclass(frozen=True)
class Latency:
    """One operation latency of the run, with its threshold flag ('' when healthy)."""

    what: str
    ms: float
    flag: str


@dataclass(frozen=True)
class HitRates:
    """Hit rates of several policies on one workload at one cache size, flagged by the best policy.

    Judging the best policy says whether the threshold is reachable at that
    size at all; ``default`` is the configuration's default policy
    (``MEMORY_CACHE_EVICTION_POLICY``, LRU), whose rate is shown beside it:
    what an untuned cache gets. (The registry's ``DEFAULT`` alias, which the
    simulator records as ``default_policy``, names ADAPTIVE instead.)
    """

    workload: str
    capacity: int
    rates: Mapping[str, float]
    default: str | None
    flag: str

    @property
    def best(self) -> tuple[str, float]:
        policy = max(self.rates, key=lambda name: self.rates[name])
        return policy, self.rates[policy]


# ------------------------------------------------------------------ helpers


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Plain aligned columns; the first column left-aligned unless ``right`` says otherwise."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            (c.rjust(w) if r else c.ljust(w)) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{value:.3g}"


def figure_status(value: FigureValue) -> str:
    """One word or phrase per figure: regression, target met or missed, missing data."""
    if value.value is None:
        return ("missing (optional)" if value.figure.optional else "MISSING") + f": {value.missing}"
    parts = []
    if value.breaches_limit:
        parts.append("REGRESSION")
    if value.meets_target is not None:
        parts.append(value.status)
    return ", ".join(parts) or "ok"


def describe_run(run: Run) -> list[str]:
    """Header lines: which run, which mode, which machine and Redis."""
    env = run.environment
    bench_info = run.machine_info.get("qcache_bench", {})
    redis_info = run.machine_info.get("qcache_redis", {}) or {}
    mode = env.get("mode") or bench_info.get("mode") or "unknown"
    lines = [f"run {run.run_id} ({mode} mode)  {run.layout.root}"]
    cpus = env.get("cpu_count", bench_info.get("cpu_count"))
    python = env.get("python") or run.machine_info.get("python_version")
    hiredis = env.get("hiredis", bench_info.get("hiredis"))
    redis_text = "Redis: not used"
    if redis_info.get("method"):
        redis_text = f"Redis {redis_info.get('server_version')} provisioned by {redis_info.get('method')}"
    elif redis_info.get("error"):
        redis_text = f"Redis unavailable: {redis_info['error']}"
    lines.append(
        f"machine: {cpus} CPUs, Python {python}, {redis_text}, hiredis {'yes' if hiredis else 'no'}"
        + (f", taken {run.datetime}" if run.datetime else "")
    )
    return lines


# ------------------------------------------------------------------ sections


def format_figures(values: Sequence[FigureValue]) -> list[str]:
    """The key-ratio table: value, target, gate limit and status per figure."""
    rows = [
        [v.figure.name, _num(v.value), v.figure.bound_text(v.figure.target),
         v.figure.bound_text(v.figure.limit), figure_status(v)]
        for v in values
    ]
    return _table(["figure", "value", "target", "gate limit", "status"], rows, [False, True, True, True, False])


def latencies(run: Run, thresholds: Thresholds) -> list[Latency]:
    """Operation latencies: the p99 of benchmarks that time each call (``extra_info["p99_ms"]``)
    and the per-operation median of facade operations (``extra_info["cache_op"]``)."""
    found: list[Latency] = []
    for bench in run.benchmarks.values():
        if "p99_ms" in bench.extra_info:
            ms = bench.number("p99_ms")
            found.append(Latency(f"p99 of {bench.name}", ms, thresholds.latency_flag(ms)))
        elif "cache_op" in bench.extra_info:
            ms = per_op(bench, "median") * 1000
            found.append(Latency(f"median of {bench.name}", ms, thresholds.latency_flag(ms)))
    return found


def hit_rates(run: Run, thresholds: Thresholds) -> list[HitRates]:
    """Hit rates per workload and cache size: eviction benchmarks (``extra_info["hit_rate"]``,
    a fraction) and simulator results (``hit_ratio``, a percentage; the bounds left out)."""
    table: dict[tuple[str, int], dict[str, float]] = {}
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if "hit_rate" in extra and isinstance(extra.get("policy"), str) and isinstance(extra.get("capacity"), int):
            where = (f"eviction bench, {extra.get('trace', '?')}", extra["capacity"])
            table.setdefault(where, {})[extra["policy"]] = bench.number("hit_rate")
    for document in run.simulations():
        for row in document.get("results", []):
            policy, capacity, ratio = row.get("policy"), row.get("capacity"), row.get("hit_ratio")
            if policy in _BOUNDS or not isinstance(capacity, int) or not isinstance(ratio, (int, float)):
                continue
            where = (f"simulator, {document.get('trace')}", capacity)
            table.setdefault(where, {})[str(policy)] = float(ratio) / 100.0
    found = []
    for (workload, capacity), rates in sorted(table.items()):
        best = max(rates.values())
        found.append(HitRates(workload, capacity, rates, CONFIG_DEFAULT_POLICY, thresholds.hit_rate_flag(best)))
    return found


def format_thresholds(run: Run, thresholds: Thresholds) -> list[str]:
    """Latencies and hit rates against the thresholds: a summary, the flagged latencies, a hit-rate table."""
    lines = [
        f"thresholds: latency alert {thresholds.latency_alert_ms:g} ms (CACHE_LATENCY_THRESHOLD), "
        f"healthy < {thresholds.healthy_latency_ms:g} ms; hit rate alert {thresholds.hit_rate_alert:g} "
        f"(CACHE_HIT_RATE_THRESHOLD), healthy > {thresholds.healthy_hit_rate:g}"
    ]
    measured = latencies(run, thresholds)
    if measured:
        worst = max(measured, key=lambda o: o.ms)
        flagged = sorted((o for o in measured if o.flag), key=lambda o: -o.ms)
        lines.append(f"latency: {len(measured)} operations measured, worst {worst.ms:.3f} ms ({worst.what}), "
                     f"{len(flagged)} flagged")
        lines += [f"  {o.flag}: {o.what} = {o.ms:.3f} ms" for o in flagged[:FLAGGED_LISTED]]
        if len(flagged) > FLAGGED_LISTED:
            lines.append(f"  ... and {len(flagged) - FLAGGED_LISTED} more")
    rates = hit_rates(run, thresholds)
    if rates:
        lines.append(f"hit rate per workload and cache size (best policy; beside it {CONFIG_DEFAULT_POLICY}, "
                     "the configuration's default policy):")
        rows = []
        for group in rates:
            policy, best = group.best
            default = ""
            if group.default and group.default in group.rates and group.default != policy:
                default = f"{group.default} {group.rates[group.default]:.3f}"
            rows.append([group.workload, f"{group.capacity:,}", f"{policy} {best:.3f}", default, group.flag or "ok"])
        lines += ["  " + line for line in _table(["workload", "entries", "best", "config default", "status"], rows,
                                                  [False, True, False, False, False])]
    if not measured and not rates:
        lines.append("no latencies or hit rates in this run")
    return lines


def credits(run: Run) -> list[str]:
    """Attribution lines of every third-party trace the run used (simulator and benchmarks)."""
    lines: list[str] = []
    for document in run.simulations():
        credit = document.get("credit")
        if isinstance(credit, str) and credit and credit not in lines:
            lines.append(credit)
    for bench in run.benchmarks.values():
        credit = bench.extra_info.get("credit")
        if isinstance(credit, str) and credit and credit not in lines:
            lines.append(credit)
    return lines


def format_report(
    run: Run, values: Sequence[FigureValue], thresholds: Thresholds, notes: Sequence[str] = ()
) -> str:
    """The whole report of one run; ``notes`` follow the figure table (e.g. re-measured figures)."""
    lines = ["qcache benchmark report", *describe_run(run), ""]
    lines.append(f"key figures (ratios are per-operation times measured side by side in this run; "
                 f"{len(run.benchmarks)} benchmarks):")
    lines += format_figures(values)
    lines += [f"  note: {note}" for note in notes]
    peers = peer_rows(run)
    if peers:
        lines.append("")
        lines += format_peers(peers)
    topologies = format_topologies(topology_rows(run))
    if topologies:
        lines.append("")
        lines += topologies
    lines.append("")
    lines += format_thresholds(run, thresholds)
    sims = run.simulations()
    if sims:
        lines.append("")
        lines.append(f"simulator: {len(sims)} result file(s) in {run.layout.simulation}")
    trace_credits = credits(run)
    if trace_credits:
        lines.append("")
        lines += ["trace credits:", *(f"  {c}" for c in trace_credits)]
    return "\n".join(lines)


def format_verdict(verdict: Verdict) -> str:
    """The gate's outcome, naming each failing figure with its value and limit."""
    if verdict.passed:
        checked = sum(1 for v in verdict.values if v.value is not None and v.figure.limit is not None)
        return f"gate: PASSED ({checked} figures within their limits)"
    lines = [f"gate: FAILED ({len(verdict.failures)} figure(s))"]
    for v in verdict.failures:
        f = v.figure
        if v.value is None:
            lines.append(f"  {f.name}: no value ({v.missing})")
        else:
            lines.append(f"  {f.name}: {v.value:.3f}, limit {f.bound_text(f.limit)} ({f.what})")
    return "\n".join(lines)


def format_comparison(
    base: Run, base_values: Sequence[FigureValue], other: Run, other_values: Sequence[FigureValue]
) -> str:
    """Figures of two runs side by side, then the benchmarks whose per-op median moved most."""
    lines = ["qcache benchmark comparison", "A: " + describe_run(base)[0], "B: " + describe_run(other)[0], ""]
    rows = []
    for a, b in zip(base_values, other_values, strict=True):
        change = "n/a"
        if a.value and b.value is not None:
            change = f"{(b.value / a.value - 1) * 100:+.1f}%"
        rows.append([a.figure.name, _num(a.value), _num(b.value), change, a.figure.better.value + " is better"])
    lines += _table(["figure", "A", "B", "B vs A", ""], rows, [False, True, True, True, False])
    common = sorted(set(base.benchmarks) & set(other.benchmarks))
    moves: list[tuple[float, str, float, float]] = []
    for name in common:
        a_time = per_op(base.benchmarks[name], "median")
        b_time = per_op(other.benchmarks[name], "median")
        if a_time > 0 and b_time > 0:
            moves.append((b_time / a_time, name, a_time, b_time))
    lines.append("")
    only = len(set(base.benchmarks) ^ set(other.benchmarks))
    lines.append(f"{len(common)} benchmarks in both runs ({only} in one only); largest moves of the "
                 "per-operation median (absolute times: meaningful on the same machine only):")
    moves.sort(key=lambda m: max(m[0], 1 / m[0]), reverse=True)
    rows = [[name, f"{a * 1e6:.3f}", f"{b * 1e6:.3f}", f"x{ratio:.2f}"] for ratio, name, a, b in moves[:COMPARE_LISTED]]
    lines += _table(["benchmark", "A us/op", "B us/op", "B/A"], rows, [False, True, True, True])
    return "\n".join(lines)


def format_spread(spreads: Sequence[Spread], incomplete: Sequence[str], runs: int) -> str:
    """Per figure: values over the runs, the deviation, and the limit it suggests."""
    lines = [
        f"spread over {runs} run(s); tolerance = max({TOLERANCE_FLOOR:g}, {SPREAD_FACTOR:g} x largest deviation "
        f"from the median, the most extreme run left out from {MIN_RUNS_TO_DROP} runs)",
    ]
    rows = [
        [s.figure.name, _num(min(s.values)), _num(s.median), _num(max(s.values)),
         f"{s.deviation * 100:.1f}%", f"{s.tolerance * 100:.0f}%", f"{s.proposed_limit:.3g}",
         s.figure.bound_text(s.figure.limit)]
        for s in spreads
    ]
    lines += _table(["figure", "min", "median", "max", "deviation", "tolerance", "proposed", "current"],
                    rows, [False, True, True, True, True, True, True, True])
    if incomplete:
        lines.append("missing in some runs: " + ", ".join(incomplete))
    return "\n".join(lines)
