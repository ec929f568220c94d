"""The main job: benchmark suites, simulator, report and (optionally) the regression gate.

Run it through ``python3 run.py main [options]``, which prepares the
environment first. In order:

1. the benchmark suites (``pytest benchmarks --benchmark-only``, quick mode
   unless ``--mode full``) against a Redis the provisioning helper finds or
   starts (``REDIS_URL`` points it at your own server);
2. the hit-ratio simulator on the shared traces when they are present
   (``../shared/traces`` or ``QCACHE_TRACES_DIR``), on every ``--trace FILE``
   you give, or on a synthetic Zipf workload when there is neither;
3. ``results/runs/<run-id>/``: benchmarks.json, environment.json, pytest.log,
   simulation/, report.txt and, with ``--gate``, gate.json;
4. the recommended configuration for a default workload (``recommended.env``,
   see ``qcache tune`` and ``notebooks/90_recommend`` for your own);
5. the notebooks executed against the run, rendered to ``report.html`` (plots
   embedded, readable offline), unless the ``notebooks`` extra is missing;
6. a console summary of at most 40 lines: key figures, breaches, the
   recommendation and where the files are. The full tables are in
   ``pytest.log`` and ``report.txt``.

With ``--gate`` the figures in ``benchmarks/gate.toml`` are checked against
their limits; a breach is measured again (``--confirmations`` times) and the
job fails only if every attempt breached, naming the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_support, when run as a script

from bench_support import MODE_ENV, MODES, TRACE_PATTERNS, mode_named  # noqa: E402

from qcache.bench import (  # noqa: E402
    Figure,
    Run,
    RunLayout,
    Thresholds,
    Verdict,
    best_of,
    breached_benchmarks,
    check,
    evaluate_all,
    format_report,
    format_verdict,
    load_figures,
    load_run,
    new_run_id,
)
from qcache.bench.environment import describe_environment  # noqa: E402
from qcache.bench.errors import ResultsError  # noqa: E402
from qcache.bench.notebooks import NOTEBOOKS, NotebookError, execute, missing_extras, render_html  # noqa: E402
from qcache.bench.summary import format_summary  # noqa: E402
from qcache.config import CacheConfig  # noqa: E402
from qcache.errors import ConfigError  # noqa: E402
from qcache.sim import FORMATS, shared_traces_dir  # noqa: E402
from qcache.tune import Recommendation  # noqa: E402
from qcache.tune.profiles import PROFILES_DIR  # noqa: E402

PYTEST_OK = 0
PYTEST_TESTS_FAILED = 1
#: The synthetic workload used when no trace is available: web-like skew.
SYNTHETIC = "zipf:keys=100000,requests={requests},exponent=0.9,seed=1"
SYNTHETIC_REQUESTS = {"quick": 300_000, "full": 3_000_000}
#: Longest parameter text kept in benchmarks.json (see :func:`compact`).
PARAM_CHARS = 100
#: pytest's progress marker at the end of a ``-q`` line: ``[ 42%]``.
PYTEST_PERCENT = re.compile(r"\[\s*(\d+)%\]\s*$")
NOTEBOOK_DIR = ROOT / "notebooks"
REPORT_HTML = "report.html"
RECOMMENDED_ENV = "recommended.env"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run.py main", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=sorted(MODES), default=None,
                        help=f"quick (default, a few minutes; env {MODE_ENV}) or full (longer, for tuning)")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "runs", metavar="DIR",
                        help="folder that receives the run folder (default: results/runs)")
    parser.add_argument("--run-id", default=None, help="name of the run folder (default: UTC timestamp)")
    parser.add_argument("--trace", type=Path, action="append", default=[], metavar="FILE",
                        help="a trace of your own for the simulator (repeatable)")
    parser.add_argument("--trace-format", choices=FORMATS, default="auto",
                        help="format of every --trace (default auto: from the name, and cache2k "
                             "int32 only when the content is not text); as qcache simulate --format")
    parser.add_argument("--trace-column", default="0", metavar="COLUMN",
                        help="CSV column of the keys in every --trace: 0-based index or header name "
                             "(a name implies --trace-header; default 0)")
    parser.add_argument("--trace-header", action="store_true",
                        help="every --trace CSV starts with a header row")
    parser.add_argument("--trace-delimiter", default=",", metavar="CHAR",
                        help="CSV delimiter of every --trace (default ,)")
    parser.add_argument("--sizes", default=None, metavar="SIZES",
                        help="simulator cache sizes for every source, entry counts or percentages "
                             "(default 0.1%%,1%%,10%%, skipping those that round to zero entries)")
    parser.add_argument("--no-shared-traces", action="store_true",
                        help="ignore ../shared/traces even when present")
    parser.add_argument("--sim-requests", type=int, default=None, metavar="N",
                        help="requests of the synthetic workload (default: by mode)")
    parser.add_argument("--gate", action="store_true",
                        help="check the figures against benchmarks/gate.toml; exit 1 on a confirmed regression")
    parser.add_argument("--figures", type=Path, default=ROOT / "benchmarks" / "gate.toml", metavar="FILE",
                        help="figure definitions and limits (default: benchmarks/gate.toml)")
    parser.add_argument("--confirmations", type=int, default=2, metavar="N",
                        help="re-measurements of breached figures before the gate fails (default 2)")
    parser.add_argument("--keep-samples", action="store_true",
                        help="keep pytest-benchmark's per-round samples in benchmarks.json")
    parser.add_argument("--profiles", default="", metavar="NAMES",
                        help="also measure these configuration profiles side by side (comma-separated, e.g. "
                             "production,high-performance; 'all' for the five): one mixed workload each, "
                             "for notebooks/60_profiles")
    parser.add_argument("--no-notebooks", action="store_true",
                        help="skip executing the notebooks (no report.html)")
    parser.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                        help="run only the benchmarks matching this pytest -k expression")
    args = parser.parse_args(argv)
    if args.confirmations < 0:
        parser.error("--confirmations must be >= 0")
    if args.sim_requests is not None and args.sim_requests <= 0:
        parser.error("--sim-requests must be > 0")
    for trace in args.trace:
        if not trace.is_file():
            parser.error(f"--trace {trace}: no such file")
    if len(args.trace_delimiter) != 1:
        parser.error("--trace-delimiter must be one character")
    try:
        args.profiles = profile_names(args.profiles)
    except ValueError as exc:
        parser.error(f"--profiles: {exc}")
    return args


def profile_names(spec: str) -> list[str]:
    """Canonical profile names from ``a,b`` (``all`` for every profile); ValueError naming a bad one."""
    from qcache.config.profiles import PROFILE_NAMES, canonical_profile_name

    names: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        for name in PROFILE_NAMES if part == "all" else [canonical_profile_name(part)]:
            if name not in names:
                names.append(name)
    return names


def measure_profiles(names: Sequence[str], folder: Path) -> None:
    """One mixed workload per profile against a Redis of its own, into ``folder/<name>.json``."""
    from tqdm import tqdm

    from qcache.probe import Probe, measure_profile
    from qcache.testing import provision_redis

    folder.mkdir(parents=True, exist_ok=True)
    with provision_redis() as endpoint:
        for name in tqdm(names, desc="[main] profiles", leave=False, disable=None):
            measured = measure_profile(name, Probe(endpoint.url))
            (folder / f"{name}.json").write_text(json.dumps(measured.as_dict(), indent=2) + "\n", encoding="utf-8")


def run_benchmarks(python: str, out_json: Path, log: Path, mode: str, select: Sequence[str],
                   keyword: str | None, label: str = "benchmarks") -> int:
    """Run pytest-benchmark, its output going to ``log`` and a progress bar to the console; pytest's exit code."""
    from tqdm import tqdm

    command = [
        python, "-m", "pytest", *(select or ["benchmarks"]), "--benchmark-only",
        f"--benchmark-json={out_json}", f"--bench-mode={mode}", "--benchmark-group-by=group",
        "--benchmark-columns=min,median,iqr,rounds", "--benchmark-sort=name",
        "-p", "no:cacheprovider", "-q", "-rfE",
    ]
    if keyword:
        command += ["-k", keyword]
    with log.open("a", encoding="utf-8") as sink, tqdm(total=100, desc=f"[main] {label}", unit="%",
                                                       leave=False, mininterval=0.5, disable=None) as bar:
        sink.write("$ pytest " + " ".join(command[3:]) + "\n")
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if (match := PYTEST_PERCENT.search(line)) is not None:
                bar.update(int(match.group(1)) - bar.n)
        return process.wait()


