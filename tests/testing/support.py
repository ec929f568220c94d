"""Helpers for the provisioning tests: which servers exist here, and process liveness."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from qcache.errors import ProvisioningError
from qcache.testing import find_server_executable
from qcache.testing.process import ProcessMethod


def require_executable(method: ProcessMethod) -> Path:
    """The redis-server for ``method``, or skip the test saying why this machine cannot run it."""
    try:
        return find_server_executable(method)
    except ProvisioningError as exc:
        pytest.skip(f"the {method} method cannot be exercised here: {exc}")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True  # no procfs to tell a zombie apart
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    """Poll until ``pid`` is gone; False if it still lives after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)
