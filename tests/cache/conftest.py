"""Fixtures for the facade tests: caches of either flavour on a real Redis, cleaned up afterwards."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.cache.core import DEFAULT_MAX_PENDING_WRITES, CacheCore
from qcache.errors import BackendError
from qcache.l2 import AsyncMemoryBackend, MemoryBackend
from qcache.memory.store import MemoryStore

from .support import FLAVOURS, SERVERS, Clocks, Handle, await_until, redis_keys, settle

MakeCache = Callable[..., Awaitable[Handle]]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Which facade a test drives: ``sync`` (QueryCache) or ``async`` (AsyncQueryCache)."""
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    """A CACHE_KEY_PREFIX unique to this test, so tests share one server without flushing it."""
    return f"qct-{uuid.uuid4().hex[:10]}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every facade test that uses Redis on a standalone server and on a Redis Cluster.

    A module whose own fixtures already cross the backends lists them in
    ``BACKEND_CROSSING_FIXTURES``; its tests using them run once per case. A
    module that applies to fewer deployments names them in ``REDIS_BACKENDS``.
    """
    if "redis_backend" not in metafunc.fixturenames:
        return
    crossing = set(getattr(metafunc.module, "BACKEND_CROSSING_FIXTURES", ()))
    if crossing.intersection(metafunc.fixturenames):
        return
    metafunc.parametrize("redis_backend", getattr(metafunc.module, "REDIS_BACKENDS", SERVERS))


@pytest.fixture
def redis_backend() -> str:
    """Which Redis a facade test runs on: ``redis`` (standalone) or ``cluster`` (see pytest_generate_tests)."""
    return "redis"


def server_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The URL of the shared server or cluster (provisioned on first use)."""
    fixture = "redis_cluster" if backend == "cluster" else "redis_endpoint"
    return str(request.getfixturevalue(fixture).url)


def peek_client(url: str, backend: str) -> Any:
    """A plain client to look behind the cache: ``redis.Redis``, or redis-py's ``RedisCluster``."""
    return RedisCluster.from_url(url) if backend == "cluster" else redis.Redis.from_url(url)


@pytest.fixture
def raw_redis(redis_backend: str, request: pytest.FixtureRequest, prefix: str) -> Iterator[redis.Redis]:
    """A plain client on the test's server or cluster, to look behind the cache; deletes the test's keys after."""
    client = peek_client(server_url(request, redis_backend), redis_backend)
    try:
        yield client
        delete_test_keys(client, prefix)
    finally:
        client.close()


def delete_test_keys(client: redis.Redis, prefix: str) -> None:
    """Remove what a test left under its prefix (never FLUSHDB: the server is shared)."""
    leftovers = redis_keys(client, prefix)
    if leftovers:
        client.unlink(*leftovers)


@pytest.fixture
def clocks() -> Clocks:
    """Wall and monotonic clocks that move only when told to."""
    return Clocks()


def build_config(url: str, prefix: str, level: str, strategy: str, **settings: Any) -> CacheConfig:
    """The development profile on ``url`` with this test's prefix, isolation on, and ``settings`` on top."""
    values: dict[str, Any] = {
        "REDIS_URL": url,
        "CACHE_KEY_PREFIX": prefix,
        "CACHE_LEVEL": level,
        "CACHE_WRITE_STRATEGY": strategy,
        "CACHE_PROJECT_ISOLATION": "true",
        "REDIS_SOCKET_TIMEOUT": 2.0,
        "REDIS_CONNECTION_TIMEOUT": 2.0,
        # Roomy on a loaded test machine; the fault tests set their own (see test_bounded_waits.py).
        "CACHE_L2_TIMEOUT_MS": 2000,
    }
    values.update(settings)
    return CacheConfig.from_profile("development", **values)


