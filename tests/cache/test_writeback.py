"""Write-back: L1 now, L2 later in coalesced batches from a bounded queue; deletes are never undone."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from qcache.cache.record import unpack_record
from qcache.codec import Codec

from .conftest import MakeCache
from .support import Facade, Handle, await_until, flusher_paused, redis_keys, settle

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than every 5 ms, so races get a chance to show."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def stored_value(raw_redis: redis.Redis, cache: Handle, key: str) -> Any:
    """The value L2 holds for ``key`` (decoded with the cache's own codec), or None."""
    skey = cache.storage_key(key)
    raw = raw_redis.get(skey)
    if raw is None:
        return None
    codec: Codec = cache.core.codec
    record = unpack_record(raw)
    return codec.decode(record.payload, key=record.binding(skey))


async def test_a_write_reaches_l1_now_and_l2_from_the_background_flusher(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    async with flusher_paused(cache):
        await cache.set("k", {"v": 1}, ttl=60)
        assert await cache.get("k") == {"v": 1}
        assert not raw_redis.exists(cache.storage_key("k"))
        assert (await cache.stats())["pending_writes"] == 1
    # No flush() call: the flusher (woken every 50 ms) sends it on its own.
    assert await await_until(lambda: raw_redis.exists(cache.storage_key("k")) == 1, timeout=5)
    assert stored_value(raw_redis, cache, "k") == {"v": 1}
    assert await await_until(lambda: cache.raw.stats()["pending_writes"] == 0, timeout=5)


async def test_repeated_writes_to_a_key_coalesce_into_one(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    async with flusher_paused(cache):
        for version in range(10):
            await cache.set("hot", version, ttl=60)
        await cache.set_many({"hot": "last", "cold": 0}, ttl=60)
        assert (await cache.stats())["pending_writes"] == 2
    assert await cache.flush() == 0
    assert stored_value(raw_redis, cache, "hot") == "last"
    assert stored_value(raw_redis, cache, "cold") == 0
    assert (await cache.stats())["sets"]["l2"] == 2  # two L2 writes for twelve sets


async def test_a_full_queue_drops_the_oldest_pending_write_and_counts_it(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK", max_pending=5)
    async with flusher_paused(cache):
        for i in range(12):
            await cache.set(f"k{i}", i, ttl=60)
        stats = await cache.stats()
        assert stats["pending_writes"] == 5
        assert stats["writeback_dropped"] == 7
    assert await cache.flush() == 0
    assert redis_keys(raw_redis, cache.core.keys.prefix) == {cache.storage_key(f"k{i}") for i in range(7, 12)}
    # Only the L2 copies were lost: L1 still serves every value.
    assert await cache.get_many([f"k{i}" for i in range(12)]) == {f"k{i}": i for i in range(12)}


async def test_flush_and_close_drain_every_pending_write(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK", MEMORY_CACHE_MAX_SIZE=5000, CACHE_BATCH_SIZE=50)
    async with flusher_paused(cache):
        await cache.set_many({f"a{i}": i for i in range(300)}, ttl=60)
    assert await cache.flush() == 0
    assert len(redis_keys(raw_redis, prefix)) == 300
    for i in range(700):
        await cache.set(f"b{i}", i, ttl=60)
    await cache.close()
    assert len(redis_keys(raw_redis, prefix)) == 1000


async def test_closing_while_the_flusher_is_mid_batch_loses_nothing(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK", MEMORY_CACHE_MAX_SIZE=5000, CACHE_BATCH_SIZE=100)
    total = 3000
    for i in range(total):
        await cache.set(f"k{i}", i, ttl=60)
    # Let the flusher take its first batch, then close at once (the async facade cancels it mid-flight).
    assert await await_until(lambda: len(cache.core.pending) < total, timeout=5, interval=0)
    await cache.close()
    assert len(redis_keys(raw_redis, prefix)) == total


async def test_a_delete_after_a_set_is_never_undone_by_a_late_flush(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    # Small batches and many workers: the flusher runs constantly while sets and deletes race it.
    cache = await make_cache("BOTH", "WRITE_BACK", CACHE_BATCH_SIZE=4, MEMORY_CACHE_MAX_SIZE=5000)
    workers, keys_per_worker, rounds = 8, 12, 6

    def work(facade: Facade, worker: int) -> Any:
        rng = random.Random(worker)

        async def body() -> set[str]:
            alive: set[str] = set()
            for round_ in range(rounds):
                for j in range(keys_per_worker):
                    key = f"w{worker}:{j}"
                    await settle(facade.set(key, (worker, j, round_), ttl=60))
                    if rng.random() < 0.5 or round_ == rounds - 1 and j % 2:
                        await settle(facade.delete(key))
                        alive.discard(key)
                    else:
                        alive.add(key)
            return alive

        if cache.is_async:
            return body()
        return asyncio.run(body())

    results = await cache.concurrently(workers, work)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    alive = set().union(*results)
    assert await cache.flush() == 0
    expected = {cache.storage_key(key) for key in alive}
    assert redis_keys(raw_redis, prefix) == expected  # no deleted key came back
    assert len(expected) >= workers  # the test did keep some keys
    for key in alive:
        worker, j = key[1:].split(":")
        assert stored_value(raw_redis, cache, key) == (int(worker), int(j), rounds - 1)


async def test_set_then_delete_loops_leave_nothing_in_redis(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK", CACHE_BATCH_SIZE=2)

    def work(facade: Facade, worker: int) -> Any:
        async def body() -> None:
            for i in range(150):
                key = f"w{worker}:{i % 5}"
                await settle(facade.set(key, i, ttl=60))
                await settle(facade.delete(key))

        return body() if cache.is_async else asyncio.run(body())

    results = await cache.concurrently(6, work)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert await cache.flush() == 0
    await asyncio.sleep(0.1)  # one more flusher period: nothing may arrive late either
    assert redis_keys(raw_redis, prefix) == set()


async def test_invalidation_and_clear_also_drop_pending_writes(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    tenant = cache.for_project("acme")
    async with flusher_paused(cache):
        await cache.set_many({"user:1": 1, "user:2": 2, "item:1": 3}, ttl=60)
        await tenant.set("user:1", "tenant", ttl=60)
    # (invalidate and clear take the flush lock themselves, so they run outside the block)
    assert await cache.invalidate_pattern("user:*", cache_type="default") == 2
    assert await cache.flush() == 0
    assert redis_keys(raw_redis, prefix) == {cache.storage_key("item:1"), tenant.storage_key("user:1")}
    async with flusher_paused(cache):
        await cache.set("late", 1, ttl=60)
    assert await cache.clear() == 2
    assert await cache.flush() == 0
    assert redis_keys(raw_redis, prefix) == {tenant.storage_key("user:1")}


@pytest.mark.parametrize("flavour", ["async"])
async def test_a_flush_cancelled_mid_batch_puts_the_batch_back(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    # One batch holds every write (batch size above the count), so the background flusher is
    # not woken early and the cancelled flush() below is the one that took them all.
    cache = await make_cache("BOTH", "WRITE_BACK", MEMORY_CACHE_MAX_SIZE=5000, CACHE_BATCH_SIZE=5000)
    total = 2000
    async with flusher_paused(cache):
        await cache.set_many({f"k{i}": i for i in range(total)}, ttl=60)
        flushing = asyncio.ensure_future(cache.flush())
        await asyncio.sleep(0)  # the flush task queues for the lock we hold
    assert await await_until(lambda: cache.core.pending.queued == 0, timeout=5, interval=0)
    flushing.cancel()  # the batch is on the wire
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert await cache.flush() == 0
    assert len(redis_keys(raw_redis, prefix)) == total


async def test_a_value_evicted_from_l1_before_its_flush_is_still_read(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    await cache.set("k", "old", ttl=60)
    assert await cache.flush() == 0
    async with flusher_paused(cache):
        await cache.set("k", "new", ttl=60)
        cache.core.l1.delete(cache.storage_key("k"))  # as if L1 had evicted it
        assert stored_value(raw_redis, cache, "k") == "old"  # L2 still has the older value
        assert await cache.get("k") == "new"
        assert await cache.get_many(["k"]) == {"k": "new"}
        assert await cache.get_or_set("k", cache.loader(lambda: "loaded"), ttl=60) == "new"
    assert await cache.flush() == 0
    assert stored_value(raw_redis, cache, "k") == "new"
