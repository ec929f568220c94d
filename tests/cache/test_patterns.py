"""``invalidate_pattern`` matches the caller's keys as given, in every cache type; ``cache_type`` narrows it.

Each check runs on L1 and L2 alike: with both tiers, and with a second
cache that has only L2 (nothing in its L1 to find the keys in).
"""

from __future__ import annotations

import pytest
import redis

from qcache.ops.events import market_data_update

from .conftest import MakeCache
from .support import redis_keys

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("level", ["BOTH", "L2_REDIS", "L1_MEMORY"])
async def test_the_seed_pattern_removes_the_keys_it_names(make_cache: MakeCache, level: str) -> None:
    cache = await make_cache(level)
    await cache.set("features:AAPL:1", "aapl", ttl=60)
    await cache.set("features:AAPL:2", "aapl", ttl=60, cache_type="search")
    await cache.set("features:MSFT:1", "msft", ttl=60)
    assert await cache.invalidate_pattern("features:*AAPL*") == 2
    assert await cache.get("features:AAPL:1") is None
    assert await cache.get("features:AAPL:2", cache_type="search") is None
    assert await cache.get("features:MSFT:1") == "msft"


async def test_a_pattern_judges_the_key_not_the_type_in_front_of_it(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    writer = await make_cache("BOTH")
    # The type name in front of the key must not be matched as if it were part of the key.
    await writer.set("x", "in search", ttl=60, cache_type="search")
    await writer.set("search:x", "in default", ttl=60)
    await writer.set("embedding", "the word", ttl=60, cache_type="file")
    l2_only = await make_cache("L2_REDIS")
    for cache in (l2_only, writer):  # L2 alone first (writer's L1 still holds everything), then both tiers
        assert await cache.invalidate_pattern("search:*") == 1  # the default type's "search:x" only
        assert await cache.get("x", cache_type="search") == "in search"
        assert await cache.get("search:x") is None
        assert await cache.invalidate_pattern("file:*") == 0
        assert await cache.invalidate_pattern("*:embedding") == 0
        assert await cache.invalidate_pattern("embedding*", cache_type="search") == 0
        await writer.set("search:x", "in default", ttl=60)
    assert redis_keys(raw_redis, prefix) == {
        writer.storage_key("x", "search"), writer.storage_key("search:x"), writer.storage_key("embedding", "file"),
    }
    # cache_type narrows the same pattern to one type.
    await writer.set("x", "in default", ttl=60)
    assert await writer.invalidate_pattern("x", cache_type="search") == 1
    assert await writer.get("x") == "in default"
    assert await l2_only.invalidate_pattern("x") == 1  # the default type's, from L2
    assert redis_keys(raw_redis, prefix) == {writer.storage_key("search:x"), writer.storage_key("embedding", "file")}


async def test_the_built_in_event_handlers_patterns_reach_the_keys(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    await cache.set("features:AAPL:2024", 1, ttl=60)
    await cache.set("prediction:AAPL:v3", 2, ttl=60, cache_type="project")
    await cache.set("features:MSFT:2024", 3, ttl=60)
    removed = 0
    for action in market_data_update({"symbol": "AAPL"}):
        removed += await cache.invalidate_pattern(action.pattern, cache_type=action.cache_type)
    assert removed == 2
    assert await cache.get_many(["features:AAPL:2024", "features:MSFT:2024"]) == {"features:MSFT:2024": 3}
