"""The L2 backend contract: every backend, sync and async, passes the same tests.

Run against the Redis tiers on a real server and against the in-memory
backends. For the Redis tiers the ``tier`` fixture uses batch_size 3 and
parallel_operations 2, so batches of a handful of keys already cross chunk
boundaries and run chunks concurrently. What only a Redis server can show
(server errors, INFO, connections) is in ``test_l2_redis_tier.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from qcache.errors import BackendError
from qcache.l2 import AsyncL2Backend, L2Backend, escape_glob

from .support import BACKENDS, Tier, call


@pytest.fixture(params=BACKENDS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Which backend a contract test drives: the Redis tiers and the in-memory backends."""
    return str(request.param)


async def test_every_backend_implements_its_protocol(tier: Tier, flavour: str) -> None:
    protocol = AsyncL2Backend if flavour.endswith("async") else L2Backend
    assert isinstance(tier, protocol)

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


async def test_a_closed_tier_refuses_operations(tier: Tier, namespace: str) -> None:
    await call(tier.set(namespace + "k", b"v", 60))
    await call(tier.delete_pattern(escape_glob(namespace) + "*"))
    await call(tier.close())
    await call(tier.close())  # idempotent
    with pytest.raises(BackendError, match="closed"):
        await call(tier.get(namespace + "k"))
    with pytest.raises(BackendError, match="closed"):
        await call(tier.get_many([namespace + str(i) for i in range(10)]))