def compact(path: Path, keep_samples: bool) -> None:
    """Shrink pytest-benchmark's JSON without losing a statistic.

    Parameters that are objects (a test parametrized with a payload object)
    are stored by pytest-benchmark as their whole repr, which can run to
    hundreds of kilobytes; they are cut to their first characters (the test
    id in ``param`` still names the case). Per-round samples are dropped
    unless ``keep_samples``.
    """
    document = json.loads(path.read_text(encoding="utf-8"))
    for bench in document.get("benchmarks", []):
        if not keep_samples:
            bench.get("stats", {}).pop("data", None)
        params = bench.get("params")
        if isinstance(params, dict):
            for name, value in params.items():
                if not (value is None or isinstance(value, (str, int, float, bool))):
                    value = repr(value)
                if isinstance(value, str) and len(value) > PARAM_CHARS:
                    value = f"{value[:PARAM_CHARS]}... ({len(value)} characters, cut)"
                params[name] = value
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def shared_trace_files(use_shared: bool) -> list[Path]:
    """The shared reference traces, when present and wanted."""
    folder = shared_traces_dir() if use_shared else None
    if folder is None:
        return []
    return sorted({p for pattern in TRACE_PATTERNS for p in folder.glob(pattern) if p.is_file()})


def trace_options(args: argparse.Namespace) -> list[str]:
    """The ``qcache simulate`` options that describe the user's own ``--trace`` files."""
    options = ["--format", args.trace_format, "--column", args.trace_column,
               "--delimiter", args.trace_delimiter]
    return options + (["--header"] if args.trace_header else [])


