"""Failover: a primary with a replica is killed under load; callers see no exception, nothing is lost.

One test, run on both facades, drives caches through the crash of a primary
and the promotion of its replica: a writer (both tiers, write-back, so its
writes queue while L2 fails) and a reader (L2 only, so every read goes to
the cluster). It measures what a user would ask about:

* exceptions raised to callers (must be 0: a failed L2 call is a miss);
* L2 errors counted by the cache, and the time from the crash until a key
  owned by the dead primary is served from L2 again;
* write-back writes made before and during the outage that never reached
  the cluster (must be 0).

The figures are printed (``-s`` shows them) and checked against the goals.
Writes acknowledged by a primary but not yet copied to its replica can be
lost by Redis itself (replication is asynchronous); the test waits for
replication (``WAIT``) before the crash so that it measures the cache, not
that window.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.testing import LocalCluster

KEYS = 300


@dataclass
class Outage:
    """What callers and the cache saw around one failover."""

    caller_exceptions: int = 0
    l2_errors: int = 0
    seconds_to_serve_again: float = 0.0
    lost_writes: int = 0
    reads_during_outage: int = 0


def config_for(cluster: LocalCluster, prefix: str, level: str, strategy: str) -> CacheConfig:
    return CacheConfig.from_profile(
        "development",
        REDIS_CLUSTER_ENABLED="true",
        # Every node as a seed, as in production: a client that first connects after the
        # crash must not depend on the dead node alone.
        REDIS_CLUSTER_NODES=",".join(cluster.endpoint.nodes),
        CACHE_KEY_PREFIX=prefix,
        CACHE_LEVEL=level,
        CACHE_WRITE_STRATEGY=strategy,
        REDIS_SOCKET_TIMEOUT=1.0,
        REDIS_CONNECTION_TIMEOUT=1.0,
    )


def victim_and_probe(cluster: LocalCluster, prefix: str, cache: Any) -> tuple[Any, str]:
    """A primary that has a replica, and one of our keys it owns."""
    client = cluster.endpoint.client()
    try:
        primary = next(p for p in cluster.primaries() if cluster.replicas_of(p))
        for i in range(KEYS):
            storage_key = cache._core.storage_key(cache.namespace, cache._core.spec(None), f"k{i}")[0]
            if client.get_node_from_key(storage_key).port == primary.port:
                return primary, f"k{i}"
        raise AssertionError("no key on the chosen primary")
    finally:
        client.close()


def wait_replicated(cluster: LocalCluster) -> None:
    """Every primary's writes are on its replica (WAIT 1)."""
    client = cluster.endpoint.client()
    try:
        for node in client.get_primaries():
            client.execute_command("WAIT", 1, 2000, target_nodes=node)
    finally:
        client.close()


def lost_writes(cluster: LocalCluster, prefix: str, cache: Any, expected: dict[str, int]) -> int:
    """How many keys do not hold, in the cluster, the last value written to them."""
    reader = QueryCache(config_for(cluster, prefix, "L2_REDIS", "WRITE_THROUGH"))
    try:
        found = reader.get_many(list(expected))
    finally:
        reader.close()
    return sum(1 for key, value in expected.items() if found.get(key) != value)


def report(flavour: str, outage: Outage) -> None:
    print(  # noqa: T201 - the figures are the point of this test
        f"\nfailover[{flavour}]: caller exceptions {outage.caller_exceptions}, L2 errors {outage.l2_errors}, "
        f"L2 serving again after {outage.seconds_to_serve_again:.2f} s, "
        f"reads during the outage {outage.reads_during_outage}, lost write-back writes {outage.lost_writes}"
    )


async def settle(result: Any) -> Any:
    """``result``, awaited first if it is awaitable (the same body drives both facades)."""
    return await result if inspect.isawaitable(result) else result


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_cache_rides_out_a_primary_failover(
    redis_cluster_factory: Callable[..., LocalCluster], prefix: str, flavour: str
) -> None:
    cluster = redis_cluster_factory(primaries=3, replicas=1, node_timeout_ms=1000)
    outage = Outage()
    expected: dict[str, int] = {}
    facade: type[QueryCache] | type[AsyncQueryCache] = QueryCache if flavour == "sync" else AsyncQueryCache
    cache = facade(config_for(cluster, prefix, "BOTH", "WRITE_BACK"))
    reader = facade(config_for(cluster, prefix, "L2_REDIS", "WRITE_THROUGH"))
    blocking = asyncio.to_thread  # cluster administration never blocks the async caches' loop

    async def call(fn: Callable[[], Any]) -> Any:
        try:
            return await settle(fn())
        except Exception:
            outage.caller_exceptions += 1
            return None

    try:
        for i in range(KEYS):
            await call(lambda i=i: cache.set(f"k{i}", i, ttl=300))
            expected[f"k{i}"] = i
        assert await settle(cache.flush(timeout=10)) == 0
        await blocking(wait_replicated, cluster)
        primary, probe = await blocking(victim_and_probe, cluster, prefix, cache)

        killed_at = time.monotonic()
        await blocking(cluster.kill_primary, primary)
        round_ = 0
        while True:
            round_ += 1
            for i in range(0, KEYS, 7):  # keep writing during the outage: write-back queues them
                if f"k{i}" == probe:  # the probe keeps the value the replica holds
                    continue
                await call(lambda i=i: cache.set(f"k{i}", i + 1000 * round_, ttl=300))
                expected[f"k{i}"] = i + 1000 * round_
            outage.reads_during_outage += 1
            if await call(lambda: reader.get(probe)) == expected[probe]:
                outage.seconds_to_serve_again = time.monotonic() - killed_at
                break
            assert time.monotonic() - killed_at < 60, "L2 did not serve again within 60 s"
            await asyncio.sleep(0.05)
        await blocking(cluster.wait_for_promotion, primary)
        assert await settle(cache.flush(timeout=30)) == 0
        outage.l2_errors = sum(cache.stats()["errors"].values()) + sum(reader.stats()["errors"].values())
    finally:
        await settle(cache.close(timeout=10))
        await settle(reader.close())
    outage.lost_writes = await blocking(lost_writes, cluster, prefix, cache, expected)
    report(flavour, outage)
    assert outage.caller_exceptions == 0
    assert outage.lost_writes == 0
    assert outage.l2_errors > 0  # the crash was seen, and survived
