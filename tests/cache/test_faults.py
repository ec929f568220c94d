"""Redis dies in the middle of a run and comes back: nothing reaches the caller, L1 keeps serving
what is written during the outage (what it held before goes with the invalidation connection),
health says degraded, and once the server is back L2 is used again and pending write-backs arrive.

Each test owns a private server (``redis_server``) it kills with SIGKILL and restarts on the same
port. The timeouts are small and the breaker's cool-down is 1 s instead of the default 5 s (the
tier is built with its own breaker), so recovery is seen within a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

import pytest
import redis

from qcache import BackendError, CacheConfig
from qcache.l2 import AsyncRedisTier, CircuitBreaker, RedisTier

from .conftest import MakeCache, build_config
from .support import Handle, await_until

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

FAST_FAIL = {"REDIS_SOCKET_TIMEOUT": 0.5, "REDIS_CONNECTION_TIMEOUT": 0.5, "REDIS_MAX_RETRIES": 0}
COOL_DOWN = 1.0
RECOVERY_BUDGET = 8.0  # cool-down, plus the write-back flusher's back-off (at most 2 s), plus slack


async def cache_on(
    make_cache: MakeCache, server: Any, prefix: str, flavour: str, level: str, strategy: str,
    settings: dict[str, Any] | None = None, **options: Any,
) -> Handle:
    config: CacheConfig = build_config(server.endpoint.url, prefix, level, strategy, **FAST_FAIL, **(settings or {}))
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=COOL_DOWN)
    tier_cls = AsyncRedisTier if flavour == "async" else RedisTier
    tier = tier_cls.from_config(config, namespace=f"{prefix}:", breaker=breaker)
    return await make_cache(config=config, tier=tier, **options)


def private_client(server: Any) -> redis.Redis:
    return redis.Redis(**server.endpoint.client_kwargs())


async def test_a_redis_crash_is_invisible_to_callers_and_recovery_is_automatic(
    make_cache: MakeCache, redis_server: Any, prefix: str, flavour: str
) -> None:
    cache = await cache_on(make_cache, redis_server, prefix, flavour, "BOTH", "WRITE_THROUGH")
    await cache.set_many({f"k{i}": i for i in range(10)}, ttl=60)
    assert (await cache.health())["status"] == "healthy"

    redis_server.kill()
    # The invalidation connection went with the server: what L1 held can no longer be trusted (another
    # process may have changed it meanwhile), so it is gone. Reads are misses, not exceptions.
    assert await await_until(lambda: not cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    for _ in range(3):
        assert await cache.get_many([f"k{i}" for i in range(10)]) == {}
        assert await cache.get("never-set") is None
    # Writes land in L1 and are served from it.
    await cache.set("during", "outage", ttl=60)
    assert await cache.get("during") == "outage"
    assert await cache.get_or_set("loaded", lambda: "by loader", ttl=60) == "by loader"
    assert await cache.delete("loaded") is True  # removed from L1
    await cache.invalidate_pattern("k1*")
    report = await cache.health()
    assert report["status"] == "degraded"
    assert report["l1"]["status"] == "healthy" and report["l2"]["status"] == "unhealthy"
    errors = (await cache.stats())["errors"]
    assert errors.get("l2_error", 0) + errors.get("l2_circuit_open", 0) >= 3

    redis_server.start()  # same port, empty (no persistence)
    client = private_client(redis_server)
    try:

        async def l2_used_again() -> bool:
            await cache.set("after", "recovery", ttl=60)
            return client.exists(cache.storage_key("after")) == 1

        assert await poll(l2_used_again, RECOVERY_BUDGET)
        assert (await cache.health())["status"] == "healthy"
        assert (await cache.stats())["l2_breaker"] == "closed"
        # A second instance reads what the first one wrote after the restart.
        other = await cache_on(make_cache, redis_server, prefix, flavour, "L2_REDIS", "WRITE_THROUGH")
        assert await other.get("after") == "recovery"
    finally:
        client.close()


async def test_pending_write_backs_survive_an_outage_bounded_and_arrive_after_it(
    make_cache: MakeCache, redis_server: Any, prefix: str, flavour: str
) -> None:
    cache = await cache_on(make_cache, redis_server, prefix, flavour, "BOTH", "WRITE_BACK", max_pending=30)
    await cache.set("before", 0, ttl=60)
    assert await cache.flush() == 0

    redis_server.kill()
    # L1 is flushed once the invalidation connection is seen lost; what is written afterwards stays.
    assert await await_until(lambda: not cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    for i in range(40):
        await cache.set(f"k{i}", i, ttl=60)  # never raises
    await asyncio.sleep(0.3)  # the flusher tries, fails, backs off; nothing is lost beyond the bound
    stats = await cache.stats()
    assert stats["pending_writes"] == 30
    assert stats["writeback_dropped"] == 10
    assert await cache.flush() == 30  # one attempt, L2 still down: all still pending
    assert await cache.get_many([f"k{i}" for i in range(40)]) == {f"k{i}": i for i in range(40)}

    redis_server.start()
    client = private_client(redis_server)
    try:
        # No flush() call: the background flusher delivers them once the breaker lets it through.
        expected = {cache.storage_key(f"k{i}") for i in range(10, 40)}
        assert await await_until(
            lambda: all(client.exists(key) for key in expected), timeout=RECOVERY_BUDGET, interval=0.1
        )
        assert not client.exists(cache.storage_key("k0"))  # dropped when the queue was full
        assert await await_until(lambda: cache.raw.stats()["pending_writes"] == 0, timeout=2)
        other = await cache_on(make_cache, redis_server, prefix, flavour, "L2_REDIS", "WRITE_THROUGH")
        assert await other.get_many([f"k{i}" for i in range(10, 40)]) == {f"k{i}": i for i in range(10, 40)}
    finally:
        client.close()


async def test_flush_never_reports_done_while_another_flush_holds_a_batch_that_fails(
    make_cache: MakeCache, redis_server: Any, prefix: str, flavour: str
) -> None:
    # 0 from flush() promises that every write reached L2. A batch taken by another flush (here an
    # explicit one; the background flusher does the same) is no longer queued but not yet sent.
    cache = await cache_on(make_cache, redis_server, prefix, flavour, "BOTH", "WRITE_BACK",
                           {"MEMORY_CACHE_COHERENCE": "false"})
    await cache.set("k", 1, ttl=60)
    pending = cache.core.pending
    os.kill(redis_server.pid, signal.SIGSTOP)
    first: Any = None
    try:
        if cache.is_async:
            first = asyncio.get_running_loop().create_task(cache.raw.flush())
        else:
            first = threading.Thread(target=cache.raw.flush)
            first.start()
        assert await await_until(lambda: pending.queued == 0 and len(pending) == 1, timeout=5, interval=0.005)
        assert await cache.flush() == 1  # the other flush's batch failed and went back to the queue
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
        if isinstance(first, threading.Thread):
            first.join(10)
        elif first is not None:
            await first
    assert await cache.flush(timeout=RECOVERY_BUDGET) == 0
    client = private_client(redis_server)
    try:
        assert client.exists(cache.storage_key("k")) == 1
    finally:
        client.close()


async def test_strict_mode_surfaces_the_outage(
    make_cache: MakeCache, redis_server: Any, prefix: str, flavour: str
) -> None:
    # Without coherence, so that L1 keeps its copy through the outage (with it, the copy goes: see above).
    cache = await cache_on(make_cache, redis_server, prefix, flavour, "BOTH", "WRITE_THROUGH",
                           {"MEMORY_CACHE_COHERENCE": "false"}, strict=True)
    await cache.set("k", 1, ttl=60)
    redis_server.kill()
    assert await cache.get("k") == 1  # an L1 hit needs no L2
    with pytest.raises(BackendError):
        await cache.get("other")
    with pytest.raises(BackendError):
        await cache.set("k2", 2, ttl=60)


async def poll(check: Any, timeout: float) -> bool:
    """Call the coroutine function ``check`` until it returns True or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)
