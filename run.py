#!/usr/bin/env python3
"""One entry point for the README's two commands.

    python3 run.py main    # benchmarks, simulator and report against a provisioned Redis
    python3 run.py tests   # the test suite against a provisioned Redis
    python3 run.py load    # Locust load profiles (loadtests/) against a provisioned Redis

Each command creates ``.venv`` beside this file on first use, installs qcache
with the extras it needs, and reinstalls when ``pyproject.toml`` changes. Only
the standard library is used here, so a fresh machine needs nothing but
Python 3.11 or newer. Extra arguments after the command go to pytest (tests),
to the main job (``python3 run.py main --help``; ``--gate`` adds the
regression gate, as CI does) or to Locust (``python3 run.py load --headless
-u 10 -t 30s``; ``-f loadtests/`` is added unless you pass ``-f``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTEST_NO_TESTS_COLLECTED = 5

# The test suite also smoke-runs every benchmark once (unmeasured), the peer comparison included,
# executes every notebook and runs short load tests, so it needs pytest-benchmark, the peers, the
# notebook extras and Locust too; the main job measures the peers and renders the notebooks.
EXTRAS = {"tests": "test,bench,peers,loadtest,notebooks", "main": "bench,peers,notebooks", "load": "loadtest"}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def has_pip(python: Path) -> bool:
    """Whether ``python`` exists and can run pip (an interrupted creation leaves it without)."""
    return python.exists() and subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True
    ).returncode == 0


def ensure_environment(extra: str) -> Path:
    """Create the virtual environment and install qcache[extra] when stale."""
    python = venv_python()
    if not has_pip(python):
        print(f"[run] creating virtual environment in {VENV.name}/", flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except subprocess.CalledProcessError:
            sys.exit("[run] could not install pip into the virtual environment; on Debian or "
                     "Ubuntu install the python3-venv package for this Python, then run again.")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extra.replace(',', '+')}"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"[run] installing qcache[{extra}] (first run or pyproject.toml changed)", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--upgrade", "pip"],
        check=True,
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-e", f".[{extra}]"],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest + "\n")
    return python


def call(command: list[str]) -> int:
    """Run ``command`` to completion and return its exit code.

    Ctrl-C reaches the child too (same process group); we keep waiting so that
    it can stop what it started (Redis servers, flushers) and print its summary,
    instead of killing it after a fraction of a second as ``subprocess.call`` does.
    """
    child = subprocess.Popen(command, cwd=ROOT)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def run_tests(args: list[str]) -> int:
    python = ensure_environment(EXTRAS["tests"])
    code = call([str(python), "-m", "pytest", *args])
    if code == PYTEST_NO_TESTS_COLLECTED:
        print("[run] pytest collected no tests for this selection; nothing failed.")
        return 0
    return code


def run_main(args: list[str]) -> int:
    python = ensure_environment(EXTRAS["main"])
    return call([str(python), str(ROOT / "benchmarks" / "main.py"), *args])


def run_load(args: list[str]) -> int:
    python = ensure_environment(EXTRAS["load"])
    locust = python.parent / ("locust.exe" if os.name == "nt" else "locust")
    has_locustfile = any(a in ("-f", "--locustfile") or a.startswith(("-f", "--locustfile=")) for a in args)
    return call([str(locust), *([] if has_locustfile else ["-f", "loadtests/"]), *args])


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("qcache needs Python 3.11 or newer; run this with python3.11 or later.",
              file=sys.stderr)
        return 2
    commands = {"tests": run_tests, "main": run_main, "load": run_load}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
