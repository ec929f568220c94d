"""``qcache report``: key ratios and threshold breaches of a benchmark run, comparisons, the gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qcache.bench.errors import ResultsError
from qcache.bench.figures import Figure, evaluate_all, load_figures
from qcache.bench.gate import best_of, check, spread
from qcache.bench.layout import resolve_run
from qcache.bench.report import Thresholds, format_comparison, format_report, format_spread, format_verdict
from qcache.bench.results import load_run
from qcache.errors import ConfigError

DEFAULT_RESULTS = Path("results")
DEFAULT_FIGURES = Path("benchmarks") / "gate.toml"
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="key ratios and threshold breaches of a benchmark run; compare runs; the regression gate",
        description=(
            "Print the key figures of a benchmark run (ratios against baselines measured in the same "
            "run), flag latencies and hit rates past CACHE_LATENCY_THRESHOLD / CACHE_HIT_RATE_THRESHOLD "
            "and the healthy bounds (10 ms, 0.8), and compare two runs. RUN is a run folder, its "
            "benchmarks.json, or a run id under --results (default: the latest run)."
        ),
    )
    parser.add_argument("run", nargs="?", metavar="RUN", help="run folder, benchmarks.json or run id")
    parser.add_argument("--compare", metavar="BASE",
                        help="compare RUN against BASE (for example the committed reference run)")
    parser.add_argument("--gate", action="store_true",
                        help="exit 1 when a figure is past its committed limit (naming it)")
    parser.add_argument("--spread", nargs="+", metavar="RUN",
                        help="how each figure varies over these runs, and the limits that suggests")
    parser.add_argument("--figures", type=Path, default=None, metavar="FILE",
                        help=f"figure definitions and limits (default: {DEFAULT_FIGURES} of the repository "
                             "holding the run, else of the current folder)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                        help=f"results root holding runs/ and reference/ (default {DEFAULT_RESULTS})")
    parser.add_argument("--env-file", type=Path, metavar="FILE",
                        help="read the thresholds from this .env file (default: environment and ./.env)")
    parser.set_defaults(func=run)


def _thresholds(env_file: Path | None) -> Thresholds:
    """The alert thresholds of the user's configuration."""
    from qcache.config import CacheConfig

    config = CacheConfig.from_env(env_file=env_file) if env_file is not None else CacheConfig.from_env()
    return Thresholds.from_config(config)


def find_figures(explicit: Path | None, run_folder: Path | None) -> Path | None:
    """The figures file to use: ``explicit``, else the one of the repository holding the run.

    Run folders live in ``<repository>/results/...``, so walking up from the
    run finds the gate that goes with it wherever ``qcache report`` is started;
    the current folder is the last resort. None when there is none.
    """
    if explicit is not None:
        return explicit
    folders = [*Path(run_folder).resolve().parents] if run_folder is not None else []
    for folder in [*folders, Path.cwd()]:
        candidate = folder / DEFAULT_FIGURES
        if candidate.is_file():
            return candidate
    return None


def _figures(args: argparse.Namespace, run_folder: Path | None, required: bool) -> list[Figure]:
    """The figures the report shows; none (with a note) when no file is found and none is required."""
    path = find_figures(args.figures, run_folder)
    if path is None:
        if required:
            raise ConfigError(f"no figures file: {DEFAULT_FIGURES} is neither beside the run nor in the "
                              "current folder; pass --figures FILE")
        print(f"qcache report: note: no {DEFAULT_FIGURES} found beside the run or here; key figures "
              "and gate limits left out (pass --figures FILE)", file=sys.stderr)
        return []
    return load_figures(path)


def run(args: argparse.Namespace) -> int:
    """Print the report, comparison or spread the arguments ask for; 1 if the gate fails, 2 on bad input."""
    try:
        if args.spread:
            if args.run or args.compare or args.gate:
                raise ConfigError("--spread takes its runs itself; do not combine it with RUN, --compare or --gate")
            layouts = [resolve_run(spec, args.results) for spec in args.spread]
            figures = _figures(args, layouts[0].root, required=True)
            spreads, incomplete = spread([load_run(layout) for layout in layouts], figures)
            print(format_spread(spreads, incomplete, len(layouts)))
            return 0
        layout = resolve_run(args.run, args.results)
        figures = _figures(args, layout.root, required=args.gate)
        current = load_run(layout)
        values = evaluate_all(figures, current)
        if args.compare:
            base = load_run(resolve_run(args.compare, args.results))
            print(format_comparison(base, evaluate_all(figures, base), current, values))
        else:
            print(format_report(current, values, _thresholds(args.env_file)))
        if args.gate:
            # The gate's re-measurements live in the run folder: judge as the main job did.
            confirmations = layout.confirmations()
            verdict = best_of([check(current, figures)] + [check(load_run(c), figures) for c in confirmations])
            print()
            if confirmations:
                print(f"(each figure's best value over the run and its {len(confirmations)} re-measurement(s))")
            print(format_verdict(verdict))
            return 0 if verdict.passed else EXIT_GATE_FAILED
        return 0
    except ConfigError as exc:
        print(f"qcache report: error: {exc}", file=sys.stderr)
        for problem in exc.problems:
            if problem != str(exc):
                print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ResultsError as exc:
        print(f"qcache report: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
