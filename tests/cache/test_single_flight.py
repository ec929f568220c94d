"""get_or_set single-flight, TTL jitter and the CACHE_ENABLED switch, on both facades."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis

from .conftest import MakeCache
from .support import Facade, Handle, redis_keys

pytestmark = pytest.mark.redis

WAITERS = 16


class Loader:
    """Counts its calls (thread-safely) and returns, or raises, what it is told to."""

    def __init__(self, result: Any = "loaded", error: BaseException | None = None) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._result = result
        self._error = error

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        if self._error is not None:
            raise self._error
        return self._result


@pytest.fixture(params=["BOTH", "L2_REDIS", "L1_MEMORY"])
async def cache(request: pytest.FixtureRequest, make_cache: MakeCache) -> Handle:
    return await make_cache(request.param)


async def test_concurrent_callers_of_a_missing_key_share_one_load(cache: Handle) -> None:
    loader = Loader({"expensive": True})
    load = cache.loader(loader, delay=0.2)

    def ask(facade: Facade, _: int) -> Any:
        return facade.get_or_set("hot", load, ttl=60)

    results = await cache.concurrently(WAITERS, ask)
    assert results == [{"expensive": True}] * WAITERS
    assert loader.calls == 1
    assert await cache.get("hot") == {"expensive": True}


async def test_different_keys_load_independently(cache: Handle) -> None:
    loader = Loader("v")
    load = cache.loader(loader, delay=0.1)

    def ask(facade: Facade, i: int) -> Any:
        return facade.get_or_set(f"key{i % 4}", load, ttl=60)

    assert await cache.concurrently(12, ask) == ["v"] * 12
    assert loader.calls == 4


async def test_a_loader_error_reaches_every_waiter_and_is_not_cached(cache: Handle) -> None:
    failing = Loader(error=LookupError("source down"))
    load = cache.loader(failing, delay=0.3)  # every waiter must have joined before it fails

    def ask(facade: Facade, _: int) -> Any:
        return facade.get_or_set("k", load, ttl=60)

    results = await cache.concurrently(WAITERS, ask)
    assert all(isinstance(r, LookupError) and str(r) == "source down" for r in results), results
    assert failing.calls == 1
    assert await cache.get("k", "absent") == "absent"
    # The next caller tries again, and a success is cached.
    working = Loader("recovered")
    assert await cache.get_or_set("k", cache.loader(working), ttl=60) == "recovered"
    assert await cache.get_or_set("k", cache.loader(working), ttl=60) == "recovered"
    assert working.calls == 1


async def test_none_is_cached_only_when_asked(cache: Handle) -> None:
    loader = Loader(None)
    assert await cache.get_or_set("n", loader, ttl=60) is None
    assert await cache.get_or_set("n", loader, ttl=60) is None
    assert loader.calls == 2
    assert await cache.get("n", "absent") == "absent"
    assert await cache.get_or_set("m", loader, ttl=60, cache_none=True) is None
    assert await cache.get_or_set("m", loader, ttl=60, cache_none=True) is None
    assert loader.calls == 3
    assert await cache.get("m", "absent") is None


@pytest.mark.parametrize("flavour", ["async"])  # coroutine loaders are an AsyncQueryCache feature
async def test_an_async_loader_is_awaited(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")

    async def load() -> str:
        return "from a coroutine"

    assert await cache.get_or_set("k", load, ttl=60) == "from a coroutine"
    assert await cache.get("k") == "from a coroutine"


async def test_ttl_jitter_spreads_expiries_below_the_ttl(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    jittered = await make_cache("BOTH", CACHE_TTL_JITTER=0.5, MEMORY_CACHE_MAX_SIZE=1000)
    await jittered.set_many({f"j{i}": i for i in range(60)}, ttl=100)
    for i in range(60, 120):
        await jittered.set(f"j{i}", i, ttl=100)
    l2 = [raw_redis.pttl(jittered.storage_key(f"j{i}")) / 1000 for i in range(120)]
    assert jittered.core.l1 is not None
    l1 = [jittered.core.l1.remaining_ttl(jittered.storage_key(f"j{i}")) for i in range(120)]
    for ttls in (l1, l2):
        assert all(t is not None and 49 < t <= 100 for t in ttls)
        assert max(ttls) - min(ttls) > 25  # spread over the range, not bunched
        assert len({round(t, 1) for t in ttls}) > 60

    plain = await make_cache("BOTH")  # jitter 0: every key gets the same TTL
    for i in range(20):
        await plain.set(f"p{i}", i, ttl=100)
    flat = [raw_redis.pttl(plain.storage_key(f"p{i}")) / 1000 for i in range(20)]
    assert max(flat) - min(flat) < 1.0 and max(flat) <= 100


async def test_a_disabled_cache_misses_and_writes_nothing(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", CACHE_ENABLED="false")
    await cache.set("k", 1, ttl=60)
    await cache.set_many({"a": 1, "b": 2}, ttl=60)
    assert await cache.get("k") is None
    assert await cache.get("k", "default") == "default"
    assert await cache.get_many(["k", "a"]) == {}
    loader = Loader("fresh")
    assert await cache.get_or_set("k", loader, ttl=60) == "fresh"
    assert await cache.get_or_set("k", loader, ttl=60) == "fresh"
    assert loader.calls == 2  # nothing is cached, the source is always asked
    assert await cache.delete("k") is False
    assert await cache.invalidate_pattern("*") == 0
    assert await cache.flush() == 0
    assert redis_keys(raw_redis, prefix) == set()
    stats = await cache.stats()
    assert stats["enabled"] is False
    assert stats["lookups"] == 0
    assert stats["l1"]["entries"] == 0
    # What an enabled instance stored is not served either: disabled means the source answers.
    enabled = await make_cache("BOTH")
    await enabled.set("stored", "old", ttl=60)
    assert await cache.get("stored") is None
    assert await cache.get_or_set("stored", lambda: "fresh", ttl=60) == "fresh"
    assert await cache.get_many(["stored"]) == {}


@pytest.mark.parametrize("flavour", ["async"])
async def test_a_cancelled_leader_does_not_cancel_its_waiters(make_cache: MakeCache) -> None:
    # A web request that gives up (client gone) must not fail the others waiting on the same key.
    cache = await make_cache("BOTH")
    started = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(0.2)
        return f"load {calls}"

    leader = asyncio.ensure_future(cache.get_or_set("k", load, ttl=60))
    await started.wait()
    waiters = [asyncio.ensure_future(cache.get_or_set("k", load, ttl=60)) for _ in range(5)]
    await asyncio.sleep(0.01)  # the waiters join the leader's flight
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await asyncio.gather(*waiters) == ["load 2"] * 5  # one of them took over the load
    assert calls == 2
    assert await cache.get("k") == "load 2"


@pytest.mark.parametrize("flavour", ["async"])
async def test_a_cancelled_waiter_leaves_the_load_running(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    loader = Loader("v")
    leader = asyncio.ensure_future(cache.get_or_set("k", cache.loader(loader, delay=0.1), ttl=60))
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(cache.get_or_set("k", cache.loader(loader, delay=0.1), ttl=60))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await leader == "v"
    assert loader.calls == 1


async def test_get_or_set_counts_one_lookup_per_call(cache: Handle) -> None:
    # The leader's re-check (did another caller fill the key meanwhile?) is not a second lookup:
    # the hit rate, and health() with it, must see what the callers saw.
    for _round in range(2):
        for i in range(10):
            assert await cache.get_or_set(f"k{i}", lambda: "v", ttl=60) == "v"
    stats = await cache.stats()
    assert stats["lookups"] == 20
    assert stats["misses"]["total"] == 10
    assert stats["hit_rate"] == pytest.approx(0.5)



async def test_a_loader_asking_for_its_own_key_fails_instead_of_hanging(cache: Handle) -> None:
    raw = cache.raw

    if cache.is_async:

        async def loader() -> Any:
            return await raw.get_or_set("self", loader)

    else:

        def loader() -> Any:
            return raw.get_or_set("self", loader)

    with pytest.raises(RuntimeError, match="inside its own loader"):
        await asyncio.wait_for(cache.get_or_set("self", loader), timeout=10)
    assert await cache.get("self", "absent") == "absent"
    # The failed flight is gone: a normal load works afterwards.
    assert await cache.get_or_set("self", cache.loader(Loader("ok")), ttl=60) == "ok"
