"""Fixtures for the facade tests: caches of either flavour on a real Redis, cleaned up afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.cache.core import DEFAULT_MAX_PENDING_WRITES, CacheCore
from qcache.l2 import AsyncMemoryBackend, MemoryBackend
from qcache.memory.store import MemoryStore
from qcache.testing import RedisEndpoint

from .support import FLAVOURS, Clocks, Handle, redis_keys

MakeCache = Callable[..., Awaitable[Handle]]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Which facade a test drives: ``sync`` (QueryCache) or ``async`` (AsyncQueryCache)."""
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    """A CACHE_KEY_PREFIX unique to this test, so tests share one server without flushing it."""
    return f"qct-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def raw_redis(redis_endpoint: RedisEndpoint, prefix: str) -> Iterator[redis.Redis]:
    """A plain client on the shared server, to look behind the cache; deletes the test's keys after."""
    client = redis.Redis(**redis_endpoint.client_kwargs())
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
async def make_cache(flavour: str, request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[MakeCache]:
    """``await make_cache(level, strategy, **options)``: a :class:`Handle` on a new cache.

    Options: ``clocks`` (a :class:`Clocks` for L1 and record expiry),
    ``strict``, ``max_pending`` (write-back queue bound), ``flavour`` (override
    the test's), ``config`` (used as is: level, strategy and settings are then
    ignored), ``tier``, ``backend`` (``"redis"``, the default, on the provisioned
    server; ``"memory"``, an in-memory L2 backend, and no server at all);
    anything else is a setting by environment variable name. Every cache is
    closed after the test, before the test's keys are deleted.
    """
    opened: list[QueryCache | AsyncQueryCache] = []
    endpoint: list[RedisEndpoint] = []  # the server, once a cache of this test used it

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
        backend: str = "redis",
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
            if not endpoint:
                endpoint.append(request.getfixturevalue("redis_endpoint"))
            url = endpoint[0].url
        if config is None:
            config = build_config(url, prefix, level, strategy, **settings)
        core = build_core(config, clocks, strict, max_pending)
        cls = QueryCache if flavour == "sync" else AsyncQueryCache
        cache = cls(config, core=core, tier=tier)
        opened.append(cache)
        return Handle(cache)

    yield make
    for cache in reversed(opened):
        if isinstance(cache, AsyncQueryCache):
            await cache.close(timeout=1.0)
        else:
            cache.close(timeout=1.0)
    if endpoint:  # after closing: close() flushes pending write-back writes
        client = redis.Redis(**endpoint[0].client_kwargs())
        try:
            delete_test_keys(client, prefix)
        finally:
            client.close()