def run_simulator(out_dir: Path, user_traces: Sequence[Path], shared_traces: Sequence[Path],
                  synthetic_requests: int, user_options: Sequence[str], user_format: str,
                  sizes: str | None, log: Path) -> list[dict[str, Any]]:
    """``qcache simulate`` on each trace, or on the synthetic workload; what ran, for environment.json.

    ``user_options`` (format, CSV column, header, delimiter) apply to the
    user's traces only: the shared ones are recognised by name and content.
    """
    from qcache.cli import main as qcache_main
    from qcache.sim.credits import credit_for
    from qcache.sim.readers import format_from_name

    common = ["--output", str(out_dir), "--no-progress", "--policies", "all"]
    if sizes is not None:
        common += ["--sizes", sizes]
    ran: list[dict[str, Any]] = []
    sources = [(path, list(user_options), user_format) for path in user_traces]
    sources += [(path, [], "auto") for path in shared_traces]
    for path, options, trace_format in sources:
        print(f"[main] simulator: {path.name}", flush=True)
        code = _logged(log, partial(qcache_main, ["simulate", "--trace", str(path), *options, *common]))
        declared = trace_format if trace_format != "auto" else format_from_name(path)
        ran.append({"trace": path.name, "exit_code": code,
                    "credit": credit_for(path.name, declared or "")})
    if not sources:
        spec = SYNTHETIC.format(requests=synthetic_requests)
        print(f"[main] simulator: no trace available, synthetic workload {spec}", flush=True)
        code = _logged(log, partial(qcache_main, ["simulate", "--synthetic", spec, *common]))
        ran.append({"synthetic": spec, "exit_code": code, "credit": ""})
    return ran


def _logged(log: Path, call: Any) -> int:
    """Run ``call()`` with its printed tables going to ``log`` instead of the console."""
    with log.open("a", encoding="utf-8") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return int(call())


