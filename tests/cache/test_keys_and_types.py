"""Cache types and their TTLs, custom types, the key layout and hashed long keys."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from qcache import CacheConfig
from qcache.cache.core import CacheCore
from qcache.config.sections import CacheTypeConfig

from .conftest import MakeCache, build_config, server_url
from .support import Handle, forge_record, redis_keys

pytestmark = pytest.mark.redis

# The development profile's TTLs (CACHE_DEFAULT_TTL and <TYPE>_CACHE_TTL).
PROFILE_TTLS = {None: 300, "embedding": 600, "search": 300, "project": 3600, "file": 1800}
LONG_A = "q" * 120 + ":first"
LONG_B = "q" * 120 + ":second"


def l2_ttl(raw_redis: redis.Redis, cache: Handle, key: str, cache_type: str | None = None) -> float:
    return raw_redis.pttl(cache.storage_key(key, cache_type)) / 1000


async def test_keys_are_prefix_namespace_type_key(make_cache: MakeCache, raw_redis: redis.Redis, prefix: str) -> None:
    cache = await make_cache("BOTH")
    await cache.set("k:1", 1, ttl=60, cache_type="search")
    await cache.for_project("acme").set("k:1", 2, ttl=60, cache_type="search")
    await cache.set("k:1", 3, ttl=60)
    assert redis_keys(raw_redis, prefix) == {
        f"{prefix}:_:search:k:1",
        f"{prefix}:acme:search:k:1",
        f"{prefix}:_:default:k:1",
    }


async def test_each_type_stores_with_its_configured_ttl(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH")
    for cache_type in PROFILE_TTLS:
        await cache.set("k", cache_type, cache_type=cache_type)
    assert cache.core.l1 is not None
    for cache_type, ttl in PROFILE_TTLS.items():
        assert await cache.get("k", cache_type=cache_type) == cache_type
        assert ttl - 2 < l2_ttl(raw_redis, cache, "k", cache_type) <= ttl
        l1_left = cache.core.l1.remaining_ttl(cache.storage_key("k", cache_type))
        assert l1_left is not None and ttl - 2 < l1_left <= ttl
    # An explicit ttl wins over the type's.
    await cache.set("explicit", 1, ttl=7, cache_type="project")
    assert 5 < l2_ttl(raw_redis, cache, "explicit", "project") <= 7


async def test_type_ttls_follow_environment_overrides(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH", SEARCH_CACHE_TTL=42, CACHE_DEFAULT_TTL=21)
    await cache.set("s", 1, cache_type="search")
    await cache.set("d", 1)
    assert 40 < l2_ttl(raw_redis, cache, "s", "search") <= 42
    assert 19 < l2_ttl(raw_redis, cache, "d") <= 21


async def test_registered_custom_types_are_usable_before_and_after_the_cache_exists(
    make_cache: MakeCache, raw_redis: redis.Redis, redis_backend: str, request: pytest.FixtureRequest, prefix: str
) -> None:
    config = build_config(server_url(request, redis_backend), prefix, "BOTH", "WRITE_THROUGH",
                          REDIS_CLUSTER_ENABLED=redis_backend == "cluster")
    config.register_cache_type("graph", CacheTypeConfig(ttl=77, compression=True))
    cache = await make_cache(config=config)
    await cache.set("g", {"edges": [[1, 2]] * 500}, cache_type="graph")
    assert await cache.get("g", cache_type="graph") == {"edges": [[1, 2]] * 500}
    assert 75 < l2_ttl(raw_redis, cache, "g", "graph") <= 77
    assert cache.storage_key("g", "graph") == f"{prefix}:_:graph:g"
    # Registered while the cache runs: picked up through the config's change callbacks.
    config.register_cache_type("chunk", CacheTypeConfig(ttl=33))
    await cache.set("c", "chunk", cache_type="chunk")
    assert await cache.get("c", cache_type="chunk") == "chunk"
    assert 31 < l2_ttl(raw_redis, cache, "c", "chunk") <= 33
    with pytest.raises(ValueError, match="unknown cache type 'nope'"):
        await cache.get("c", cache_type="nope")


async def test_long_keys_are_stored_under_a_stable_hash(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=64)
    await cache.set(LONG_A, "a", ttl=60)
    await cache.set(LONG_B, "b", ttl=60)
    # 64 hex digits would break the 64-character limit: the 160-bit base32 form is used.
    expected = {
        f"{prefix}:_:default:#" + base64.b32encode(hashlib.sha256(key.encode()).digest()[:20]).decode().lower()
        for key in (LONG_A, LONG_B)
    }
    assert redis_keys(raw_redis, prefix) == expected
    assert all(len(key) <= 64 for key in expected)
    assert await cache.get_many([LONG_A, LONG_B]) == {LONG_A: "a", LONG_B: "b"}
    # Another instance (empty L1) computes the same storage keys and checks the full key.
    other = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=64)
    assert await other.get(LONG_A) == "a"
    assert await other.get_many([LONG_B, LONG_A]) == {LONG_A: "a", LONG_B: "b"}
    assert await other.delete(LONG_A) is True
    assert redis_keys(raw_redis, prefix) == expected - {other.storage_key(LONG_A)}


async def test_a_key_starting_with_the_hash_mark_is_hashed_too(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH")
    await cache.set("#not-a-hash", 1, ttl=60)
    (stored,) = redis_keys(raw_redis, prefix)
    assert stored == f"{prefix}:_:default:#" + hashlib.sha256(b"#not-a-hash").hexdigest()
    assert await cache.get("#not-a-hash") == 1


async def test_a_record_planted_under_a_hashed_key_for_another_caller_key_is_a_miss(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    writer = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=64)
    await writer.set(LONG_A, "genuine a", ttl=60)
    await writer.set(LONG_B, "genuine b", ttl=60)
    skey_a = writer.storage_key(LONG_A)
    expires_ms = int((time.time() + 60) * 1000)
    codec = writer.core.codec
    reader = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=64)
    for embedded in (LONG_B, None):  # a valid record for skey_a, claiming to be LONG_B's value, or no key at all
        raw_redis.set(skey_a, forge_record(codec, "forged", skey_a, expires_ms, embedded), px=60_000)
        assert await reader.get(LONG_A) is None
        assert await reader.get_many([LONG_A, LONG_B]) == {LONG_B: "genuine b"}
    assert reader.core.l1 is not None and reader.core.l1.peek(skey_a) is None
    # The genuine record for the right key is accepted again.
    raw_redis.set(skey_a, forge_record(codec, "forged", skey_a, expires_ms, LONG_A), px=60_000)
    assert await reader.get(LONG_A) == "forged"


async def test_pattern_invalidation_judges_hashed_keys_by_the_caller_key(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=64)
    await cache.set_many({LONG_A: 1, LONG_B: 2, "short": 3}, ttl=60)
    assert await cache.invalidate_pattern("q" * 120 + ":f*") == 1
    assert await cache.get_many([LONG_A, LONG_B, "short"]) == {LONG_B: 2, "short": 3}
    # L2 alone (another instance, nothing in its L1): same rule, via the records' embedded keys.
    other = await make_cache("L2_REDIS", CACHE_MAX_KEY_LENGTH=64)
    assert await other.invalidate_pattern("*second") == 1
    assert redis_keys(raw_redis, prefix) == {cache.storage_key("short")}


@settings(max_examples=300, deadline=None)
@given(
    key=st.one_of(
        st.text(max_size=80), st.text(max_size=5).map(lambda k: "#" + k), st.text(min_size=200, max_size=300)
    ),
    namespace=st.sampled_from(["_", "acme", "a.b-c_d"]),
    cache_type=st.sampled_from([None, "search", "embedding"]),
)
def test_the_hot_path_key_builder_agrees_with_the_key_builder(key: str, namespace: str, cache_type: str | None) -> None:
    config = CacheConfig.from_profile(
        "development", CACHE_KEY_PREFIX="p", CACHE_LEVEL="L1_MEMORY", CACHE_MAX_KEY_LENGTH=64
    )
    core = CacheCore(config)
    try:
        spec, skey, hashed = core.locator.locate(namespace, key, cache_type)
        assert (skey, hashed) == core.storage_key(namespace, core.spec(cache_type), key)
        assert spec is core.spec(cache_type)
    finally:
        core.close()
