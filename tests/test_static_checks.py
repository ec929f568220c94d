"""The type checker and the linter pass, with the configuration in pyproject.toml.

Skipped where mypy or ruff is not installed (both are in the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FINDING = re.compile(r"^(?P<path>[^\s:]+\.py):\d+")


def tool(name: str) -> list[str]:
    """The command running ``name`` in this interpreter's environment; skips the test without it."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def findings(output: str) -> list[str]:
    """The lines of a report that point at a place in a file."""
    return [line for line in output.splitlines() if FINDING.match(line)]


@pytest.mark.slow
def test_mypy_strict_passes_on_qcache(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*tool("mypy"), "--cache-dir", str(tmp_path / "mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert findings(completed.stdout) == [], completed.stdout
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_ruff_passes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*tool("ruff"), "check", "--output-format", "concise", "--cache-dir", str(tmp_path / "ruff")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert findings(completed.stdout) == [], completed.stdout
    assert completed.returncode == 0, completed.stdout + completed.stderr
