"""How the two tiers meet: L1 bounds, the read path, L1 fills from L2, write-through and write-around."""

from __future__ import annotations

import inspect
import os
import time

import pytest
import redis

from qcache import CacheConfig, QueryCache
from qcache.cache.record import unpack_record
from qcache.errors import CacheClosedError, SerializationError

from .conftest import MakeCache
from .support import Clocks, Handle, redis_keys

pytestmark = pytest.mark.redis


def l1_entry(cache: Handle, key: str, cache_type: str | None = None) -> object:
    """The live L1 entry of ``key`` (None when absent), read without counting an access."""
    assert cache.core.l1 is not None
    return cache.core.l1.peek(cache.storage_key(key, cache_type))


# -- L1 bounds ---------------------------------------------------------------------------


async def test_l1_holds_at_most_max_size_entries(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=20)
    for i in range(50):
        await cache.set(f"k{i}", i, ttl=60)
    l1 = (await cache.stats())["l1"]
    assert l1["entries"] == 20
    assert l1["max_entries"] == 20
    assert l1["evictions"] == 30
    # LRU kept the newest; the evicted ones are still served by L2.
    assert all(l1_entry(cache, f"k{i}") is not None for i in range(30, 50))
    assert all(l1_entry(cache, f"k{i}") is None for i in range(30))
    assert await cache.get_many([f"k{i}" for i in range(50)]) == {f"k{i}": i for i in range(50)}


