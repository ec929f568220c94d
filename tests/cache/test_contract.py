"""The facade contract, run for every level x write strategy, on both facades and both L2 backends.

Each test is written once against :class:`Handle`; the ``cache`` fixture
crosses the nine level/strategy pairs with the ``flavour`` fixture (sync and
async) and the L2 backend (a real Redis, a Redis Cluster, and the in-memory
backend that needs no server), so every behaviour here is checked 54 times.
Time-dependent checks move injected clocks instead of sleeping.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import redis

from .conftest import MakeCache
from .support import Clocks, Handle, redis_keys

LEVELS = ("L1_MEMORY", "L2_REDIS", "BOTH")
STRATEGIES = ("WRITE_THROUGH", "WRITE_AROUND", "WRITE_BACK")
COMBOS = [(level, strategy) for level in LEVELS for strategy in STRATEGIES]

VALUES: dict[str, Any] = {
    "int": 42,
    "float": 2.5,
    "bool": True,
    "none": None,
    "text": "naïve café ✓",
    "bytes": b"\x00\xffraw",
    "list": [1, "two", 3.0, None],
    "tuple": (1, (2, 3)),
    "set": {1, 2, 3},
    "dict": {"nested": {"a": [1, 2]}, 7: "int key"},
    "datetime": datetime.datetime(2024, 5, 17, 12, 30),
    "big": {"rows": ["x" * 100] * 2000},  # ~200 KB: crosses the compression threshold
}


BACKENDS = ("redis", "cluster", "memory")
#: The ``cache`` fixture crosses the backends itself (see pytest_generate_tests in conftest.py).
BACKEND_CROSSING_FIXTURES = ("cache",)
CASES = [(level, strategy, backend) for level, strategy in COMBOS for backend in BACKENDS]


@pytest.fixture(params=CASES, ids=["-".join(case) for case in CASES])
async def cache(request: pytest.FixtureRequest, make_cache: MakeCache, clocks: Clocks) -> Handle:
    level, strategy, backend = request.param
    return await make_cache(level, strategy, clocks=clocks, backend=backend)


@pytest.fixture(params=COMBOS, ids=[f"{level}-{strategy}" for level, strategy in COMBOS])
async def redis_cache(request: pytest.FixtureRequest, make_cache: MakeCache, clocks: Clocks) -> Handle:
    level, strategy = request.param
    return await make_cache(level, strategy, clocks=clocks)


def uses_l2(cache: Handle) -> bool:
    return cache.core.use_l2


async def test_values_round_trip(cache: Handle) -> None:
    for name, value in VALUES.items():
        await cache.set(name, value, ttl=60)
    for name, value in VALUES.items():
        assert await cache.get(name, "absent") == value, name
    assert type(await cache.get("tuple")) is tuple
    # Searchable types compress; the value still comes back intact.
    await cache.set("big", VALUES["big"], ttl=60, cache_type="search")
    assert await cache.get("big", cache_type="search") == VALUES["big"]


async def test_a_missing_key_returns_the_default(cache: Handle) -> None:
    assert await cache.get("nope") is None
    assert await cache.get("nope", "fallback") == "fallback"
    assert await cache.get_many(["nope", "neither"]) == {}


async def test_overwrite_returns_the_latest_value(cache: Handle) -> None:
    for version in range(3):
        await cache.set("k", {"v": version}, ttl=60)
    assert await cache.get("k") == {"v": 2}
    await cache.flush()
    assert await cache.get("k") == {"v": 2}


async def test_get_many_returns_only_hits_once_each(cache: Handle) -> None:
    await cache.set_many({"a": 1, "b": [2], "c": {"x": 3}}, ttl=60)
    assert await cache.get_many(["a", "missing", "c", "a"]) == {"a": 1, "c": {"x": 3}}
    assert await cache.get_many([]) == {}
    assert await cache.get("b") == [2]


async def test_delete_removes_the_key(cache: Handle) -> None:
    await cache.set("k", "v", ttl=60)
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert await cache.delete("k") is False
    await cache.flush()
    assert await cache.get("k") is None


async def test_entries_expire_after_their_ttl(cache: Handle, clocks: Clocks) -> None:
    await cache.set("short", "s", ttl=5)
    await cache.set("long", "l", ttl=50)
    await cache.flush()
    clocks.advance(4)
    assert await cache.get("short") == "s"
    clocks.advance(2)
    assert await cache.get("short") is None
    assert await cache.get_many(["short", "long"]) == {"long": "l"}
    clocks.advance(50)
    assert await cache.get("long") is None


async def test_type_ttl_applies_without_an_explicit_one(cache: Handle, clocks: Clocks) -> None:
    # The development profile sets SEARCH_CACHE_TTL=300.
    await cache.set("q", "result", cache_type="search")
    await cache.flush()
    clocks.advance(299)
    assert await cache.get("q", cache_type="search") == "result"
    clocks.advance(2)
    assert await cache.get("q", cache_type="search") is None


async def test_cache_types_are_separate_key_spaces(cache: Handle) -> None:
    await cache.set("same", "as search", ttl=60, cache_type="search")
    await cache.set("same", "as file", ttl=60, cache_type="file")
    assert await cache.get("same", cache_type="search") == "as search"
    assert await cache.get("same", cache_type="file") == "as file"
    assert await cache.get("same") is None


async def test_get_or_set_loads_once_then_serves_the_cache(cache: Handle) -> None:
    calls: list[int] = []

    def load() -> dict[str, int]:
        calls.append(1)
        return {"loaded": len(calls)}

    assert await cache.get_or_set("k", load, ttl=60) == {"loaded": 1}
    assert await cache.get_or_set("k", load, ttl=60) == {"loaded": 1}
    assert len(calls) == 1
    assert await cache.get("k") == {"loaded": 1}


async def test_invalidate_pattern_removes_only_matches(cache: Handle) -> None:
    await cache.set_many({"user:1": 1, "user:2": 2, "item:1": 3}, ttl=60, cache_type="search")
    await cache.set("user:1", "default type", ttl=60)
    assert await cache.invalidate_pattern("user:*", cache_type="search") == 2
    assert await cache.get_many(["user:1", "user:2", "item:1"], cache_type="search") == {"item:1": 3}
    assert await cache.get("user:1") == "default type"
    # Without a cache type the glob matches the caller's keys in every type.
    await cache.set("user:3", "default type", ttl=60)
    await cache.set("user:2", "search again", ttl=60, cache_type="search")
    assert await cache.invalidate_pattern("user:?") == 3
    assert await cache.get("user:1") is None and await cache.get("user:3") is None
    await cache.flush()
    assert await cache.get_many(["user:1", "user:2", "item:1"], cache_type="search") == {"item:1": 3}


async def test_clear_empties_this_namespace_only(cache: Handle) -> None:
    tenant = cache.for_project("acme")
    await cache.set_many({"a": 1, "b": 2}, ttl=60)
    await tenant.set("a", "tenant", ttl=60)
    assert await cache.clear() == 2
    assert await cache.get_many(["a", "b"]) == {}
    assert await tenant.get("a") == "tenant"
    assert await tenant.clear() == 1
    assert await tenant.get("a") is None


async def test_flush_reaches_redis_and_other_instances(
    redis_cache: Handle, make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = redis_cache
    await cache.set("shared", [1, 2, 3], ttl=60)
    assert await cache.flush() == 0
    other = await make_cache(cache.core.level.value, "WRITE_THROUGH")
    if uses_l2(cache):
        assert redis_keys(raw_redis, prefix) == {cache.storage_key("shared")}
        assert await other.get("shared") == [1, 2, 3]
    else:
        # A memory-only cache never talks to Redis.
        assert redis_keys(raw_redis, prefix) == set()
        assert await other.get("shared") is None


async def test_stats_count_what_happened(cache: Handle) -> None:
    await cache.set("k", "v", ttl=60)
    await cache.get("k")
    await cache.get("missing")
    stats = await cache.stats()
    assert stats["level"] == cache.core.level.value
    assert stats["lookups"] == 2
    assert stats["misses"]["total"] == 1
    assert sum(stats["hits"].values()) == 1
    assert stats["hit_rate"] == pytest.approx(0.5)
    assert stats["errors"] == {}
    assert stats["latency"]["get"]["count"] == 2
    assert stats["latency"]["set"]["count"] == 1
    # One set counted once per tier it reached during the call.
    core = cache.core
    written_now = set()
    if core.use_l1 and not (core.strategy.value == "WRITE_AROUND" and core.use_l2):
        written_now.add("l1")
    if core.use_l2 and core.strategy.value != "WRITE_BACK":
        written_now.add("l2")
    sets = {tier: n for tier, n in stats["sets"].items() if n}
    if core.use_l2 and core.strategy.value == "WRITE_BACK":
        # The flusher runs every 50 ms: on a slow run it may already have sent the write.
        assert sets.pop("l2", 0) in (0, 1)
    assert sets == {tier: 1 for tier in written_now}
    await cache.flush()
    assert (await cache.stats())["sets"].get("l2", 0) == (1 if uses_l2(cache) else 0)


async def test_health_is_healthy_on_a_working_cache(cache: Handle) -> None:
    report = await cache.health()
    assert report["status"] == "healthy", report["reasons"]
    assert report["reasons"] == []
    assert ("l1" in report) == cache.core.use_l1
    assert ("l2" in report) == uses_l2(cache)
