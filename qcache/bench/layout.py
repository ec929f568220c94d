"""Where a run's results live: one folder per run, the same file names every time.

A run folder holds::

    benchmarks.json    pytest-benchmark's JSON (``--benchmark-json``), machine info included
    environment.json   what ran where: mode, Python, CPUs, Redis and how it was provisioned
    pytest.log         the benchmark run's console output
    simulation/        the simulator's ``sim_<trace>.csv`` / ``.json`` per trace or workload
    report.txt         what ``qcache report`` printed for the run
    gate.json          the regression gate's verdict, when the gate ran
    confirm-<n>/       the benchmarks the gate measured again, attempt n (a benchmarks.json each)

Scratch runs go under ``results/runs/<run-id>/`` (ignored by git); the
committed reference run lives under ``results/reference/<run-id>/``. Keeping
the names fixed is what lets ``qcache report`` and the gate read any run,
including one made on another machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from qcache.bench.errors import ResultsError

BENCHMARKS_JSON = "benchmarks.json"
ENVIRONMENT_JSON = "environment.json"
PYTEST_LOG = "pytest.log"
SIMULATION_DIR = "simulation"
REPORT_TXT = "report.txt"
GATE_JSON = "gate.json"
CONFIRM_PREFIX = "confirm-"

#: Sub-folders of the results root that hold run folders, searched in this order.
RUNS_DIR = "runs"
REFERENCE_DIR = "reference"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, file-name-safe id such as ``20250101T120000Z`` (UTC)."""
    moment = now if now is not None else datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class RunLayout:
    """The file names of one run folder (nothing is created until :meth:`create`)."""

    root: Path

    @property
    def run_id(self) -> str:
        """The folder's name."""
        return self.root.name

    @property
    def benchmarks(self) -> Path:
        return self.root / BENCHMARKS_JSON

    @property
    def environment(self) -> Path:
        return self.root / ENVIRONMENT_JSON

    @property
    def pytest_log(self) -> Path:
        return self.root / PYTEST_LOG

    @property
    def simulation(self) -> Path:
        return self.root / SIMULATION_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_TXT

    @property
    def gate(self) -> Path:
        return self.root / GATE_JSON

    def confirmation(self, attempt: int) -> RunLayout:
        """The sub-run holding the gate's ``attempt``-th re-measurement (attempts count from 1)."""
        return RunLayout(self.root / f"{CONFIRM_PREFIX}{attempt}")

    def confirmations(self) -> list[RunLayout]:
        """The re-measurements recorded in this run, in attempt order."""
        found: list[RunLayout] = []
        attempt = 1
        while (candidate := self.confirmation(attempt)).benchmarks.is_file():
            found.append(candidate)
            attempt += 1
        return found

    def create(self) -> RunLayout:
        """Make the folder (a fresh one: reusing a run's folder would mix two runs)."""
        try:
            self.root.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ResultsError(f"run folder {self.root} already exists; choose another run id") from None
        return self


def run_folders(results_root: Path) -> list[Path]:
    """Every run folder under ``results_root/runs`` and ``results_root/reference``, oldest first.

    Age is the modification time of the run's ``benchmarks.json``, so runs
    named with ``--run-id`` order correctly too; the name breaks ties.
    """
    found: list[Path] = []
    for sub in (RUNS_DIR, REFERENCE_DIR):
        base = results_root / sub
        if base.is_dir():
            found.extend(p for p in base.iterdir() if (p / BENCHMARKS_JSON).is_file())
    return sorted(found, key=lambda p: ((p / BENCHMARKS_JSON).stat().st_mtime, p.name))


def resolve_run(spec: str | None, results_root: Path) -> RunLayout:
    """The run folder named by ``spec``: a folder, a ``benchmarks.json``, a run id, or None for the latest.

    "Latest" prefers scratch runs and falls back to the committed reference.
    A spec that names nothing is an error, never a silent fallback to
    another run.
    """
    if spec is None:
        scratch = [p for p in run_folders(results_root) if p.parent.name == RUNS_DIR]
        candidates = scratch or run_folders(results_root)
        if not candidates:
            raise ResultsError(
                f"no benchmark runs under {results_root}/{RUNS_DIR} or {results_root}/{REFERENCE_DIR}; "
                "run the main job first (python3 run.py main)"
            )
        return RunLayout(candidates[-1])
    path = Path(spec)
    if path.is_file() and path.name == BENCHMARKS_JSON:
        return RunLayout(path.parent)
    if path.is_dir():
        if not (path / BENCHMARKS_JSON).is_file():
            raise ResultsError(f"{path} has no {BENCHMARKS_JSON}; is it a run folder?")
        return RunLayout(path)
    matches = [p for p in run_folders(results_root) if p.name == spec]
    if not matches:
        raise ResultsError(f"no run {spec!r}: not a folder, and no run with that id under {results_root}")
    return RunLayout(matches[-1])
