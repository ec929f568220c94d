"""Batch reads by primary on a real cluster: order, shared slots, stale slot tables, errors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from redis.crc import key_slot

from qcache.errors import ServerRefusal
from qcache.l2 import AsyncRedisClusterTier, RedisClusterTier, escape_glob
from qcache.l2.node_batches import plan_reads, slot_of
from qcache.testing import ClusterEndpoint


def test_a_plan_groups_by_primary_and_shares_one_mget_per_slot() -> None:
    a, b = SimpleNamespace(name="127.0.0.1:7001"), SimpleNamespace(name="127.0.0.1:7002")
    keys = ["x", "{t}1", "y", "{t}2", "z"]
    slots = {key_slot(k.encode()): [a if i % 2 else b] for i, k in enumerate(keys)}
    plan = plan_reads(keys, slots)
    assert plan is not None
    assert [group.node for group in plan] == [a, b]  # by node name, whatever the keys' order: one order of taking pools
    by_node = {id(group.node): group for group in plan}
    assert set(by_node) == {id(a), id(b)}
    assert [1, 3] in by_node[id(a)].positions
    assert b"*3\r\n$4\r\nMGET\r\n$4\r\n{t}1\r\n$4\r\n{t}2\r\n" in by_node[id(a)].request
    assert by_node[id(b)].request.count(b"*2\r\n$3\r\nGET\r\n") == 3


@pytest.mark.parametrize("key", [b"plain", b"{tag}x", b"x{tag}y{z}", b"{}x", b"{x", b"x}{", "\u00e9{\u00e9}".encode()])
def test_slots_are_redis_pys(key: bytes) -> None:
    assert slot_of(key) == key_slot(key)


def test_an_unknown_slot_gives_no_plan() -> None:
    assert plan_reads(["a", "b"], {key_slot(b"a"): [object()]}) is None


def _stale_table(client: Any, keys: list[str]) -> None:
    """Point the slots of ``keys`` at a primary that does not serve them (as after a resharding)."""
    nodes = client.nodes_manager.slots_cache
    primaries = client.get_primaries()
    for key in keys:
        slot = key_slot(key.encode())
        wrong = next(p for p in primaries if p is not nodes[slot][0])
        nodes[slot] = [wrong]


def test_sync_reads_keep_order_and_survive_a_stale_slot_table(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    namespace = f"{prefix}:"
    client = redis_cluster.client()
    tier = RedisClusterTier.from_client(client, namespace=namespace, batch_size=1000, owns_client=True)
    keys = [f"{namespace}k{i}" for i in range(60)] + [f"{namespace}{{same}}:{i}" for i in range(5)]
    try:
        tier.set_many([(k, k.encode()) for k in keys[::2]], ttl=60)
        expected = [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
        assert tier.get_many(keys) == expected
        _stale_table(client, keys[:3])  # MOVED replies: the batch falls back to redis-py's redirects
        assert tier.get_many(keys) == expected
        assert tier.get_many(keys) == expected  # no reply left unread on a pooled connection
        client.get_primaries()[0].redis_connection = None  # not connected yet: redis-py's path connects it
        assert tier.get_many(keys) == expected
        assert tier.get_many(keys) == expected
        _stale_table(client, keys[:1])
        assert [tier.get(k) for k in keys] == expected  # single reads: direct, or redis-py's redirect
        assert tier.breaker_stats().failures == 0
    finally:
        tier.delete_pattern(escape_glob(namespace) + "*")
        tier.close()


def test_async_reads_keep_order_and_survive_a_stale_slot_table(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    from redis.asyncio.cluster import RedisCluster

    namespace = f"{prefix}:"

    async def scenario() -> None:
        client = RedisCluster.from_url(redis_cluster.url)
        tier = AsyncRedisClusterTier.from_client(client, namespace=namespace, batch_size=1000, owns_client=True)
        keys = [f"{namespace}k{i}" for i in range(60)] + [f"{namespace}{{same}}:{i}" for i in range(5)]
        try:
            await tier.set_many([(k, k.encode()) for k in keys[::2]], ttl=60)
            expected = [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
            assert await tier.get_many(keys) == expected
            _stale_table(client, keys[:3])
            assert await tier.get_many(keys) == expected
            assert await tier.get_many(keys) == expected
            _stale_table(client, keys[:1])
            assert [await tier.get(k) for k in keys] == expected
            assert tier.breaker_stats().failures == 0
        finally:
            await tier.delete_pattern(escape_glob(namespace) + "*")
            await tier.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_key_of_another_type_reads_as_missing_as_mget_does(
    redis_cluster: ClusterEndpoint, prefix: str, flavour: str
) -> None:
    """GET answers WRONGTYPE where MGET answers nil: the batch still reads like a standalone MGET."""
    from redis.asyncio.cluster import RedisCluster

    namespace = f"{prefix}:"
    keys = [f"{namespace}k{i}" for i in range(10)]
    plain = redis_cluster.client()
    try:
        plain.rpush(keys[4], b"a list")
        plain.set(keys[5], b"five")
        expected = [None] * 5 + [b"five"] + [None] * 4
        if flavour == "sync":
            tier = RedisClusterTier.from_client(redis_cluster.client(), namespace=namespace, owns_client=True)
            assert tier.get_many(keys) == expected
            assert tier.get_many(keys) == expected
            with pytest.raises(ServerRefusal, match="WRONGTYPE"):  # a single GET refuses, as on one server
                tier.get(keys[4])
            assert tier.get(keys[5]) == b"five"
            tier.close()
        else:
            async def scenario() -> None:
                atier = AsyncRedisClusterTier.from_client(RedisCluster.from_url(redis_cluster.url),
                                                         namespace=namespace, owns_client=True)
                try:
                    assert await atier.get_many(keys) == expected
                    assert await atier.get_many(keys) == expected
                    with pytest.raises(ServerRefusal, match="WRONGTYPE"):
                        await atier.get(keys[4])
                    assert await atier.get(keys[5]) == b"five"
                finally:
                    await atier.close()

            asyncio.run(scenario())
    finally:
        plain.delete(keys[4], keys[5])
        plain.close()
