"""Pytest fixtures for a real Redis: ``redis_endpoint``, ``redis_client``, ``key_prefix``, ``redis_server``.

Enable with ``pytest_plugins = ["qcache.testing.pytest_plugin"]`` in a conftest.

* ``redis_endpoint`` (session): one server for the whole run, provisioned by
  :func:`qcache.testing.provision_redis` right after collection when a selected
  test needs it, stopped at the end. How it was provisioned is printed after
  the "collected N items" line and added to pytest-benchmark's machine info.
* ``redis_client`` (function): a ``redis.Redis`` on that server; keys under
  the test's ``key_prefix`` are deleted afterwards, so no test ever flushes.
* ``key_prefix`` (function): ``qcache-test:<8 hex>:``, unique per test.
* ``redis_server`` (function): a private server process (binary or embedded)
  the test may ``kill()``, ``stop()``, ``start()`` or ``restart()``;
  ``redis_server_factory`` starts more, with options (password, TLS, config).
  A TLS request skips the test when only a redis-server without TLS exists.
* ``redis_cluster`` (session): a Redis Cluster (3 primaries, from
  ``REDIS_CLUSTER_URL`` or local processes), started on first use and stopped
  at the end; ``redis_cluster_factory`` (function) starts private clusters
  (``factory(replicas=1)``) that a test may damage, all stopped after it.

Tests that use any of the Redis fixtures get the ``redis`` marker, so
``-m "not redis"`` runs without a server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis

from qcache.errors import ProvisioningError
from qcache.testing.cluster import ClusterEndpoint, LocalCluster, local_cluster, provision_redis_cluster
from qcache.testing.endpoint import RedisEndpoint
from qcache.testing.process import (
    PROCESS_METHODS,
    RedisServerProcess,
    TLSUnsupportedError,
    find_server_executable,
    first_server_executable,
)
from qcache.testing.redis_server import REDIS_URL_ENV, provision_redis

_REDIS_FIXTURES = frozenset({
    "redis_endpoint", "redis_client", "redis_server", "redis_server_factory", "redis_cluster",
    "redis_cluster_factory",
})
_CLEANUP_SCAN_COUNT = 500



class SessionRedis:
    """The run's shared server: provisioned at most once, closed at the end."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.endpoint: RedisEndpoint | None = None
        self.error: ProvisioningError | None = None

    def ensure(self) -> RedisEndpoint:
        """Provision on first use; later calls return the same endpoint (or raise the same error)."""
        if self.endpoint is None and self.error is None:
            try:
                self.endpoint = self._stack.enter_context(provision_redis())
            except ProvisioningError as exc:
                self.error = exc
        if self.error is not None:
            # A fresh error per test: re-raising one object would pile up tracebacks.
            raise ProvisioningError(str(self.error)) from self.error
        assert self.endpoint is not None
        return self.endpoint

    def info(self) -> dict[str, Any] | None:
        """How the server was provisioned (no secrets), or None before provisioning."""
        if self.endpoint is not None:
            return self.endpoint.describe()
        if self.error is not None:
            return {"method": None, "error": str(self.error)}
        return None

    def close(self) -> None:
        """Stop the server if we started one (idempotent)."""
        self._stack.close()


_SESSION_KEY = pytest.StashKey[SessionRedis]()


def session_redis(config: pytest.Config) -> SessionRedis:
    """The run's :class:`SessionRedis` (benchmarks read ``.info()`` for their machine info)."""
    return config.stash[_SESSION_KEY]


