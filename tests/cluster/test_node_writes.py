"""Batch writes by primary on a real cluster: every entry lands once, redirects and unconnected nodes included."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from qcache.l2 import AsyncRedisClusterTier, RedisClusterTier, escape_glob
from qcache.l2.node_batches import slot_of
from qcache.l2.node_writes import plan_writes, write_sync
from qcache.testing import ClusterEndpoint


def test_a_plan_packs_one_set_px_per_entry_by_primary() -> None:
    a, b = SimpleNamespace(name="127.0.0.1:7001"), SimpleNamespace(name="127.0.0.1:7002")
    entries = [("x", b"1", 10), ("{t}1", b"22", 20), ("{t}2", b"", 30)]
    slots = {slot_of(e[0].encode()): [a if e[0].startswith("{") else b] for e in entries}
    plan = plan_writes(entries, slots)
    assert plan is not None
    assert [group.node for group in plan] == [a, b]  # by node name, whatever the keys' order: one order of taking pools
    by_node = {id(group.node): group for group in plan}
    assert by_node[id(b)].request == b"*5\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n$2\r\nPX\r\n$2\r\n10\r\n"
    assert by_node[id(a)].entries == entries[1:]
    assert plan_writes(entries, {}) is None


def _stale(client: Any, keys: list[str]) -> None:
    """Point the slots of ``keys`` at a primary that does not serve them (MOVED replies)."""
    table = client.nodes_manager.slots_cache
    for key in keys:
        slot = key_slot(key.encode())
        table[slot] = [next(p for p in client.get_primaries() if p is not table[slot][0])]


def test_sync_writes_land_once_through_redirects_and_unconnected_nodes(
    redis_cluster: ClusterEndpoint, prefix: str
) -> None:
    namespace = f"{prefix}:"
    client = redis_cluster.client()
    tier = RedisClusterTier.from_client(client, namespace=namespace, batch_size=1000, owns_client=True)
    peek = redis_cluster.client()
    keys = [f"{namespace}k{i}" for i in range(60)] + [f"{namespace}{{same}}:{i}" for i in range(5)]
    try:
        for round_, spoil in enumerate((None, "stale", "unconnected")):
            if spoil == "stale":
                _stale(client, keys[:4])
            elif spoil == "unconnected":
                client.get_primaries()[1].redis_connection = None
            data = {k: f"{k}-{round_}".encode() for k in keys}
            tier.set_many(data, ttl=60)
            assert [peek.get(k) for k in keys] == list(data.values()), spoil
            assert all(0 < peek.pttl(k) <= 60_000 for k in keys)
            assert tier.get_many(keys) == list(data.values())
        assert tier.breaker_stats().failures == 0
    finally:
        tier.delete_pattern(escape_glob(namespace) + "*")
        tier.close()
        peek.close()


def test_async_writes_land_once_through_redirects(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    namespace = f"{prefix}:"

    async def scenario() -> None:
        client = AsyncRedisCluster.from_url(redis_cluster.url)
        tier = AsyncRedisClusterTier.from_client(client, namespace=namespace, batch_size=1000, owns_client=True)
        keys = [f"{namespace}k{i}" for i in range(60)] + [f"{namespace}{{same}}:{i}" for i in range(5)]
        try:
            for round_ in range(2):
                if round_:
                    await client.initialize()
                    _stale(client, keys[:4])
                data = {k: f"{k}-{round_}".encode() for k in keys}
                await tier.set_many(data, ttl=60)
                assert await tier.get_many(keys) == list(data.values())
                ttls = [await client.pttl(k) for k in keys]
                assert all(0 < ttl <= 60_000 for ttl in ttls)
            assert tier.breaker_stats().failures == 0
        finally:
            await tier.delete_pattern(escape_glob(namespace) + "*")
            await tier.close()

    asyncio.run(scenario())


class _DeadNode:
    """A primary that refuses connections: a real client on a loopback port nobody listens on."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.name = f"127.0.0.1:{port}"
        self.redis_connection = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)


def test_a_node_that_refuses_connections_hands_back_only_its_entries(
    redis_cluster: ClusterEndpoint, prefix: str
) -> None:
    client = redis_cluster.client()
    dead = _DeadNode()
    try:
        table = client.nodes_manager.slots_cache
        entries = [(f"{prefix}:d{i}", f"v{i}".encode(), 60_000) for i in range(40)]
        # Half the slots point at the dead node, the rest at the primaries that serve them.
        slots = {slot_of(key.encode()): ([dead] if i % 2 else table[slot_of(key.encode())])
                 for i, (key, _, _) in enumerate(entries)}
        plan = plan_writes(entries, slots)
        assert plan is not None
        missed = write_sync(plan)
        assert sorted(missed) == sorted(entries[1::2])  # redis-py's pipeline gets these, and only these
        assert [client.get(key) for key, _, _ in entries[::2]] == [data for _, data, _ in entries[::2]]
        assert all(client.get(key) is None for key, _, _ in entries[1::2])
        # The live primaries' connections went back to their pools in step: they serve the next command.
        assert client.get(entries[0][0]) == entries[0][1]
    finally:
        for key, _, _ in entries:
            client.delete(key)
        dead.redis_connection.close()
        client.close()
