"""Which run a notebook or ``qcache tune`` reads: a folder, an id, or the latest under ``results/``.

The notebooks run with their own folder as the working directory, so the
results folder is found by walking up to the repository that holds it
rather than assumed to be ``./results``.
"""

from __future__ import annotations

from pathlib import Path

from qcache.bench import Run, load_run, resolve_run
from qcache.bench.layout import RUNS_DIR
from qcache.tune.errors import TuneError

RESULTS_DIR = "results"


def find_results_root(start: Path | None = None) -> Path:
    """The nearest ``results/`` folder at or above ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / RESULTS_DIR
        if candidate.is_dir():
            return candidate
    raise TuneError(f"no {RESULTS_DIR}/ folder at or above {here}; run the main job first (python3 run.py main)")


def open_run(spec: str | Path | None = None, results_root: Path | None = None) -> Run:
    """The run named by ``spec`` (a folder or a run id), or the latest one when ``spec`` is empty.

    "Latest" is the newest scratch run under ``results/runs/``, and the
    committed reference run when there is none (see :func:`qcache.bench.resolve_run`).
    """
    root = results_root or find_results_root()
    text = str(spec) if spec not in (None, "") else None
    return load_run(resolve_run(text, root))


def default_env_output(run: Run) -> Path:
    """Where a notebook writes its recommended .env: the run's own folder for a scratch run,
    else ``results/runs/recommended-<run-id>.env`` (git-ignored, so the committed reference stays untouched)."""
    root = run.layout.root
    if root.parent.name == RUNS_DIR:
        return root / "recommended.env"
    return root.parent.parent / RUNS_DIR / f"recommended-{run.run_id}.env"
