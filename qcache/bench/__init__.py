"""Benchmark results, the report and the regression gate (pure code: no pytest, no Redis).

    from qcache.bench import check, load_figures, load_run, resolve_run

    run = load_run(resolve_run(None, Path("results")))     # the latest run
    verdict = check(run, load_figures(Path("benchmarks/gate.toml")))

``qcache report`` is the command-line front end; ``benchmarks/main.py`` (the
main job) writes the run folders this package reads.
"""

from qcache.bench.errors import ResultsError
from qcache.bench.figures import Better, Figure, FigureValue, evaluate, evaluate_all, load_figures, parse_figures
from qcache.bench.gate import Spread, Verdict, best_of, breached_benchmarks, check, spread
from qcache.bench.layout import RunLayout, new_run_id, resolve_run, run_folders
from qcache.bench.report import Thresholds, format_comparison, format_report, format_spread, format_verdict
from qcache.bench.results import Benchmark, Run, load_run

__all__ = [
    "Benchmark",
    "Better",
    "Figure",
    "FigureValue",
    "ResultsError",
    "Run",
    "RunLayout",
    "Spread",
    "Thresholds",
    "Verdict",
    "best_of",
    "breached_benchmarks",
    "check",
    "evaluate",
    "evaluate_all",
    "format_comparison",
    "format_report",
    "format_spread",
    "format_verdict",
    "load_figures",
    "load_run",
    "new_run_id",
    "parse_figures",
    "resolve_run",
    "run_folders",
    "spread",
]
