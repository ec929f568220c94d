"""``qcache load check``: judge a load run against the latency, hit-rate and error thresholds."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from qcache.load.check import Thresholds, check_summary

EXIT_OK, EXIT_BREACH, EXIT_UNREADABLE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``load`` sub-command."""
    parser = subparsers.add_parser(
        "load",
        help="load-test results: check a run against the thresholds",
        description="Read what `locust -f loadtests/` wrote under results/load/.",
    )
    commands = parser.add_subparsers(dest="load_command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="exit 1 and name each breach: p99, hit rate, error ratio",
        description=(
            "Check a load run: per cache user and operation, p99 above CACHE_LATENCY_THRESHOLD (alert) "
            "or above 10 ms (not healthy); per cache user, a hit rate below CACHE_HIT_RATE_THRESHOLD "
            "or an error ratio above the limit. The thresholds are those the run was configured with "
            "unless given here. Baseline users (raw redis-py) are shown, never checked. "
            "Exit 0 when nothing breaches, 1 on a breach, 2 when the run cannot be read."
        ),
    )
    check.add_argument("run", nargs="?", type=Path, metavar="RUN",
                       help="a run folder (default: the latest under results/load)")
    check.add_argument("--latency-threshold-ms", type=float, metavar="MS",
                       help="alert threshold for p99 (default: the run's CACHE_LATENCY_THRESHOLD)")
    check.add_argument("--hit-rate-threshold", type=float, metavar="RATE",
                       help="minimum hit rate (default: the run's CACHE_HIT_RATE_THRESHOLD)")
    check.add_argument("--max-error-ratio", type=float, metavar="RATIO",
                       help="largest acceptable errors / requests (default 0.01)")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), EXIT_UNREADABLE)[1])


def run_check(args: argparse.Namespace) -> int:
    # Imported here: the load modules need the ``loadtest`` extra (HdrHistogram), which the other
    # sub-commands of ``qcache`` (and the main job, which installs no Locust) must not.
    try:
        from qcache.load.results import LoadResultsError, latest_run, read_summary, results_root
    except ModuleNotFoundError as exc:
        print(f"qcache load needs the loadtest extra (pip install 'qcache[loadtest]'): {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    run = args.run or latest_run(results_root())
    if run is None:
        print(f"no load run under {results_root()}; run `locust -f loadtests/` first", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        summary = read_summary(run)
    except LoadResultsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_UNREADABLE
    thresholds = Thresholds.of_run(
        summary,
        latency_alert_ms=args.latency_threshold_ms,
        hit_rate=args.hit_rate_threshold,
        max_error_ratio=args.max_error_ratio,
    )
    print(f"load run {summary['run_id']} ({summary.get('shape')}, {summary.get('duration_s', 0):.0f} s) in {run}")
    print(f"thresholds: p99 alert {thresholds.latency_alert_ms:g} ms, healthy {thresholds.healthy_latency_ms:g} ms; "
          f"hit rate {thresholds.hit_rate:g}; error ratio {thresholds.max_error_ratio:g}")
    for user in summary["users"]:
        role = "cache" if user.get("cache_user") else "baseline"
        print(f"  {user['user']:<22} {role:<8} {_fmt(user.get('rps'), '{:,.0f} req/s'):>14}  "
              f"p99 {_fmt(user.get('p99_us'), '{:,.0f} µs'):>10}  hit rate {_fmt(user.get('hit_rate'), '{:.3f}'):>6}  "
              f"errors {user['errors']}")
    breaches = check_summary(summary, thresholds)
    for breach in breaches:
        print(f"BREACH {breach.describe()}")
    if breaches:
        print(f"{len(breaches)} breach(es)")
        return EXIT_BREACH
    print("no breach")
    return EXIT_OK


def _fmt(value: float | None, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)