# ------------------------------------------------------------------- hooks
def pytest_configure(config: pytest.Config) -> None:
    """Create the run's (not yet provisioned) shared server record."""
    config.stash[_SESSION_KEY] = SessionRedis()
    config.addinivalue_line("markers", "redis: needs a real Redis server (provisioned automatically)")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared server even if its fixture never tore down (e.g. an interrupted run)."""
    state = config.stash.get(_SESSION_KEY, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> str:
    """Which provisioning methods this machine offers (the chosen one is reported after collection)."""
    url = os.environ.get(REDIS_URL_ENV)
    parts = [f"{REDIS_URL_ENV}={'set' if url else 'unset'}"]
    for method in PROCESS_METHODS:
        try:
            parts.append(f"{method}={find_server_executable(method)}")
        except ProvisioningError:
            parts.append(f"{method}=none")
    return "qcache redis candidates: " + ", ".join(parts) + " (docker is probed when needed)"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a Redis, so ``-m "not redis"`` can leave them out."""
    for item in items:
        if _REDIS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Provision the shared server now, when a selected test needs it, so the report can say how."""
    if session.config.option.collectonly:
        return
    if any("redis_endpoint" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            session_redis(session.config).ensure()
        except ProvisioningError:
            pass  # recorded; reported below and raised by the fixture in each test that needs it


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    """One line saying how the shared server was provisioned (or why it could not be)."""
    info = session_redis(config).info()
    if info is None:
        return None
    if info.get("error"):
        return f"qcache redis: UNAVAILABLE: {info['error']}"
    return "qcache redis: " + ", ".join(f"{k}={v}" for k, v in info.items())


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Record how Redis was provisioned next to pytest-benchmark's machine description."""
    info = session_redis(config).info()
    if info is not None:
        machine_info["qcache_redis"] = info


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def redis_endpoint(request: pytest.FixtureRequest) -> Iterator[RedisEndpoint]:
    """The run's shared Redis server (provisioned once, stopped at the end of the session)."""
    state = session_redis(request.config)
    yield state.ensure()
    state.close()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix unique to this test, so tests share a server without flushing it."""
    return f"qcache-test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_client(redis_endpoint: RedisEndpoint, key_prefix: str) -> Iterator[redis.Redis]:
    """A client on the shared server; the test's ``key_prefix`` keys are deleted afterwards."""
    client = redis.Redis(**redis_endpoint.client_kwargs())
    try:
        yield client
        # SCAN on our own prefix only: never KEYS, never FLUSHDB on a server we may not own.
        batch: list[Any] = []
        for key in client.scan_iter(match=_glob_escape(key_prefix) + "*", count=_CLEANUP_SCAN_COUNT):
            batch.append(key)
            if len(batch) >= _CLEANUP_SCAN_COUNT:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServerProcess]]:
    """Start private servers: ``factory(password=..., tls=..., extra_config=...)``; all stopped after."""
    with ExitStack() as stack:

        def start(**options: Any) -> RedisServerProcess:
            try:
                return stack.enter_context(_private_server(**options))
            except TLSUnsupportedError as exc:
                # The pip-embedded builds have no TLS: say so instead of failing the test.
                pytest.skip(f"needs a TLS-capable redis-server: {str(exc).splitlines()[0]}")

        yield start


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., RedisServerProcess]) -> RedisServerProcess:
    """A private server process this test may kill, stop or restart (``.endpoint`` to connect)."""
    return redis_server_factory()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterEndpoint]:
    """The run's shared Redis Cluster (3 primaries, no replicas), stopped at the end of the session."""
    with provision_redis_cluster() as endpoint:
        yield endpoint


@pytest.fixture
def redis_cluster_factory() -> Iterator[Callable[..., LocalCluster]]:
    """Start private clusters: ``factory(primaries=3, replicas=1, ...)``; every process stopped after."""
    with ExitStack() as stack:

        def start(**options: Any) -> LocalCluster:
            return stack.enter_context(local_cluster(**options))

        yield start


def _private_server(**options: Any) -> RedisServerProcess:
    """A not-yet-started RedisServerProcess from the first of binary / embedded that exists."""
    executable, method = first_server_executable("a private server")
    return RedisServerProcess(executable, method=method, **options)


def _glob_escape(text: str) -> str:
    """Escape glob metacharacters so SCAN MATCH treats ``text`` literally."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