async def test_l1_holds_at_most_max_memory_bytes(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH", MEMORY_CACHE_MAX_MEMORY_MB=1, MEMORY_CACHE_MAX_SIZE=1000)
    values = {f"blob{i}": os.urandom(100_000) for i in range(25)}  # incompressible
    for key, value in values.items():
        await cache.set(key, value, ttl=60)
    l1 = (await cache.stats())["l1"]
    assert l1["max_bytes"] == 1024 * 1024
    assert l1["bytes"] <= 1024 * 1024
    assert l1["entries"] == 10  # ~100 KB each: ten fit in 1 MiB, eleven do not
    # An entry weighs exactly the encoded record that L2 holds.
    entry = l1_entry(cache, "blob24")
    assert entry is not None
    assert entry.size == len(raw_redis.get(cache.storage_key("blob24")))
    assert await cache.get("blob0") == values["blob0"]  # evicted from L1, served by L2


async def test_a_value_larger_than_l1_is_still_cached_in_l2(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", MEMORY_CACHE_MAX_MEMORY_MB=1)
    huge = os.urandom(1_200_000)
    await cache.set("huge", huge, ttl=60)
    assert l1_entry(cache, "huge") is None
    assert await cache.get("huge") == huge


# -- the read path ---------------------------------------------------------------------------


async def test_reads_try_l1_then_l2_and_an_l2_hit_fills_l1(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    await cache.set("k", {"v": 1}, ttl=60)
    assert cache.core.l1 is not None
    cache.core.l1.delete(cache.storage_key("k"))  # as if evicted
    assert await cache.get("k") == {"v": 1}
    assert l1_entry(cache, "k") is not None
    assert await cache.get("k") == {"v": 1}
    stats = await cache.stats()
    assert stats["hits"] == {"l1": 1, "l2": 1}
    assert stats["misses"] == {"l1": 1}


async def test_without_coherence_l1_answers_before_l2(make_cache: MakeCache) -> None:
    both = await make_cache("BOTH", MEMORY_CACHE_COHERENCE="false")
    redis_only = await make_cache("L2_REDIS")
    await both.set("k", "old", ttl=60)
    await redis_only.set("k", "new", ttl=60)  # another process updates Redis
    assert await both.get("k") == "old"  # L1 answers (the price of an L1 without coherence: bounded staleness)
    assert await redis_only.get("k") == "new"


async def test_an_l2_hit_fills_l1_for_the_remaining_l2_lifetime_only(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    writer_clocks, reader_clocks = Clocks(), Clocks()
    # Coherence off: the report of the writer's write may reach the reader after its read and drop the copy.
    writer = await make_cache("BOTH", clocks=writer_clocks, MEMORY_CACHE_COHERENCE="false")
    reader = await make_cache("BOTH", clocks=reader_clocks, MEMORY_CACHE_COHERENCE="false")
    await writer.set("k", "v", ttl=2)
    reader_clocks.advance(1.2)  # the reader reads 1.2 s after the write
    assert await reader.get("k") == "v"
    skey = reader.storage_key("k")
    assert reader.core.l1 is not None
    l1_left = reader.core.l1.remaining_ttl(skey)
    record = unpack_record(raw_redis.get(skey))
    l2_left = record.expires_at_ms / 1000 - reader_clocks.wall()
    assert l1_left is not None
    assert 0 < l1_left <= l2_left <= 0.81
    assert l1_left <= raw_redis.pttl(skey) / 1000
    # And the L1 copy really dies with the L2 entry.
    reader_clocks.advance(0.81)
    assert await reader.get("k") is None


async def test_an_expired_record_is_a_miss_even_while_redis_still_holds_it(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    writer = await make_cache("L2_REDIS")
    late_clocks = Clocks()
    reader = await make_cache("BOTH", clocks=late_clocks)
    await writer.set("k", "v", ttl=30)  # long enough that Redis still holds it on a slow machine
    # The reader's wall clock 30.5 s past the real time of the write (the writer's clock is the real one;
    # the reader's stood still while the caches connected, which can take longer than the margin).
    late_clocks.advance(time.time() + 30.5 - late_clocks.wall())
    assert raw_redis.exists(reader.storage_key("k"))
    assert await reader.get("k") is None
    assert await reader.get_many(["k"]) == {}
    assert l1_entry(reader, "k") is None


# -- write-through and write-around ------------------------------------------------------------


async def test_write_through_writes_both_tiers_in_the_call(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    await cache.set("k", [1], ttl=60)
    await cache.set_many({"a": 1, "b": 2}, ttl=60)
    for key in ("k", "a", "b"):
        assert l1_entry(cache, key) is not None
        assert raw_redis.exists(cache.storage_key(key))


async def test_write_around_writes_l2_only_and_the_next_read_fills_l1(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_AROUND")
    await cache.set("k", "v1", ttl=60)
    assert l1_entry(cache, "k") is None
    assert raw_redis.exists(cache.storage_key("k"))
    assert await cache.get("k") == "v1"
    assert l1_entry(cache, "k") is not None  # filled by the read
    await cache.set("k", "v2", ttl=60)
    assert l1_entry(cache, "k") is None  # the stale L1 copy was dropped
    assert await cache.get("k") == "v2"
    await cache.set_many({"k": "v3", "j": "w"}, ttl=60)
    assert l1_entry(cache, "k") is None and l1_entry(cache, "j") is None
    assert await cache.get_many(["k", "j"]) == {"k": "v3", "j": "w"}


async def test_write_back_on_redis_only_level_writes_through(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("L2_REDIS", "WRITE_BACK")
    assert (await cache.stats())["write_strategy"] == "WRITE_THROUGH"
    await cache.set("k", 1, ttl=60)
    assert raw_redis.exists(cache.storage_key("k"))


async def test_memory_only_level_never_talks_to_redis(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("L1_MEMORY", "WRITE_BACK")
    await cache.set("k", 1, ttl=60)
    await cache.set_many({"a": 1}, ttl=60)
    await cache.get_or_set("b", lambda: 2, ttl=60)
    assert await cache.invalidate_pattern("*") == 3
    await cache.flush()
    assert redis_keys(raw_redis, prefix) == set()
    assert cache.raw._shared.tier is None


async def test_the_level_can_change_while_the_cache_runs(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("L1_MEMORY")
    await cache.set("before", 1, ttl=60)
    assert redis_keys(raw_redis, prefix) == set()
    cache.core.config.update(CACHE_LEVEL="BOTH")  # e.g. from a watched .env file
    assert await cache.get("before") == 1  # still in L1
    assert await cache.get("absent") is None  # L2 is asked now, without an error
    await cache.set("after", 2, ttl=60)
    assert redis_keys(raw_redis, prefix) == {cache.storage_key("after")}
    assert (await cache.stats())["errors"] == {}
    cache.core.config.update(CACHE_LEVEL="L1_MEMORY")
    await cache.set("later", 3, ttl=60)
    assert redis_keys(raw_redis, prefix) == {cache.storage_key("after")}


# -- per-type caps in L1 ({TYPE}_CACHE_MAX_SIZE) -----------------------------------------------------


def l1_partitions(cache: Handle) -> dict[str, int]:
    """Entries per L1 partition (one per cache type written so far, plus any capped one)."""
    assert cache.core.l1 is not None
    return cache.core.l1.stats().partitions


async def test_a_type_cap_bounds_that_type_in_l1_and_leaves_the_others_alone(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", SEARCH_CACHE_MAX_SIZE=3, MEMORY_CACHE_MAX_SIZE=100)
    for i in range(10):
        await cache.set(f"q{i}", i, ttl=60, cache_type="search")
        await cache.set(f"p{i}", i, ttl=60, cache_type="project")
        await cache.set(f"u{i}", i, ttl=60)
        assert l1_partitions(cache)["search"] <= 3
    l1 = (await cache.stats())["l1"]
    assert l1["partitions"] == {"default": 10, "embedding": 0, "file": 0, "project": 10, "search": 3}
    assert l1["entries"] == 23 < l1["max_entries"]
    # LRU within the search type: its three newest stay, nothing else was evicted.
    assert [i for i in range(10) if l1_entry(cache, f"q{i}", "search") is not None] == [7, 8, 9]
    assert all(l1_entry(cache, f"p{i}", "project") is not None for i in range(10))
    assert all(l1_entry(cache, f"u{i}") is not None for i in range(10))
    assert l1["evictions"] == 7
    # Evicted search entries are still served by L2, and what L2 refills into L1 counts as search.
    searches = [f"q{i}" for i in range(10)]
    assert await cache.get_many(searches, cache_type="search") == {f"q{i}": i for i in range(10)}
    assert l1_partitions(cache) == l1["partitions"]
    assert await cache.get("q0", cache_type="search") == 0
    assert l1_partitions(cache) == l1["partitions"]
    assert l1_entry(cache, "q0", "search") is not None


async def test_write_back_refills_from_pending_writes_count_against_their_type(make_cache: MakeCache) -> None:
    from .support import flusher_paused

    cache = await make_cache("BOTH", "WRITE_BACK", SEARCH_CACHE_MAX_SIZE=3)
    async with flusher_paused(cache):
        for i in range(5):
            await cache.set(f"q{i}", i, ttl=60, cache_type="search")
        assert len(cache.core.pending) == 5
        assert l1_entry(cache, "q0", "search") is None  # evicted from L1, still pending
        assert await cache.get("q0", cache_type="search") == 0  # served from the pending write
        assert l1_entry(cache, "q0", "search") is not None
        partitions = l1_partitions(cache)
        assert (partitions["search"], partitions.get("default", 0)) == (3, 0)


async def test_type_caps_follow_configuration_changes_and_new_types(make_cache: MakeCache) -> None:
    from qcache.config import CacheTypeConfig

    cache = await make_cache("L1_MEMORY", SEARCH_CACHE_MAX_SIZE=5, MEMORY_CACHE_MAX_SIZE=100)
    for i in range(5):
        await cache.set(f"q{i}", i, ttl=60, cache_type="search")
    assert l1_partitions(cache)["search"] == 5
    cache.core.config.update(SEARCH_CACHE_MAX_SIZE=2)  # e.g. from a watched .env file
    assert l1_partitions(cache)["search"] == 2
    assert [await cache.get(f"q{i}", cache_type="search") for i in range(5)] == [None, None, None, 3, 4]
    cache.core.config.register_cache_type("chunk", CacheTypeConfig(ttl=60, max_size=4))
    await cache.set_many({f"c{i}": i for i in range(9)}, ttl=60, cache_type="chunk")
    partitions = l1_partitions(cache)
    assert (partitions["chunk"], partitions["search"]) == (4, 2)


# -- the byte bound of a memory-only cache (sizes measured, not encoded) ---------------------------


async def test_a_memory_only_set_weighs_what_an_uncompressed_encoding_would_store(make_cache: MakeCache) -> None:
    """An L1-only cache does not encode values to weigh them. Its measure is the codec's encoded size
    exactly for values that do not compress, without the L2 record's envelope (expiry and TTL: the
    stated tolerance is under 32 bytes an entry, never above what a cache with L2 counts), and the
    uncompressed size for values that would compress (never smaller than what L2 would store)."""
    memory = await make_cache("L1_MEMORY", CACHE_COMPRESSION_ENABLED="false")
    both = await make_cache("BOTH", CACHE_COMPRESSION_ENABLED="false")
    values = {"small": {"id": 1, "tags": ["a", "b"]}, "text": "x" * 5000, "numbers": list(range(300))}
    for key, value in values.items():
        await memory.set(key, value, ttl=60)
        await both.set(key, value, ttl=60)
    assert memory.core.l1 is not None and both.core.l1 is not None
    measured, recorded = memory.core.l1.total_bytes, both.core.l1.total_bytes
    assert recorded - 32 * len(values) <= measured <= recorded
    for key, value in values.items():
        entry = memory.core.l1.get_entry(memory.storage_key(key))
        assert entry is not None
        assert entry.size == len(memory.core.codec.encode(value, key="any", compress=False))
    compressing = await make_cache("BOTH")  # lz4 from 1 KiB on: the text compresses, the record shrinks
    await compressing.set("text", values["text"], ttl=60)
    assert compressing.core.l1 is not None
    stored = compressing.core.l1.total_bytes
    weighed = memory.core.l1.get_entry(memory.storage_key("text"))
    assert weighed is not None and stored < weighed.size  # counted uncompressed in memory: on the safe side


async def test_the_byte_bound_of_a_memory_only_cache_holds(make_cache: MakeCache) -> None:
    cache = await make_cache("L1_MEMORY", MEMORY_CACHE_MAX_MEMORY_MB=1, MEMORY_CACHE_MAX_SIZE=100_000)
    value = "v" * 1000
    for i in range(3000):  # about 3 MB of values into a 1 MiB bound
        await cache.set(f"k{i}", value, ttl=60)
    l1 = cache.core.l1
    assert l1 is not None
    stats = l1.stats()
    assert stats.bytes <= 1 << 20 and stats.evictions > 0
    codec = cache.core.codec
    per_entry = codec.plain_size(value)
    assert per_entry == len(codec.encode(value, key="any", compress=False))
    assert stats.entries == (1 << 20) // per_entry  # the bound is full, by the exact encoded size
    with pytest.raises(SerializationError):
        await cache.set("bad", object(), ttl=60)  # a value that cannot be stored is still refused


# -- the memory-only set in one frame follows every switch the method does ---------------------


async def test_a_memory_only_set_follows_level_and_enabled_switches(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    """The sync facade serves a memory-only ``set`` without its method; the method's switches still apply."""
    cache = await make_cache("L1_MEMORY")
    config = cache.raw.config
    await cache.set("a", 1, ttl=60)
    assert l1_entry(cache, "a") is not None and not redis_keys(raw_redis, prefix)
    config.update(CACHE_LEVEL="BOTH")
    await cache.set("b", 2, ttl=60)
    assert cache.storage_key("b") in redis_keys(raw_redis, prefix)  # written through, as the method does
    config.update(CACHE_LEVEL="L1_MEMORY")
    await cache.set("c", 3, ttl=60, tags=("t",))
    assert await cache.get("c") == 3
    assert cache.storage_key("c") not in redis_keys(raw_redis, prefix)
    assert await cache.invalidate_tags("t") == 1
    config.update(CACHE_ENABLED="false")
    await cache.set("d", 4, ttl=60)  # a disabled cache stores nothing
    config.update(CACHE_ENABLED="true")
    assert await cache.get("d") is None
    await cache.close()
    with pytest.raises(CacheClosedError):
        await cache.set("e", 5, ttl=60)


def test_the_sync_memory_only_set_keeps_the_methods_signature_and_counts() -> None:
    with QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY")) as cache:
        def shape(fn: object) -> list[tuple[str, object, object]]:
            return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]

        assert shape(cache.set) == shape(QueryCache.set)[1:]  # names, kinds and defaults, without self
        assert cache.set.__doc__ == QueryCache.set.__doc__
        with pytest.raises(TypeError):
            cache.set("k", 1, 60, "search")  # type: ignore[misc]  # cache_type is keyword-only
        with pytest.raises(TypeError):
            cache.set("k", 1, True)  # a bool is no TTL
        with pytest.raises(ValueError):
            cache.set("k", 1, -1)
        with pytest.raises(ValueError):
            cache.set("k", 1, 60, cache_type="no-such-type")
        cache.set("k", {"a": 1}, 60, cache_type="search")
        cache.set("n", [1, 2], None)  # the type's TTL
        assert cache.get("k", cache_type="search") == {"a": 1} and cache.get("n") == [1, 2]
        for i in range(300):
            cache.set(f"s{i}", i, 60.5)
        stats = cache.stats()
        assert stats["sets"] == {"l1": 302}
        assert stats["l1"]["entries"] == 302
        view = cache.for_project("acme")
        view.set("k", "in acme", 60)
        assert view.get("k") == "in acme" and cache.get("k") is None
