"""Shared pytest setup: the Redis provisioning fixtures, pytester for testing plugins, a failing kernel."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest

from qcache.memory.policies.kernels import LazyKernel

pytest_plugins = ["qcache.testing.pytest_plugin", "pytester"]

#: ``failing_kernel(kernel, function, error)``: see the fixture.
FailingKernel = Callable[[LazyKernel, str, BaseException], None]


@pytest.fixture
def failing_kernel(monkeypatch: pytest.MonkeyPatch) -> FailingKernel:
    """Make a compiled kernel look loaded, with its ``function`` raising ``error`` (for this test only)."""

    def install(kernel: LazyKernel, function: str, error: BaseException) -> None:
        def fail(*args: object) -> int:
            raise error

        monkeypatch.setattr(kernel, "_module", types.SimpleNamespace(**{function: fail}))
        monkeypatch.setattr(kernel, "state", "loaded")

    return install
