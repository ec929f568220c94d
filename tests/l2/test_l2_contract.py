"""The L2 tier contract, run against a real Redis for the sync and the async tier.

The ``tier`` fixture uses batch_size 3 and parallel_operations 2, so batches of
a handful of keys already cross chunk boundaries and run chunks concurrently.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from qcache.errors import BackendError
from qcache.l2 import NO_EXPIRY, AsyncRedisTier, BreakerState, RedisTier, escape_glob

from .support import Tier, call

pytestmark = pytest.mark.redis

ALL_BYTES = bytes(range(256))


async def remaining_ms(tier: Tier, key: str) -> int:
    """PTTL of a key that must exist and expire."""
    remaining = await call(tier.pttl(key))
    assert remaining is not None and remaining >= 0
    return remaining


async def test_get_of_a_missing_key_is_none(tier: Tier, namespace: str) -> None:
    assert await call(tier.get(namespace + "absent")) is None


@pytest.mark.parametrize("data", [b"value", b"", ALL_BYTES, b"\x00" * 100_000])
async def test_set_then_get_returns_the_same_bytes(tier: Tier, namespace: str, data: bytes) -> None:
    await call(tier.set(namespace + "k", data, 60))
    assert await call(tier.get(namespace + "k")) == data


async def test_set_overwrites(tier: Tier, namespace: str) -> None:
    await call(tier.set(namespace + "k", b"one", 60))
    await call(tier.set(namespace + "k", b"two", 60))
    assert await call(tier.get(namespace + "k")) == b"two"


async def test_ttl_is_sent_as_milliseconds(tier: Tier, namespace: str) -> None:
    await call(tier.set(namespace + "k", b"v", 5))
    remaining = await remaining_ms(tier, namespace + "k")
    assert 4000 < remaining <= 5000
    await call(tier.set(namespace + "short", b"v", 0.25))
    assert 0 < await remaining_ms(tier, namespace + "short") <= 250


async def test_ttl_below_a_millisecond_still_stores_with_an_expiry(
    tier: Tier, namespace: str
) -> None:
    # PX 1: the entry may already be gone when PTTL runs, but it never lives without expiry.
    await call(tier.set(namespace + "k", b"v", 0.0001))
    assert await call(tier.pttl(namespace + "k")) in (None, 0, 1)


async def test_pttl_distinguishes_missing_and_persistent_keys(
    tier: Tier, namespace: str, redis_client: redis.Redis
) -> None:
    assert await call(tier.pttl(namespace + "absent")) is None
    redis_client.set(namespace + "forever", b"v")
    assert await call(tier.pttl(namespace + "forever")) == NO_EXPIRY


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
async def test_set_refuses_a_bad_ttl_without_writing(
    tier: Tier, namespace: str, ttl: float
) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await call(tier.set(namespace + "k", b"v", ttl))
    assert await call(tier.get(namespace + "k")) is None


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), None, 42])
async def test_set_refuses_anything_but_bytes(tier: Tier, namespace: str, data: Any) -> None:
    with pytest.raises(TypeError, match="bytes"):
        await call(tier.set(namespace + "k", data, 60))


async def test_get_many_preserves_order_across_chunks_with_gaps(tier: Tier, namespace: str) -> None:
    present = {f"{namespace}k{i}": f"v{i}".encode() for i in range(0, 11, 2)}
    await call(tier.set_many(present, ttl=60))
    keys = [f"{namespace}k{i}" for i in range(11)]  # 11 keys: 4 chunks of <= 3
    assert await call(tier.get_many(keys)) == [present.get(key) for key in keys]
    reordered = [*reversed(keys), keys[0], keys[0]]  # duplicates too
    assert await call(tier.get_many(reordered)) == [present.get(key) for key in reordered]


async def test_get_many_of_nothing_and_of_one_chunk(tier: Tier, namespace: str) -> None:
    assert await call(tier.get_many([])) == []
    await call(tier.set(namespace + "a", b"1", 60))
    assert await call(tier.get_many((namespace + "a", namespace + "b"))) == [b"1", None]


async def test_get_many_refuses_a_lone_string(tier: Tier, namespace: str) -> None:
    with pytest.raises(TypeError, match="single string"):
        await call(tier.get_many(namespace + "k"))


async def test_set_many_accepts_pairs_with_a_shared_ttl(tier: Tier, namespace: str) -> None:
    items = [(f"{namespace}p{i}", bytes([i]) * i) for i in range(8)]
    await call(tier.set_many(items, ttl=30))
    assert await call(tier.get_many([key for key, _ in items])) == [data for _, data in items]
    for key, _ in items:
        assert 29_000 < await remaining_ms(tier, key) <= 30_000


async def test_set_many_honours_per_item_ttls_across_chunks(tier: Tier, namespace: str) -> None:
    items = [(f"{namespace}t{i}", b"v", 10 + i) for i in range(7)]
    await call(tier.set_many(items))
    for key, _, ttl in items:
        remaining = await remaining_ms(tier, key)
        assert (ttl - 1) * 1000 < remaining <= ttl * 1000


async def test_set_many_validates_the_whole_batch_before_writing(
    tier: Tier, namespace: str
) -> None:
    items: list[Any] = [(f"{namespace}v{i}", b"ok") for i in range(7)] + [
        (f"{namespace}bad", "str")
    ]
    with pytest.raises(TypeError):
        await call(tier.set_many(items, ttl=60))
    assert await call(tier.get_many([key for key, _ in items])) == [None] * len(items)
    with pytest.raises(ValueError, match="no ttl"):
        await call(tier.set_many([(namespace + "x", b"v")]))


def set_commands(client: redis.Redis) -> int:
    """SET commands the server has executed so far (pipelined ones included)."""
    return int(client.info("commandstats").get("cmdstat_set", {}).get("calls", 0))


async def test_set_many_of_nothing_is_a_no_op(tier: Tier, namespace: str, redis_client: redis.Redis) -> None:
    before = set_commands(redis_client)
    await call(tier.set_many({}, ttl=1))
    await call(tier.set_many([]))
    assert set_commands(redis_client) == before  # nothing was sent
    await call(tier.set_many({namespace + "one": b"v"}, ttl=60))
    assert set_commands(redis_client) == before + 1  # the count does see a real write


async def test_delete_counts_existing_keys_across_chunks(tier: Tier, namespace: str) -> None:
    await call(tier.set_many({f"{namespace}d{i}": b"v" for i in range(5)}, ttl=60))
    keys = [f"{namespace}d{i}" for i in range(8)]  # 3 of them do not exist
    assert await call(tier.delete(*keys)) == 5
    assert await call(tier.get_many(keys)) == [None] * 8
    assert await call(tier.delete(namespace + "d0")) == 0
    assert await call(tier.delete()) == 0


GLOB_KEYS = ["a*b", "a?b", "a[1]b", "a\\b", "axb", "a1b", "a]b", "a[b", "plain"]


@pytest.mark.parametrize("name", GLOB_KEYS)
async def test_escaped_pattern_matches_exactly_the_literal_key(
    tier: Tier, namespace: str, name: str
) -> None:
    await call(tier.set_many({namespace + key: b"v" for key in GLOB_KEYS}, ttl=60))
    assert await call(tier.delete_pattern(escape_glob(namespace + name))) == 1
    remaining = await call(tier.get_many([namespace + key for key in GLOB_KEYS]))
    assert [key for key, value in zip(GLOB_KEYS, remaining, strict=True) if value is None] == [name]


async def test_pattern_delete_with_wildcards_stays_inside_the_namespace(
    tier: Tier, namespace: str, key_prefix: str, redis_client: redis.Redis
) -> None:
    await call(tier.set_many({namespace + key: b"v" for key in GLOB_KEYS}, ttl=60))
    # A neighbour that the namespace would match if its metacharacters were left live.
    neighbour = key_prefix + "nsABx:a1b"
    redis_client.set(neighbour, b"keep", px=60_000)
    try:
        assert neighbour.encode() in set(
            redis_client.scan_iter(match=namespace + "a1b", count=1000)
        )
        single_char = [key for key in GLOB_KEYS if len(key) == 3]  # a*b a?b a\b axb a1b a]b a[b
        assert await call(tier.delete_pattern(escape_glob(namespace) + "a?b")) == len(single_char)
        assert await call(tier.delete_pattern(escape_glob(namespace) + "*")) == len(
            GLOB_KEYS
        ) - len(single_char)
        assert redis_client.get(neighbour) == b"keep"
    finally:
        redis_client.delete(neighbour)


async def test_pattern_delete_scans_and_unlinks_many_keys(tier: Tier, namespace: str) -> None:
    keys = {f"{namespace}bulk:{i}": b"v" for i in range(1200)}  # > SCAN COUNT, many UNLINK batches
    await call(tier.set_many(keys, ttl=60))
    await call(tier.set(namespace + "other", b"v", 60))
    assert await call(tier.delete_pattern(escape_glob(namespace) + "bulk:*")) == 1200
    assert await call(tier.get(namespace + "other")) == b"v"
    assert await call(tier.delete_pattern(escape_glob(namespace) + "bulk:*")) == 0


@pytest.mark.parametrize(
    "make_pattern",
    [
        lambda ns, prefix: "*",
        lambda ns, prefix: ns + "*",  # the namespace unescaped: its metacharacters would be live
        lambda ns, prefix: escape_glob(prefix) + "*",  # a parent of the namespace
        lambda ns, prefix: "other:" + escape_glob(ns) + "*",
    ],
)
async def test_pattern_delete_refuses_foreign_prefixes(
    tier: Tier, namespace: str, key_prefix: str, make_pattern: Any
) -> None:
    await call(tier.set(namespace + "k", b"v", 60))
    with pytest.raises(ValueError, match="namespace"):
        await call(tier.delete_pattern(make_pattern(namespace, key_prefix)))
    assert await call(tier.get(namespace + "k")) == b"v"


async def test_ping_and_server_info(tier: Tier, redis_endpoint: Any) -> None:
    rtt = await call(tier.ping())
    assert isinstance(rtt, float) and rtt > 0
    info = await call(tier.server_info())
    assert info.version[0].isdigit()
    if redis_endpoint.server_version:
        assert info.version == redis_endpoint.server_version
    assert info.used_memory > 0
    assert info.mode == "standalone"


async def test_a_server_error_is_a_backend_error_but_not_a_breaker_failure(
    tier: Tier, namespace: str, redis_client: redis.Redis
) -> None:
    redis_client.rpush(namespace + "list", b"x")
    with pytest.raises(BackendError, match=r"GET failed \(ResponseError: WRONGTYPE"):
        await call(tier.get(namespace + "list"))
    stats = tier.breaker_stats()
    assert stats.state is BreakerState.CLOSED and stats.consecutive_failures == 0


async def test_hiredis_use_is_reported(tier: Tier) -> None:
    assert tier.hiredis_in_use == redis.utils.HIREDIS_AVAILABLE


async def test_a_closed_tier_refuses_operations(tier: Tier, namespace: str) -> None:
    await call(tier.set(namespace + "k", b"v", 60))
    await call(tier.delete_pattern(escape_glob(namespace) + "*"))
    await call(tier.close())
    await call(tier.close())  # idempotent
    with pytest.raises(BackendError, match="closed"):
        await call(tier.get(namespace + "k"))
    with pytest.raises(BackendError, match="closed"):
        await call(tier.get_many([namespace + str(i) for i in range(10)]))


async def test_warm_up_opens_the_configured_connections(
    flavour: str, redis_endpoint: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    name = "warm-" + key_prefix.strip(":").replace(":", "-")
    kwargs = {**redis_endpoint.client_kwargs(), "client_name": name}
    client: Any = redis.Redis(**kwargs) if flavour == "sync" else aredis.Redis(**kwargs)
    cls = RedisTier if flavour == "sync" else AsyncRedisTier
    tier = cls(client, namespace=key_prefix, warm_connections=3, owns_client=True)
    try:
        assert await call(tier.warm_up()) == 3
        assert sum(1 for c in redis_client.client_list() if c["name"] == name) == 3
    finally:
        await call(tier.close())