def build_core(
    config: CacheConfig, clocks: Clocks | None, strict: bool, max_pending: int
) -> CacheCore:
    """A core whose L1 and record expiry follow ``clocks`` (real time when None)."""
    snap = config.snapshot()
    l1 = None
    if clocks is not None and snap.core.level.uses_l1:
        l1 = MemoryStore(
            max_entries=snap.memory.max_size,
            max_bytes=snap.memory.max_memory_mb * 1024 * 1024,
            policy=snap.memory.eviction_policy,
            cleanup_interval=float(snap.memory.cleanup_interval),
            clock=clocks.mono,
        )
    kwargs: dict[str, Any] = {"strict": strict, "max_pending_writes": max_pending, "l1": l1}
    if clocks is not None:
        kwargs["clock"] = clocks.wall
    return CacheCore(config, **kwargs)


@pytest.fixture
async def make_cache(
    flavour: str, redis_backend: str, request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[MakeCache]:
    """``await make_cache(level, strategy, **options)``: a :class:`Handle` on a new cache.

    Options: ``clocks`` (a :class:`Clocks` for L1 and record expiry),
    ``strict``, ``max_pending`` (write-back queue bound), ``flavour`` (override
    the test's), ``config`` (used as is: level, strategy and settings are then
    ignored), ``tier``, ``backend`` (``"redis"`` on the provisioned server,
    ``"cluster"`` on the provisioned Redis Cluster, the default being the
    test's ``redis_backend``; ``"memory"``, an in-memory L2 backend, and no
    server at all);
    anything else is a setting by environment variable name. Every cache is
    closed after the test, before the test's keys are deleted.
    """
    opened: list[QueryCache | AsyncQueryCache] = []
    used: dict[str, str] = {}  # backend -> URL, for the servers a cache of this test used

    async def make(
        level: str = "BOTH",
        strategy: str = "WRITE_THROUGH",
        *,
        clocks: Clocks | None = None,
        strict: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING_WRITES,
        flavour: str = flavour,
        config: CacheConfig | None = None,
        tier: Any = None,
        backend: str = redis_backend,
        **settings: Any,
    ) -> Handle:
        if backend == "memory":
            url = "redis://127.0.0.1:1/0"  # never dialled: the in-memory backend is the L2
            if tier is None:
                mono = clocks.mono if clocks is not None else time.monotonic
                namespace = f"{prefix}:"
                tier = MemoryBackend(namespace=namespace, clock=mono) if flavour == "sync" else (
                    AsyncMemoryBackend(namespace=namespace, clock=mono))
        else:
            url = used.setdefault(backend, server_url(request, backend))
            if backend == "cluster":
                settings.setdefault("REDIS_CLUSTER_ENABLED", "true")
        if config is None:
            config = build_config(url, prefix, level, strategy, **settings)
        core = build_core(config, clocks, strict, max_pending)
        cls = QueryCache if flavour == "sync" else AsyncQueryCache
        cache = cls(config, core=core, tier=tier)
        opened.append(cache)
        if backend == "cluster" and tier is None and core.use_l2:
            # A cluster client discovers the topology on first use (CLUSTER SLOTS, COMMAND,
            # one connection per node): hundreds of ms on a loaded machine. The contract's
            # latency checks are about a running cache, so the discovery happens here.
            with contextlib.suppress(BackendError):  # tests of an unreachable L2 start without it
                for attempt in range(3):  # a discovery cut short by the L2 deadline tries again
                    try:
                        await settle(cache._shared.l2().warm_up())
                        break
                    except BackendError:
                        if attempt == 2:
                            raise
                # A sync cache's listener connects to every primary as it starts, waiting a moment
                # only; on a loaded machine it can come up after the test's first write, and then
                # flush L1 (nobody listened before). So the test starts once it listens.
                coherence = core.coherence
                if coherence is not None and isinstance(cache, QueryCache):
                    await await_until(lambda: coherence.stats().live, timeout=10)
        return Handle(cache)

    yield make
    for cache in reversed(opened):
        if isinstance(cache, AsyncQueryCache):
            await cache.close(timeout=1.0)
        else:
            cache.close(timeout=1.0)
    for backend, url in used.items():  # after closing: close() flushes pending write-back writes
        client = peek_client(url, backend)
        try:
            delete_test_keys(client, prefix)
        finally:
            client.close()
