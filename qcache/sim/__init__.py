"""The hit-ratio simulator: replay real or synthetic traces through the L1 eviction policies.

It drives the very policy objects the L1 tier uses (same registry, same
hooks), so a hit ratio measured here is the hit ratio L1 gets. Belady's
optimum and an unbounded cache frame the results; ``qcache simulate`` is the
command-line front end.

    from qcache.sim import TraceFile, Zipf, simulate
    results = simulate(TraceFile(path), ["LRU", "default", "belady"], "0.1%,1%,10%")
"""

from qcache.sim.belady import belady_hits, next_use_positions, unbounded_hits
from qcache.sim.engine import BELADY, UNBOUNDED, SimResult, count_hits, run_policy, simulate
from qcache.sim.errors import SimulationError, TraceError
from qcache.sim.readers import FORMATS, TraceFile, shared_traces_dir
from qcache.sim.report import format_table, write_csv, write_json, write_reports
from qcache.sim.sizes import curve_sizes, parse_size, resolve_default_sizes, resolve_sizes
from qcache.sim.sources import Trace, TraceSource, materialize
from qcache.sim.synthetic import (
    HotSpot,
    Loop,
    Phases,
    RecentReuse,
    ShiftingWorkingSet,
    Uniform,
    WithScans,
    Zipf,
)

__all__ = [
    "BELADY",
    "FORMATS",
    "UNBOUNDED",
    "HotSpot",
    "Loop",
    "Phases",
    "RecentReuse",
    "ShiftingWorkingSet",
    "SimResult",
    "SimulationError",
    "Trace",
    "TraceError",
    "TraceFile",
    "TraceSource",
    "Uniform",
    "WithScans",
    "Zipf",
    "belady_hits",
    "count_hits",
    "curve_sizes",
    "format_table",
    "materialize",
    "next_use_positions",
    "parse_size",
    "resolve_default_sizes",
    "resolve_sizes",
    "run_policy",
    "shared_traces_dir",
    "simulate",
    "unbounded_hits",
    "write_csv",
    "write_json",
    "write_reports",
]
