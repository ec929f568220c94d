"""``CACHE_CONNECTION_POOL_SIZE``: connections opened ahead of traffic, at most ``REDIS_MAX_CONNECTIONS``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.testing import RedisServerProcess

pytestmark = pytest.mark.redis


def _config(server: RedisServerProcess, pool: int, max_connections: int) -> CacheConfig:
    return CacheConfig.from_env(None, {}, REDIS_URL=f"redis://127.0.0.1:{server.port}/0", CACHE_LEVEL="BOTH",
                                CACHE_CONNECTION_POOL_SIZE=pool, REDIS_MAX_CONNECTIONS=max_connections)


def _clients(probe: redis.Redis) -> int:
    """The pool's connections: all but the probe's own and the cache's invalidation connection."""
    clients = probe.client_list()
    return len([c for c in clients if c.get("name") != "qcache-invalidation"]) - 1


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize(("pool", "max_connections", "expected"), [(4, 10, 4), (12, 6, 6)])
def test_the_sync_cache_opens_its_pool_when_built(
    redis_server_factory: Callable[..., RedisServerProcess], pool: int, max_connections: int, expected: int
) -> None:
    server = redis_server_factory()
    probe = redis.Redis(port=server.port)
    try:
        with QueryCache(_config(server, pool, max_connections)):
            assert _wait_for(lambda: _clients(probe) == expected), _clients(probe)
        assert _wait_for(lambda: _clients(probe) == 0)  # closed with the cache
    finally:
        probe.close()


def test_the_async_cache_opens_its_pool_when_entered(
    redis_server_factory: Callable[..., RedisServerProcess]
) -> None:
    server = redis_server_factory()
    probe = redis.Redis(port=server.port)

    async def scenario() -> None:
        async with AsyncQueryCache(_config(server, 3, 10)):
            for _ in range(250):
                if _clients(probe) == 3:
                    break
                await asyncio.sleep(0.02)
            assert _clients(probe) == 3

    try:
        asyncio.run(scenario())
    finally:
        probe.close()


def test_a_cache_starts_while_redis_is_down(redis_server_factory: Callable[..., RedisServerProcess]) -> None:
    server = redis_server_factory()
    config = _config(server, 4, 10)
    server.stop()
    with QueryCache(config) as cache:  # the warm-up fails in the background; nothing is raised
        cache.set("k", 1)
        assert cache.get("k") == 1  # from L1


def test_a_pool_size_above_the_connection_cap_is_a_warning() -> None:
    problems = CacheConfig.from_env(None, {}, CACHE_CONNECTION_POOL_SIZE=20, REDIS_MAX_CONNECTIONS=10).validate()
    assert [p.code for p in problems if p.field == "CACHE_CONNECTION_POOL_SIZE"] == ["connection_pool_size_above_max"]