def redis_description(layout: RunLayout) -> dict[str, Any]:
    """How the benchmarks' Redis was provisioned, from pytest-benchmark's machine info."""
    try:
        document = json.loads(layout.benchmarks.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    info = document.get("machine_info", {}).get("qcache_redis")
    return info if isinstance(info, dict) else {}


def git_commit() -> dict[str, Any]:
    """The commit measured and whether the tree had changes (empty outside a git checkout)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip() != ""
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head, "dirty": dirty}


def gate(figures: Sequence[Figure], layout: RunLayout, mode: str, confirmations: int,
         keep_samples: bool) -> tuple[Verdict, Verdict]:
    """Check the figures; re-measure breached ones up to ``confirmations`` times.

    Returns the first verdict and the final one (each figure's best value over the attempts).
    """
    first = check(load_run(layout), figures)
    attempts = [first]
    for attempt in range(1, confirmations + 1):
        current = best_of(attempts)
        if current.passed:
            break
        nodes = breached_benchmarks(current)
        names = ", ".join(v.figure.name for v in current.failures)
        print(f"[main] gate: {names} past the limit; measuring again ({attempt}/{confirmations})",
              flush=True)
        confirm = layout.confirmation(attempt).create()
        run_benchmarks(sys.executable, confirm.benchmarks, layout.pytest_log, mode, nodes, None,
                       label=f"re-measuring ({attempt}/{confirmations})")
        if confirm.benchmarks.is_file():
            compact(confirm.benchmarks, keep_samples)
            attempts.append(check(load_run(confirm), figures))
    return first, best_of(attempts)


def remeasured(first: Verdict, final: Verdict) -> list[str]:
    """One line per figure whose value came from a re-measurement, with both values."""
    return [
        f"{a.figure.name}: {a.value:.3f} at first, {b.value:.3f} when measured again"
        for a, b in zip(first.values, final.values, strict=True)
        if a.value is not None and b.value is not None and a.value != b.value
    ]


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    mode = mode_named(args.mode).name
    # Work from the repository root and name folders relative to it, so that nothing the
    # run writes (logs, report) records where this checkout happens to live.
    output = args.output.resolve()
    args.trace = [trace.resolve() for trace in args.trace]
    args.figures = args.figures.resolve()
    os.chdir(ROOT)
    if output.is_relative_to(ROOT):
        output = output.relative_to(ROOT)
    # Read before measuring anything: a broken .env or figures file should stop the job now,
    # not after the suites.
    thresholds = Thresholds.from_config(CacheConfig.from_env())
    figures = load_figures(args.figures)
    layout = RunLayout(output / (args.run_id or new_run_id())).create()
    print(f"[main] run {layout.run_id} ({mode} mode): results go to {layout.root}; the benchmarks' "
          f"output goes to {layout.pytest_log}", flush=True)

    code = run_benchmarks(sys.executable, layout.benchmarks, layout.pytest_log, mode, [], args.keyword)
    if not layout.benchmarks.is_file():
        print(f"[main] the benchmark run wrote no results (pytest exit code {code}); see {layout.pytest_log}",
              file=sys.stderr)
        return code or 1
    compact(layout.benchmarks, args.keep_samples)

    requests = args.sim_requests or SYNTHETIC_REQUESTS[mode]
    simulations = run_simulator(layout.simulation, args.trace,
                                shared_trace_files(not args.no_shared_traces), requests,
                                trace_options(args), args.trace_format, args.sizes, layout.pytest_log)

    if args.profiles:
        print(f"[main] profiles: {', '.join(args.profiles)}", flush=True)
        measure_profiles(args.profiles, layout.root / PROFILES_DIR)

    environment = {
        "run_id": layout.run_id,
        "mode": mode,
        **describe_environment(),
        "redis": redis_description(layout),
        "redis_url_from_environment": bool(os.environ.get("REDIS_URL")),
        "benchmarks_exit_code": code,
        "simulations": simulations,
        "profiles": args.profiles,
        **git_commit(),
    }
    layout.environment.write_text(json.dumps(environment, indent=2) + "\n", encoding="utf-8")

    run = load_run(layout)
    failed = code != PYTEST_OK or any(s["exit_code"] != 0 for s in simulations)
    notes: list[str] = []
    if code != PYTEST_OK:
        notes.append(f"pytest exit code {code}: see pytest.log")
    if args.gate:
        first, verdict = gate(figures, layout, mode, args.confirmations, args.keep_samples)
        layout.gate.write_text(json.dumps(verdict.as_dict(), indent=2) + "\n", encoding="utf-8")
        values = list(verdict.values)
        report = format_report(run, values, thresholds, notes=remeasured(first, verdict))
        report += "\n\n" + format_verdict(verdict)
        notes.append(format_verdict(verdict).splitlines()[0])
        failed = failed or not verdict.passed
    else:
        values = list(evaluate_all(figures, run))
        report = format_report(run, values, thresholds)
    layout.report.write_text(report + "\n", encoding="utf-8")

    recommendation = recommend_default(run, layout.root / RECOMMENDED_ENV, notes)
    html = layout.root / REPORT_HTML
    if args.no_notebooks:
        notes.append("notebooks skipped (--no-notebooks): no report.html")
    elif not render_notebooks(layout.root, html, notes, recommendation):
        failed = True

    files = [("report", str(html) if html.is_file() else "(no report.html)"),
             ("recommendation", str(layout.root / RECOMMENDED_ENV)),
             ("text report", f"{layout.report} (again: qcache report {layout.root})"),
             ("full tables", str(layout.pytest_log))]
    if args.gate:
        files.append(("gate", str(layout.gate)))
    print("\n".join(format_summary(run, values, thresholds, recommendation, files, notes)))
    return 1 if failed else 0


def recommend_default(run: Run, target: Path, notes: list[str]) -> Recommendation | None:
    """The recommendation for the default workload, written to ``target``; None (with a note) when the
    run lacks what it needs."""
    from qcache.tune import (
        TuneError,
        Workload,
        curves_from_run,
        gather,
        recommend,
        render_env,
        write_env,
    )

    try:
        recommendation = recommend(Workload(), gather(run), curves_from_run(run))
        write_env(render_env(recommendation, source=f"run {run.run_id}"), target)
    except TuneError as exc:
        notes.append(f"no recommendation: {exc}")
        return None
    return recommendation


def render_notebooks(run_folder: Path, html: Path, notes: list[str],
                     recommendation: Recommendation | None = None) -> bool:
    """Execute every notebook against the run and write ``html``; False when a notebook failed.

    A failing notebook is logged beside the run (``notebook-<name>.log``: the
    cell and its traceback) and named at the top of the report, whose other
    notebooks are still rendered. Without the notebook extras this says so
    and returns True: the text report and recommended.env are written either way.
    """
    from tqdm import tqdm

    missing = missing_extras()
    if missing:
        notes.append(f"notebook extras missing ({', '.join(missing)}): no report.html; "
                     "install them with pip install -e '.[notebooks]' (the text report is written)")
        return True
    # Relative to the notebooks' folder, where they run: no machine path lands in the report.
    run_param = os.path.relpath(ROOT / run_folder, NOTEBOOK_DIR)
    parameters = {"RUN": run_param, "ENV_OUTPUT": os.path.relpath(ROOT / run_folder / RECOMMENDED_ENV, NOTEBOOK_DIR)}
    executed = []
    failed: list[str] = []
    for name in tqdm(NOTEBOOKS, desc="[main] notebooks", leave=False, disable=None):
        wanted = {"50_load": {}, "90_recommend": parameters}.get(name, {"RUN": run_param})
        try:
            executed.append((name, execute(NOTEBOOK_DIR / f"{name}.ipynb", wanted)))
        except NotebookError as exc:
            log = run_folder / f"notebook-{name}.log"
            log.write_text(str(exc) + "\n", encoding="utf-8")
            notes.append(f"notebook {name} FAILED: see {log}")
            failed.append(f"**Notebook `{name}` failed** on this run: its cell and traceback are in `{log.name}`.")
    from qcache.tune.tables import verdict

    preface = "\n\n".join([*failed, verdict(recommendation) if recommendation is not None else ""])
    html.write_text(render_html(executed, f"qcache tuning report, run {run_folder.name}", preface), encoding="utf-8")
    return not failed


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ResultsError, ConfigError) as exc:
        print(f"[main] error: {exc}", file=sys.stderr)
        for problem in getattr(exc, "problems", []):
            if problem != str(exc):
                print(f"  {problem}", file=sys.stderr)
        sys.exit(2)
