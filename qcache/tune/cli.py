"""``qcache tune``: the recommended configuration for a stated workload, measured on this machine.

It simulates the trace (or a synthetic Zipf workload) through every eviction
policy, measures the codec, tier latencies, write strategies, batch sizes
and pool sizes against a Redis (``--redis-url``, else one provisioned by
:func:`qcache.testing.provision_redis`), decides with :mod:`qcache.tune`,
prints each setting with the figure behind it, and writes ``--output``
(validated first, mode 600).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qcache.errors import ConfigError
from qcache.memory.policies import available_policies
from qcache.sim import (
    BELADY,
    FORMATS,
    SimulationError,
    TraceError,
    TraceFile,
    curve_sizes,
    materialize,
)
from qcache.sim.cli import parse_workload
from qcache.sim.sources import Trace
from qcache.tune.curves import Curve, compute_curves
from qcache.tune.envfile import render_env, write_env
from qcache.tune.errors import TuneError
from qcache.tune.evidence import Evidence
from qcache.tune.recommend import Recommendation, Workload, recommend

DEFAULT_SYNTHETIC = "zipf:keys=100000,requests=300000,exponent=0.9,seed=1"
CURVE_POINTS = 10


def register(subparsers: Any) -> None:
    """Add the ``tune`` sub-command."""
    parser = subparsers.add_parser(
        "tune",
        help="recommend a configuration for your workload, measured on this machine",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--trace", type=Path, metavar="FILE", help="your keys in request order (as qcache simulate reads them)"
    )
    source.add_argument(
        "--synthetic", metavar="SPEC", default=None, help=f"a synthetic workload instead (default {DEFAULT_SYNTHETIC})"
    )
    parser.add_argument("--trace-format", default="auto", choices=FORMATS, help="format of --trace (default: auto)")
    parser.add_argument("--trace-column", default="0", metavar="COLUMN",
                        help="CSV column of the keys: 0-based index or header name (default 0)")
    parser.add_argument("--trace-header", action="store_true", help="the CSV trace starts with a header row")
    parser.add_argument("--trace-delimiter", default=",", metavar="CHAR", help="CSV delimiter (default ,)")
    parser.add_argument("--memory-budget-mb", type=float, default=256.0, help="memory L1 may use (default 256)")
    parser.add_argument("--latency-target-ms", type=float, default=10.0, help="what one call may take (default 10)")
    parser.add_argument("--read-ratio", type=float, default=0.9, help="share of reads, 0..1 (default 0.9)")
    parser.add_argument(
        "--value-size", type=int, default=1024, metavar="BYTES", help="average value size (default 1024)"
    )
    parser.add_argument(
        "--value-kind",
        choices=("search", "text", "embedding"),
        default="search",
        help="what the values look like, for compression (default search)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="threads calling the cache at once (default 4)")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="the Redis to measure (keys under a unique prefix, removed afterwards; never flushed); "
        "default: REDIS_URL or a throwaway server",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=300_000,
        help="simulate only the first N requests of the trace (default 300000)",
    )
    parser.add_argument("--output", type=Path, default=Path(".env.tuned"), help="where to write (default .env.tuned)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _trace(args: argparse.Namespace) -> Trace:
    if args.trace is not None:
        column: str | int = int(args.trace_column) if args.trace_column.isdigit() else args.trace_column
        header = args.trace_header or isinstance(column, str)  # a column named by its header implies one
        return materialize(TraceFile(args.trace, args.trace_format, column, header, args.trace_delimiter))
    return materialize(parse_workload(args.synthetic or DEFAULT_SYNTHETIC))


def _curves(trace: Trace, max_requests: int, quiet: bool) -> list[Curve]:
    policies = [*available_policies(), BELADY]
    requests = min(len(trace), max_requests)
    # One bar over every request replayed: each policy and the ceiling at every size.
    sizes = len(
        curve_sizes(max(1, round(trace.unique_keys * 0.001)), max(1, round(trace.unique_keys * 0.5)), CURVE_POINTS)
    )
    with tqdm(
        total=requests * (len(policies) + 1) * sizes,
        desc="simulating",
        unit="req",
        unit_scale=True,
        disable=quiet or None,
        leave=False,
        file=sys.stderr,
    ) as bar:
        return compute_curves(trace, policies, points=CURVE_POINTS, max_requests=max_requests, progress=bar.update)


@contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from qcache.testing import provision_redis

    with provision_redis() as endpoint:
        yield endpoint.url


def _measure(url: str, workload: Workload, quiet: bool) -> Evidence:
    """The short measurements, one progress step each."""
    from qcache.probe import (
        Probe,
        measure_batches,
        measure_codec,
        measure_l1_overhead,
        measure_levels,
        measure_policy_gets,
        measure_pools,
        measure_write_strategies,
        value_of,
    )

    probe = Probe(url)
    value = value_of(workload.value_kind, workload.value_bytes)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("codec", measure_codec),
        ("L1 footprint", lambda: measure_l1_overhead(workload.value_bytes)),
        ("policies", measure_policy_gets),
        ("tiers", lambda: measure_levels(probe, value)),
        ("write strategies", lambda: measure_write_strategies(probe, value)),
        ("batches", lambda: measure_batches(probe, value)),
        ("pool sizes", lambda: measure_pools(probe, value, workload.concurrency)),
    ]
    results: dict[str, Any] = {}
    with tqdm(steps, desc="measuring", disable=quiet or None, leave=False, file=sys.stderr) as bar:
        for name, step in bar:
            bar.set_postfix_str(name)
            results[name] = step()
    l1_get, l2_get = results["tiers"]
    return Evidence(
        op_times=tuple(results["write strategies"]),
        codec=tuple(results["codec"]),
        encryption=(),
        batches=tuple(results["batches"]),
        pools=tuple(results["pool sizes"]),
        policy_get_ns=results["policies"],
        l1_overhead_bytes=results["L1 footprint"],
        l2_get_us=l2_get,
        l1_get_us=l1_get,
    )


def format_recommendation(recommendation: Recommendation) -> list[str]:
    """Each setting with its value, the figure that decided it, and why."""
    lines = []
    for choice in recommendation.choices:
        lines.append(f"{choice.setting}={choice.value}")
        lines.append(f"    {choice.figure}: {choice.reason}")
    lines += [f"note: {note}" for note in recommendation.notes]
    return lines


def run(args: argparse.Namespace) -> int:
    """Simulate, measure, decide, print and write; 0 on success, 2 on bad input or a failed measurement."""
    try:
        workload = Workload(
            args.memory_budget_mb,
            args.read_ratio,
            args.value_size,
            args.latency_target_ms,
            args.concurrency,
            args.value_kind,
        )
        if args.max_requests <= 0:
            raise TuneError(f"--max-requests must be > 0, got {args.max_requests}")
        trace = _trace(args)
        curves = _curves(trace, args.max_requests, args.no_progress)
        with _redis(args.redis_url) as url:
            evidence = _measure(url, workload, args.no_progress)
        recommendation = recommend(workload, evidence, curves)
        text = render_env(recommendation, source=f"qcache tune on {trace.name}")
        write_env(text, args.output)
    except (TuneError, SimulationError, TraceError, ConfigError) as exc:
        print(f"qcache tune: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"qcache tune: {trace.name}, {workload.memory_budget_mb:g} MB, {workload.read_ratio:.0%} reads, "
        f"{workload.value_bytes:,} B {workload.value_kind} values, {workload.latency_target_ms:g} ms target"
    )
    print("\n".join(format_recommendation(recommendation)))
    print(f"wrote {args.output} (check it with: qcache config validate --env-file {args.output})")
    return 0
