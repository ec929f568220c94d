"""Both tiers agree on non-ASCII patterns: L1 matches bytes, as Redis does (see qcache.l2.glob)."""

from __future__ import annotations

import pytest
import redis

from .conftest import MakeCache

pytestmark = pytest.mark.redis


async def test_a_pattern_redis_does_not_match_leaves_both_tiers_alone(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH")
    await cache.set("é", 1, ttl=60, cache_type="search")
    skey = cache.storage_key("é", "search")
    assert cache.core.l1 is not None
    # "?" is one byte to Redis and "é" two: neither tier may drop it (L1 used to, L2 never did).
    assert await cache.invalidate_pattern("?", cache_type="search") == 0
    assert cache.core.l1.peek(skey) is not None and raw_redis.exists(skey)
    assert await cache.invalidate_pattern("??", cache_type="search") == 1
    assert cache.core.l1.peek(skey) is None and not raw_redis.exists(skey)
    assert await cache.get("é", cache_type="search") is None
