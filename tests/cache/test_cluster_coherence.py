"""Cross-process L1 coherence on a Redis Cluster: one invalidation connection per primary, following failovers.

* Two processes on the shared cluster: B (``coherence_peer.py``) changes keys
  spread over every primary; A's L1 returns the new state within the bound and
  never the old value afterwards (propagation printed).
* Another client's raw writes and deletes on every primary drop A's copies.
* A primary killed: A's L1 is flushed at the loss, the supervisor finds the
  promoted replica and listens there, and a change made on it afterwards
  reaches A's L1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from qcache.testing import ClusterEndpoint, LocalCluster

from .conftest import MakeCache, build_config
from .support import await_until
from .test_coherence import BOUND, TYPE, Peer, hold, percentile, watch

REDIS_BACKENDS = ("cluster",)
#: Rounds per operation in the two-process test (fewer than standalone: the rules are the same code).
ROUNDS = 6


@pytest.fixture
def cluster_peer(redis_cluster: ClusterEndpoint, prefix: str, flavour: str) -> Iterator[Peer]:
    process = Peer(redis_cluster.url, prefix, flavour, "cluster")
    try:
        yield process
    finally:
        process.close()


def primaries_of(client: Any, skeys: list[str]) -> set[str]:
    return {client.get_node_from_key(skey).name for skey in skeys}


async def test_changes_in_another_process_reach_this_l1_from_every_primary(
    make_cache: MakeCache, cluster_peer: Peer, redis_cluster: ClusterEndpoint, flavour: str
) -> None:
    cache = await make_cache("BOTH")
    assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    delays: dict[str, list[float]] = {}
    skeys: list[str] = []
    for op in ("set", "delete", "pattern"):
        for i in range(ROUNDS):
            key = f"{op}{i}"
            skeys.append(cache.storage_key(key, TYPE))
            cluster_peer.do(f"set {key} old")
            await hold(cache, key, "old")
            command, new = {
                "set": (f"set {key} new", "new"),
                "delete": (f"delete {key}", None),
                "pattern": (f"pattern {op}{i}*", None),
            }[op]
            cluster_peer.send(command)
            first_new, after = await watch(cache, key, new, "old")
            acked = cluster_peer.acked_at()
            assert "old" not in after, f"{op}: A served the old value again after the new state"
            delays.setdefault(op, []).append(max(0.0, first_new - acked))
    client = redis_cluster.client()
    try:
        assert len(primaries_of(client, skeys)) == len(client.get_primaries())  # every primary reported
    finally:
        client.close()
    for op, samples in delays.items():
        p50, p99 = percentile(samples, 50) * 1000, percentile(samples, 99) * 1000
        print(f"\n[coherence] cluster {flavour} {op}: propagation p50 {p50:.2f} ms, p99 {p99:.2f} ms "
              f"over {len(samples)}")
        assert max(samples) < BOUND
    stats = cache.raw.stats()["l1_coherence"]
    assert stats["live"] and stats["evicted"] >= 3 * ROUNDS


async def test_raw_writes_and_deletes_on_every_primary_drop_the_copies(
    make_cache: MakeCache, raw_redis: Any
) -> None:
    cache = await make_cache("BOTH")
    assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    l1 = cache.core.l1
    assert l1 is not None
    keys = [f"k{i}" for i in range(12)]
    skeys = [cache.storage_key(k, TYPE) for k in keys]
    assert len(primaries_of(raw_redis, skeys)) == len(raw_redis.get_primaries())
    for key in keys:
        await cache.set(key, "v", ttl=60, cache_type=TYPE)
    for i, skey in enumerate(skeys):
        assert l1.peek(skey) is not None
        if i % 2:
            raw_redis.set(skey, b"not a record", px=60_000)
        else:
            raw_redis.delete(skey)
    for skey in skeys:
        assert await await_until(lambda skey=skey: l1.peek(skey) is None, timeout=2), skey  # type: ignore[misc]
    for key in keys:
        assert await cache.get(key, cache_type=TYPE) is None


@pytest.mark.timeout(90)
async def test_after_a_failover_the_promoted_primary_reports_too(
    make_cache: MakeCache, redis_cluster_factory: Callable[..., LocalCluster], prefix: str
) -> None:
    cluster = redis_cluster_factory(primaries=3, replicas=1, node_timeout_ms=500)
    endpoint = cluster.endpoint
    config = build_config(endpoint.url, prefix, "BOTH", "WRITE_THROUGH", REDIS_CLUSTER_ENABLED="true",
                          REDIS_CLUSTER_NODES=",".join(endpoint.nodes), REDIS_SOCKET_TIMEOUT=1.0,
                          REDIS_CONNECTION_TIMEOUT=1.0, CACHE_BREAKER_COOLDOWN_MS=200)
    cache = await make_cache(config=config)
    l1 = cache.core.l1
    assert l1 is not None
    coherence = cache.raw.stats
    assert await await_until(lambda: coherence()["l1_coherence"]["live"], timeout=5)
    admin = RedisCluster.from_url(endpoint.url, require_full_coverage=False)
    try:
        await cache.set("k", "before", ttl=120, cache_type=TYPE)
        skey = cache.storage_key("k", TYPE)
        assert l1.peek(skey) is not None
        victim_port = admin.get_node_from_key(skey).port
        victim = next(s for s in cluster.servers if s.port == victim_port)
        admin.execute_command("WAIT", 1, 1000, target_nodes=admin.get_node_from_key(skey))
        resets = coherence()["l1_coherence"]["resets"]
        cluster.kill_primary(victim)
        killed_at = time.monotonic()
        # The loss is seen at once (the connection breaks): L1 is flushed, the copy is gone.
        assert await await_until(lambda: l1.peek(skey) is None, timeout=3)
        assert coherence()["l1_coherence"]["resets"] > resets
        cluster.wait_for_promotion(victim, timeout=30)
        # The supervisor refreshes the topology and listens on the promoted replica.
        assert await await_until(lambda: coherence()["l1_coherence"]["live"], timeout=10)
        live_after = time.monotonic() - killed_at
        admin.nodes_manager.initialize()
        assert admin.get_node_from_key(skey).port != victim_port
        served = None
        for _ in range(200):  # L2 serves the promoted primary's keys again (the breaker's probe)
            served = await cache.get("k", cache_type=TYPE)
            if served == "before" and l1.peek(skey) is not None:
                break
            await asyncio.sleep(0.05)
        assert served == "before" and l1.peek(skey) is not None
        admin.set(skey, b"changed on the promoted primary", px=60_000)
        assert await await_until(lambda: l1.peek(skey) is None, timeout=2)
        print(f"\n[coherence] cluster failover: listening on every primary again {live_after:.2f} s after the kill")
    finally:
        admin.close()

