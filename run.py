#!/usr/bin/env python3
"""One entry point for the README's two commands.

    python3 run.py main    # benchmarks, simulator and report against a provisioned Redis
    python3 run.py tests   # the test suite against a provisioned Redis

Each command creates ``.venv`` beside this file on first use, installs qcache
with the extras it needs, and reinstalls when ``pyproject.toml`` changes. Only
the standard library is used here, so a fresh machine needs nothing but
Python 3.11 or newer. Extra arguments after the command go to pytest (tests)
or to the main job (``python3 run.py main --help``; ``--gate`` adds the
regression gate, as CI does).
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

# The test suite also smoke-runs every benchmark once (unmeasured), so it needs pytest-benchmark too.
EXTRAS = {"tests": "test,bench", "main": "bench"}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment(extra: str) -> Path:
    """Create the virtual environment and install qcache[extra] when stale."""
    python = venv_python()
    if not python.exists():
        print(f"[run] creating virtual environment in {VENV.name}/", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
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


def run_tests(args: list[str]) -> int:
    python = ensure_environment(EXTRAS["tests"])
    code = subprocess.call([str(python), "-m", "pytest", *args], cwd=ROOT)
    if code == PYTEST_NO_TESTS_COLLECTED:
        print("[run] pytest collected no tests for this selection; nothing failed.")
        return 0
    return code


def run_main(args: list[str]) -> int:
    python = ensure_environment(EXTRAS["main"])
    return subprocess.call([str(python), str(ROOT / "benchmarks" / "main.py"), *args], cwd=ROOT)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("qcache needs Python 3.11 or newer; run this with python3.11 or later.",
              file=sys.stderr)
        return 2
    commands = {"tests": run_tests, "main": run_main}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
