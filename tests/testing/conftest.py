"""Fixtures for the provisioning tests: a clean environment and the servers this machine has."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qcache.errors import ProvisioningError
from qcache.testing import find_server_executable
from qcache.testing.process import ProcessMethod

_PROCESS_METHODS: tuple[ProcessMethod, ...] = ("binary", "embedded")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No REDIS_URL and a Docker host that does not exist, so the order starts at ``binary``."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    missing = tmp_path_factory.mktemp("nodocker") / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
    yield


@pytest.fixture(scope="session")
def process_method() -> ProcessMethod:
    """A method that starts a server process here: ``binary`` if on PATH, else ``embedded``."""
    reasons = []
    for method in _PROCESS_METHODS:
        try:
            find_server_executable(method)
            return method
        except ProvisioningError as exc:
            reasons.append(f"{method}: {exc}")
    pytest.skip("no redis-server to start here: " + "; ".join(reasons))
