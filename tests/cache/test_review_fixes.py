"""Regressions found in review: races between reads and writes, a poisoned write-back queue,
single-flight with StopIteration, live configuration switches, clock skew, use after close,
exact invalidation counts and bad input. Each test is written once for both facades.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
import time
from typing import Any

import pytest
import redis

from qcache.cache.inputs import MAX_TTL
from qcache.cache.keys import KeyBuilder
from qcache.cache.record import RECORD_MAGIC, unpack_record
from qcache.cache.writeback import PendingWrite
from qcache.errors import CacheClosedError
from qcache.l2 import L2Op

from .conftest import MakeCache
from .support import Clocks, Handle, flusher_paused

pytestmark = [pytest.mark.redis, pytest.mark.timeout(30)]


def stored_value(raw_redis: redis.Redis, cache: Handle, key: str) -> Any:
    """The value L2 holds for ``key`` (decoded with the cache's codec), or None."""
    skey = cache.storage_key(key)
    raw = raw_redis.get(skey)
    if raw is None:
        return None
    return cache.core.codec.decode(unpack_record(raw).payload, key=skey)


def free_port() -> int:
    """A loopback port nothing listens on (so L2 is 'down')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def only_in_l2(cache: Handle, key: str, value: Any) -> None:
    """Store ``value`` and drop the L1 copy, as if another process had written it."""
    await cache.set(key, value, ttl=300)
    cache.core.l1.delete(cache.storage_key(key))


# -- 1. an L2 read in flight must not put back a deleted or overwritten value --------------------


@pytest.mark.parametrize("writer", ["delete", "set", "invalidate", "clear"])
async def test_a_read_in_flight_does_not_refill_l1_with_a_deleted_or_older_value(
    make_cache: MakeCache, raw_redis: redis.Redis, writer: str
) -> None:
    cache = await make_cache("BOTH")
    core = cache.core
    await only_in_l2(cache, "k", "v0")
    _, state = core.reads.get_begin(cache.namespace, "k", None, None)
    assert state is not None
    raw = raw_redis.get(state.skey)  # the read got v0 ...
    # ... and while it is in flight, the key is written or deleted.
    if writer == "delete":
        assert await cache.delete("k") is True
    elif writer == "set":
        await cache.set("k", "v1", ttl=300)
    elif writer == "invalidate":
        assert await cache.invalidate_pattern("default:k") == 1
    else:
        assert await cache.clear() == 1
    assert core.reads.get_end(state, raw, None) == "v0"  # the read itself answers what it read
    expected = "v1" if writer == "set" else None
    assert await cache.get("k") == expected
    assert core.l1.peek(state.skey) is None or core.l1.peek(state.skey).value == expected


async def test_get_many_and_get_or_set_reads_in_flight_do_not_refill_l1(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH")
    core = cache.core
    await only_in_l2(cache, "a", "old")
    await only_in_l2(cache, "b", "old")
    many = core.reads.plan_get_many(cache.namespace, ["a"], None)
    call = next(many)
    raws = raw_redis.mget(*call.args[0])
    await cache.set("a", "new", ttl=300)
    with pytest.raises(StopIteration) as done:
        many.send(raws)
    assert done.value.value == {"a": "old"}
    assert await cache.get("a") == "new"

    peek = core.reads.plan_peek(cache.namespace, "b", None)
    call = next(peek)
    raw = raw_redis.get(*call.args)
    assert await cache.delete("b") is True
    with pytest.raises(StopIteration):
        peek.send(raw)
    assert await cache.get("b") is None


# -- 2. one write the server refuses must not block the write-back queue ------------------------


async def test_a_ttl_beyond_ten_years_is_refused_up_front(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    for ttl in (1e16, 1e300, MAX_TTL * 1.01):
        with pytest.raises(ValueError, match="10 years"):
            await cache.set("k", 1, ttl=ttl)
    await cache.set("k", 1, ttl=MAX_TTL)
    assert await cache.get("k") == 1


async def test_a_write_the_server_refuses_is_dropped_and_the_rest_reach_l2(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK", CACHE_BATCH_SIZE=10)
    core = cache.core
    async with flusher_paused(cache):
        # An expiry Redis refuses (PX beyond its range): stands for any per-command error reply.
        bad_key = cache.storage_key("bad")
        now_ms = int(time.time() * 1000)
        record = core.entries.encode(bad_key, False, "bad", core.spec(None), "x", 60)[0]
        core.pending.put(PendingWrite(bad_key, record, now_ms + 2**63 - 1000))
        for i in range(25):
            await cache.set(f"k{i}", i, ttl=60)
    assert await cache.flush(timeout=5) == 0
    assert all(stored_value(raw_redis, cache, f"k{i}") == i for i in range(25))
    assert not raw_redis.exists(bad_key)
    stats = await cache.stats()
    assert stats["errors"].get("writeback_rejected") == 1
    assert stats["pending_writes"] == 0


# -- 3. a batch being sent stays readable -------------------------------------------------------


async def test_a_write_being_flushed_is_read_even_if_l1_evicted_it(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    core = cache.core
    await cache.set("k", "v0", ttl=300)
    assert await cache.flush() == 0
    async with flusher_paused(cache):
        await cache.set("k", "v1", ttl=300)
        flush = core.flushing.plan_flush_batch(100)
        call = next(flush)  # the batch is taken and on its way to L2
        core.l1.delete(cache.storage_key("k"))  # evicted meanwhile
        assert await cache.get("k") == "v1"
        assert await cache.get_many(["k"]) == {"k": "v1"}
        for skey, record, ttl in call.args[0]:
            raw_redis.set(skey, record, px=int(ttl * 1000))
        with pytest.raises(StopIteration):
            flush.send(None)
    assert core.pending.get(cache.storage_key("k")) is None
    core.l1.delete(cache.storage_key("k"))
    assert await cache.get("k") == "v1"
    assert stored_value(raw_redis, cache, "k") == "v1"


# -- 4. StopIteration from a loader -------------------------------------------------------------


async def test_a_loader_raising_stopiteration_fails_every_caller_without_hanging(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")

    def loader() -> Any:
        time.sleep(0.05) if not cache.is_async else None  # let the other threads become waiters
        return next(iter([]))

    results = await asyncio.wait_for(
        cache.concurrently(3, lambda facade, _i: facade.get_or_set("k", loader, ttl=5)), timeout=10
    )
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert all(isinstance(r.__cause__, StopIteration) for r in results if r.__cause__ is not None)
    assert await cache.get_or_set("k", lambda: "fine", ttl=5) == "fine"  # nothing left behind


# -- 5. the flusher's back-off holds under write load -------------------------------------------


async def test_writes_during_an_outage_do_not_defeat_the_flusher_back_off(make_cache: MakeCache) -> None:
    cache = await make_cache(
        "BOTH", "WRITE_BACK", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", CACHE_BATCH_SIZE=10,
        REDIS_MAX_RETRIES=0,
    )
    end = time.monotonic() + 1.0
    n = 0
    while time.monotonic() < end:
        await cache.set(f"k{n % 500}", n, ttl=600)
        n += 1
        if n % 20 == 0:
            await asyncio.sleep(0.001)  # a steady write rate; lets the async flusher run
    failures = sum((await cache.stats())["errors"].values())
    # Backing off 50 ms, 100 ms, 200 ms, ... allows about 5 attempts in a second; without the
    # back-off every batch-sized burst of writes woke the flusher: hundreds of attempts.
    assert 1 <= failures <= 12, failures
    cache.core.pending.complete(cache.core.pending.take(10**6))  # nothing to wait for at close


# -- 6. live strategy switch --------------------------------------------------------------------


async def test_a_queued_write_back_write_never_lands_after_a_newer_write_through(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    core = cache.core
    # Queued without starting the flusher, so it is still pending at the switch.
    core.writes.set_end(core.writes.set_begin(cache.namespace, "k", "old", 300, None))
    core.writes.set_end(core.writes.set_begin(cache.namespace, "m", "many-old", 300, None))
    cache.raw.config.update(CACHE_WRITE_STRATEGY="WRITE_THROUGH")
    await cache.set("k", "new", ttl=300)
    await cache.set_many({"m": "many-new"}, ttl=300)
    assert await cache.flush() == 0
    assert stored_value(raw_redis, cache, "k") == "new"
    assert stored_value(raw_redis, cache, "m") == "many-new"


# -- 7. level switches and the enabled switch ---------------------------------------------------


async def test_l1_comes_back_empty_after_a_level_switch_or_disabled_period(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    config = cache.raw.config
    await cache.set("k", "v1", ttl=300)
    await cache.set("j", "v1", ttl=300)
    config.update(CACHE_LEVEL="L2_REDIS")
    await cache.set("k", "v2", ttl=300)
    assert await cache.delete("j") is True
    config.update(CACHE_LEVEL="BOTH")
    assert await cache.get("k") == "v2"
    assert await cache.get("j") is None

    await cache.set("d", "v1", ttl=300)
    config.update(CACHE_ENABLED="false")
    assert await cache.delete("d") is True  # an invalidation is never a silent no-op
    config.update(CACHE_ENABLED="true")
    assert await cache.get("d") is None


# -- 8. clock skew between writer and reader ----------------------------------------------------


async def test_an_l1_copy_never_outlives_the_ttl_it_was_written_with(make_cache: MakeCache) -> None:
    ahead, here = Clocks(), Clocks()
    ahead.advance(60)  # the writer's wall clock runs a minute fast
    # Coherence off: the report of the writer's write may reach the reader after its read and drop the copy.
    writer = await make_cache("BOTH", clocks=ahead, MEMORY_CACHE_COHERENCE="false")
    reader = await make_cache("BOTH", clocks=here, MEMORY_CACHE_COHERENCE="false")
    await writer.set("k", "v", ttl=5)
    assert await reader.get("k") == "v"
    assert reader.core.l1.remaining_ttl(reader.storage_key("k")) <= 5.0
    here.advance(5.5)
    assert reader.core.l1.peek(reader.storage_key("k")) is None


async def test_version_1_records_are_still_read(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("BOTH")
    skey = cache.storage_key("old")
    payload = cache.core.codec.encode({"v": 1}, key=skey)
    expires_ms = int((time.time() + 60) * 1000)
    raw_redis.set(skey, struct.pack(">BBBQ", RECORD_MAGIC, 1, 0, expires_ms) + payload, px=60_000)
    assert await cache.get("old") == {"v": 1}
    assert unpack_record(raw_redis.get(skey)).ttl_ms == 0


# -- 9. use after close -------------------------------------------------------------------------


async def test_every_operation_after_close_raises_and_lost_writes_are_counted_each(
    make_cache: MakeCache,
) -> None:
    cache = await make_cache(
        "BOTH", "WRITE_BACK", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_MAX_RETRIES=0,
    )
    view = cache.for_project("acme")
    async with flusher_paused(cache):
        for i in range(3):
            await cache.set(f"k{i}", i, ttl=60)
    await cache.close(timeout=0.2)
    assert (await cache.stats())["errors"]["writeback_lost"] == 3
    for target in (cache, view):
        for call in (
            lambda: target.set("late", 1, ttl=60),
            lambda: target.get("k0"),
            lambda: target.get_many(["k0"]),
            lambda: target.set_many({"a": 1}, ttl=60),
            lambda: target.delete("k0"),
            lambda: target.invalidate_pattern("*"),
            lambda: target.clear(),
            lambda: target.flush(),
            lambda: target.get_or_set("k0", lambda: 1, ttl=60),
        ):
            with pytest.raises(CacheClosedError):
                await call()
    await cache.close()  # closing twice is fine


# -- 10. exact invalidation count ---------------------------------------------------------------


async def test_invalidate_pattern_counts_only_keys_it_removed(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("L2_REDIS")
    for key in ("a", "b", "c"):
        await cache.set(key, 1, ttl=60)
    operations = cache.raw._shared.operations()  # what the cache calls for each L2 operation
    real_scan = operations[L2Op.SCAN_KEYS]
    others = [cache.storage_key("b"), cache.storage_key("c")]

    def meanwhile(keys: list[str]) -> list[str]:
        if others:
            raw_redis.delete(*others)  # another process deletes b and c after the SCAN
            others.clear()
        return keys

    async def ascan(pattern: str) -> list[str]:
        return meanwhile(await real_scan(pattern))

    operations[L2Op.SCAN_KEYS] = ascan if cache.is_async else lambda pattern: meanwhile(real_scan(pattern))
    try:
        assert await cache.invalidate_pattern("*") == 1
    finally:
        operations[L2Op.SCAN_KEYS] = real_scan


# -- 11. bad input ------------------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"


async def test_keys_input_is_checked(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    await cache.set("a", 1, ttl=60)
    with pytest.raises(TypeError, match="single str"):
        await cache.get_many("abc")
    with pytest.raises(TypeError, match="mapping"):
        await cache.set_many([("x", 1)], ttl=5)  # type: ignore[arg-type]
    await cache.set(Color.RED, "stored", ttl=60)
    assert await cache.get("red") == "stored"
    assert await cache.get(Color.RED) == "stored"
    assert await cache.get_many([Color.RED]) == {"red": "stored"}
    with pytest.raises(TypeError):
        await cache.get(1)  # type: ignore[arg-type]


# -- 12. the hashed form respects CACHE_MAX_KEY_LENGTH ------------------------------------------


def test_the_hashed_form_is_shortened_to_fit_the_key_length_limit() -> None:
    long_key = "x" * 300
    roomy = KeyBuilder("q", 250).build("_", "search", long_key)
    assert roomy[1] and len(roomy[0]) == len("q:_:search:#") + 64
    tight, hashed = KeyBuilder("q", 44).build("_", "search", long_key)
    assert hashed and len(tight) <= 44 and tight.startswith("q:_:search:#")
    assert KeyBuilder("q", 44).build("_", "search", long_key)[0] == tight  # stable
    assert KeyBuilder("q", 44).build("_", "search", long_key + "y")[0] != tight


async def test_a_long_key_round_trips_under_a_tight_limit(make_cache: MakeCache, prefix: str) -> None:
    limit = len(prefix) + len(":_:default:#") + 32
    cache = await make_cache("BOTH", CACHE_MAX_KEY_LENGTH=limit)
    key = "k" * 100
    await cache.set(key, "v", ttl=60)
    assert len(cache.storage_key(key)) <= limit
    cache.core.l1.delete(cache.storage_key(key))
    assert await cache.get(key) == "v"
