"""``qcache simulate``: hit ratios of eviction policies on a trace file or a synthetic workload."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qcache.memory.policies import available_policies, resolve_policy_name
from qcache.sim.engine import BELADY, UNBOUNDED, resolve_policies, simulate
from qcache.sim.errors import SimulationError
from qcache.sim.readers import FORMATS, TraceFile, libcachesim_csv
from qcache.sim.reference import REFERENCE_POLICIES
from qcache.sim.report import format_table, write_reports
from qcache.sim.sizes import curve_sizes, resolve_default_sizes, resolve_sizes
from qcache.sim.sources import Trace, TraceSource, materialize
from qcache.sim.synthetic import HotSpot, Loop, RecentReuse, ShiftingWorkingSet, Uniform, WithScans, Zipf

DEFAULT_SIZES = "0.1%,1%,10%"
DEFAULT_OUTPUT = Path("results")
# Replays (requests x policies x sizes) above which the bar appears on a terminal.
_PROGRESS_THRESHOLD = 2_000_000

# Constructors by name; parameters come from the spec as keyword arguments.
_WORKLOADS: dict[str, Callable[..., TraceSource]] = {
    "zipf": Zipf, "uniform": Uniform, "hotspot": HotSpot, "shifting": ShiftingWorkingSet, "loop": Loop,
    "reuse": RecentReuse,
}


def _spec_fields(spec: str, what: str) -> dict[str, str]:
    """``a=1,b=2`` as a dict, with a clear error for anything else."""
    fields: dict[str, str] = {}
    for part in filter(None, (item.strip() for item in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SimulationError(f"invalid {what} parameter {part!r}; expected name=value")
        fields[name.strip().replace("-", "_")] = value.strip()
    return fields


def _number(value: str) -> int | float:
    """An int when it looks like one, else a float."""
    try:
        return int(value.replace("_", ""))
    except ValueError:
        return float(value)


def parse_workload(spec: str) -> TraceSource:
    """``zipf:keys=10000,requests=100000,exponent=0.9,seed=1`` (also ``uniform``, ``hotspot``)."""
    kind, _, params = spec.partition(":")
    cls = _WORKLOADS.get(kind.strip().lower())
    if cls is None:
        raise SimulationError(
            f"unknown synthetic workload {kind!r}; known: {', '.join(sorted(_WORKLOADS))}"
        )
    try:
        fields = {name: _number(value) for name, value in _spec_fields(params, kind).items()}
        return cls(**fields)
    except TypeError as exc:
        raise SimulationError(f"invalid parameters for {kind}: {exc}") from None
    except ValueError as exc:
        raise SimulationError(f"invalid parameters for {kind}: {exc}") from None


def parse_scan(spec: str, base: TraceSource) -> TraceSource:
    """``every=5000,length=1000[,span=20000]`` mixed into ``base``."""
    fields = _spec_fields(spec, "scan")
    unknown = set(fields) - {"every", "length", "span"}
    if unknown or not {"every", "length"} <= set(fields):
        raise SimulationError("--scan takes every=N,length=N and optionally span=N")
    try:
        values = {name: int(value) for name, value in fields.items()}
    except ValueError:
        raise SimulationError(f"--scan values must be integers, got {spec!r}") from None
    return WithScans(base, **values)


def register(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="hit ratios of eviction policies on a trace or a synthetic workload",
        description=(
            "Replay a trace through eviction policies at several cache sizes and report hit "
            "ratios (get, insert on miss; cold misses count). Belady's optimum (belady) and a "
            "never-evicting cache (unbounded) bound what any policy can reach."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", type=Path, metavar="FILE",
                        help="trace file (.xz, .zst and .gz are decompressed transparently)")
    source.add_argument("--synthetic", metavar="SPEC",
                        help="zipf:keys=N,requests=N,exponent=S,seed=N | uniform:... | "
                             "hotspot:keys=N,requests=N,hot_fraction=F,hot_probability=P,seed=N | "
                             "shifting:requests=N,width=N,rate=N,seed=N | loop:keys=N,requests=N | "
                             "reuse:requests=N,new_fraction=F,mean_gap=N,seed=N")
    parser.add_argument("--format", default="auto", choices=FORMATS, dest="trace_format",
                        help="trace format (default auto: .lis is ARC, .csv/.tsv CSV, .txt one key "
                             "per line, oracleGeneral libCacheSim's records; otherwise the content "
                             "decides: text keys, ARC lines, Twitter cache-trace rows, or binary "
                             "int32/int64 keys in the one byte order that fits; when in doubt the "
                             "file is refused and --format must be given; cache2k = int32-be)")
    parser.add_argument("--column", default=None,
                        help="CSV column: a 0-based index or a header name (needed when the CSV "
                             "has more than one column)")
    parser.add_argument("--header", action="store_true", help="the CSV has a header row")
    parser.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    parser.add_argument("--libcachesim-params", metavar="SPEC",
                        help="a CSV trace described as libCacheSim's reader takes it, e.g. "
                             "'obj-id-col=5,has-header=true,delimiter=,' (1-based column; "
                             "implies --format csv)")
    parser.add_argument("--scan", metavar="SPEC",
                        help="mix scans in: every=N,length=N[,span=N]")
    parser.add_argument("--policies", default="all",
                        help="comma-separated policies, 'default', 'belady', 'unbounded', or "
                             f"'all' (known: {', '.join(available_policies())}; reference "
                             f"policies, simulator only: arc, lirs, 2q)")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated entry counts or percentages of the distinct keys "
                             f"(default {DEFAULT_SIZES.replace('%', '%%')}; a default that rounds to zero entries "
                             "on a small trace is skipped with a note)")
    parser.add_argument("--curve", type=int, metavar="POINTS",
                        help="miss-ratio curve: POINTS sizes spaced geometrically between the "
                             "smallest and the largest of --sizes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the RANDOM policy")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                        help="folder for the CSV and JSON results (default results/)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar")
    parser.set_defaults(func=run)


def _source(args: argparse.Namespace) -> TraceSource:
    """The trace file or synthetic workload the arguments describe."""
    source: TraceSource
    if args.trace is not None:
        if args.libcachesim_params:
            if args.column is not None or args.trace_format not in ("auto", "csv"):
                raise SimulationError("--libcachesim-params describes a CSV by itself: "
                                      "no --column, and --format csv or auto")
            layout = libcachesim_csv(args.libcachesim_params)
            source = TraceFile(args.trace, "csv", layout.column, layout.header, layout.delimiter)
        else:
            column = args.column
            if column is not None and column.isdigit():
                column = int(column)
            source = TraceFile(args.trace, args.trace_format, column, args.header, args.delimiter)
    else:
        source = parse_workload(args.synthetic)
    if args.scan:
        source = parse_scan(args.scan, source)
    return source


def _policy_names(spec: str) -> list[str]:
    """Expand 'all' into every registered policy plus the two bounds."""
    names: list[str] = []
    for name in spec.split(","):
        if name.strip().lower() == "all":
            names.extend([*available_policies(), *REFERENCE_POLICIES, BELADY, UNBOUNDED])
        else:
            names.append(name)
    return resolve_policies(names)


def run(args: argparse.Namespace) -> int:
    """Run the simulation the arguments describe; 0 on success, 2 on bad input."""
    try:
        trace: Trace = materialize(_source(args))
        policies = _policy_names(args.policies)
        if args.sizes is None:
            sizes, notes = resolve_default_sizes(DEFAULT_SIZES, trace.unique_keys)
            for note in notes:
                print(f"qcache simulate: note: {note}", file=sys.stderr)
        else:
            sizes = resolve_sizes(args.sizes, trace.unique_keys)
        if args.curve is not None:
            if args.curve < 2:
                raise SimulationError("--curve needs at least 2 points")
            sizes = curve_sizes(sizes[0], sizes[-1], args.curve)
    except SimulationError as exc:
        print(f"qcache simulate: error: {exc}", file=sys.stderr)
        return 2
    total = len(trace) * len(policies) * len(sizes)
    show = args.progress if args.progress is not None else (
        sys.stderr.isatty() and total >= _PROGRESS_THRESHOLD
    )
    options = {"RANDOM": {"seed": args.seed}} if "RANDOM" in policies else None
    with tqdm(total=total, file=sys.stderr, desc="simulating", unit="req", unit_scale=True,
              mininterval=0.2, disable=not show) as bar:
        results = simulate(trace, policies, sizes, progress=bar.update if show else None,
                           policy_options=options)
    default = resolve_policy_name("default")
    print(format_table(results, unique_keys=trace.unique_keys, default_policy=default,
                       credit=trace.credit))
    if not args.no_write:
        meta = {"default_policy": default, "sizes": sizes, "policies": policies}
        for path in write_reports(results, args.output, unique_keys=trace.unique_keys,
                                  credit=trace.credit, meta=meta):
            print(f"wrote {path}")
    return 0
