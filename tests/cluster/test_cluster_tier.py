"""What only a cluster shows: configuration, slots spread over primaries, whole-cluster scans, startup while down."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.retry import Retry

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.errors import BackendError, ConfigError
from qcache.l2 import AsyncRedisClusterTier, AsyncRedisTier, RedisClusterTier, RedisTier, escape_glob
from qcache.l2.cluster import ClusterSettings, async_tier_from_config, sync_tier_from_config
from qcache.ops.backup import create_backup, restore_backup
from qcache.ops.redis_client import sync_client
from qcache.testing import ClusterEndpoint


def cluster_config(endpoint: ClusterEndpoint, prefix: str, **settings: Any) -> CacheConfig:
    values: dict[str, Any] = {
        "REDIS_CLUSTER_ENABLED": "true",
        "REDIS_HOST": endpoint.host,
        "REDIS_PORT": endpoint.port,
        "CACHE_KEY_PREFIX": prefix,
        "CACHE_LEVEL": "L2_REDIS",
        "CACHE_PROJECT_ISOLATION": "true",
        "REDIS_SOCKET_TIMEOUT": 1.0,
        "REDIS_CONNECTION_TIMEOUT": 1.0,
        # These tests are about where keys go, not deadlines (test_cluster_deadline.py): a cold
        # cluster client's discovery (CLUSTER SLOTS, COMMAND, a connection per node) costs some
        # 45 ms of CPU on an idle 2-core machine, and can outlast the default 250 ms on a busy one.
        "CACHE_L2_TIMEOUT_MS": 5000,
    }
    values.update(settings)
    return CacheConfig.from_profile("development", **values)


def keys_per_primary(endpoint: ClusterEndpoint, pattern: str) -> dict[str, int]:
    """How many keys matching ``pattern`` each primary holds (one SCAN per node)."""
    client = endpoint.client()
    try:
        return {
            node.name: sum(1 for _ in client.scan_iter(match=pattern, count=500, target_nodes=node))
            for node in client.get_primaries()
        }
    finally:
        client.close()


def test_the_setting_chooses_the_cluster_tier(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    on = cluster_config(redis_cluster, prefix)
    off = cluster_config(redis_cluster, prefix, REDIS_CLUSTER_ENABLED="false")
    assert type(sync_tier_from_config(on, namespace="n:")) is RedisClusterTier
    assert type(async_tier_from_config(on, namespace="n:")) is AsyncRedisClusterTier
    assert type(sync_tier_from_config(off, namespace="n:")) is RedisTier
    assert type(async_tier_from_config(off, namespace="n:")) is AsyncRedisTier


def test_seed_nodes_come_from_the_node_list_then_the_url_then_host_and_port() -> None:
    base = CacheConfig.from_profile("development", REDIS_CLUSTER_ENABLED="true", REDIS_HOST="h", REDIS_PORT=7000)
    assert ClusterSettings.from_config(base).seeds == (("h", 7000),)
    url_config = CacheConfig.from_profile(
        "development", REDIS_CLUSTER_ENABLED="true", REDIS_URL="redis://:pw@u:7001/0"
    )
    settings = ClusterSettings.from_config(url_config)
    assert settings.seeds == (("u", 7001),)
    assert settings.client_kwargs(Retry)["password"] == "pw"
    listed = CacheConfig.from_profile(
        "development", REDIS_CLUSTER_ENABLED="true", REDIS_CLUSTER_NODES="a:7000, b:7001,[::1]:7002"
    )
    assert ClusterSettings.from_config(listed).seeds == (("a", 7000), ("b", 7001), ("::1", 7002))


def test_a_bad_node_list_is_a_config_error() -> None:
    config = CacheConfig.from_env(None, {"REDIS_CLUSTER_ENABLED": "true", "REDIS_CLUSTER_NODES": "a:7000,b"})
    with pytest.raises(ConfigError, match="REDIS_CLUSTER_NODES"):
        QueryCache(config)


def test_keys_spread_over_every_primary_and_clear_reaches_them_all(
    redis_cluster: ClusterEndpoint, prefix: str
) -> None:
    pattern = escape_glob(prefix + ":") + "*"
    with QueryCache(cluster_config(redis_cluster, prefix)) as cache:
        cache.set_many({f"k{i}": i for i in range(200)}, ttl=60)
        tenant = cache.for_project("acme")
        tenant.set_many({f"t{i}": i for i in range(50)}, ttl=60)
        spread = keys_per_primary(redis_cluster, pattern)
        assert len(spread) >= 3 and all(count > 0 for count in spread.values()), spread
        assert cache.get_many([f"k{i}" for i in range(200)]) == {f"k{i}": i for i in range(200)}
        assert cache.invalidate_pattern("k1*") == 111  # k1, k10-k19, k100-k199
        tenant.clear()
        assert tenant.get_many([f"t{i}" for i in range(50)]) == {}
        assert len(cache.get_many([f"k{i}" for i in range(200)])) == 89  # another namespace
        cache.clear()
        assert cache.get_many([f"k{i}" for i in range(200)]) == {}
    assert sum(keys_per_primary(redis_cluster, pattern).values()) == 0


def test_tags_on_a_cluster_reach_entries_on_every_primary(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    with QueryCache(cluster_config(redis_cluster, prefix)) as cache:
        for i in range(60):
            cache.set(f"k{i}", i, ttl=60, tags=("even",) if i % 2 == 0 else ("odd",))
        assert cache.invalidate_tags("even") == 30
        assert cache.get_many([f"k{i}" for i in range(60)]) == {f"k{i}": i for i in range(1, 60, 2)}
        cache.clear()


def test_server_info_sums_the_primaries(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    tier = sync_tier_from_config(cluster_config(redis_cluster, prefix), namespace=prefix + ":")
    try:
        info = tier.server_info()
        assert info.mode == "cluster"
        client = redis_cluster.client()
        try:
            per_node = [client.info("memory", target_nodes=node) for node in client.get_primaries()]
        finally:
            client.close()
        single = max(node["used_memory"] for node in per_node)
        assert info.used_memory > single  # more than any one primary: the sum
        assert tier.warm_up() >= 3
    finally:
        tier.close()


def test_a_cluster_down_at_startup_is_a_miss_then_serves_once_it_is_up(
    redis_cluster_factory: Any, prefix: str
) -> None:
    cluster = redis_cluster_factory(primaries=3)
    nodes = ",".join(cluster.endpoint.nodes)
    for server in cluster.servers:
        server.stop()
    config = cluster_config(cluster.endpoint, prefix, REDIS_CLUSTER_NODES=nodes)
    tier = sync_tier_from_config(config, namespace=prefix + ":")
    try:
        with pytest.raises(BackendError):
            tier.get(prefix + ":k")
        with QueryCache(config) as cache:
            cache.set("k", 1, ttl=60)  # logged and queued for L2 (see tests/cache/test_lost_invalidations.py)
            assert cache.get("k") == 1  # served from the queue meanwhile; never an exception
    finally:
        tier.close()
    for server in cluster.servers:
        server.start()
    cluster.wait_for_promotion(cluster.servers[0], timeout=30)
    with QueryCache(config) as cache:
        cache.set("k", 1, ttl=60)
        assert cache.get("k") == 1
        cache.clear()


def test_the_async_cache_reaches_every_primary(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    async def run() -> None:
        async with AsyncQueryCache(cluster_config(redis_cluster, prefix)) as cache:
            await cache.set_many({f"k{i}": i for i in range(120)}, ttl=60)
            assert all(c > 0 for c in keys_per_primary(redis_cluster, escape_glob(prefix + ":") + "*").values())
            assert len(await cache.get_many([f"k{i}" for i in range(120)])) == 120
            await cache.clear()
            assert await cache.get_many([f"k{i}" for i in range(120)]) == {}

    asyncio.run(run())


def test_backup_and_restore_reach_every_primary(
    redis_cluster: ClusterEndpoint, prefix: str, tmp_path: Path
) -> None:
    config = cluster_config(redis_cluster, prefix)
    with QueryCache(config) as cache:
        cache.set_many({f"k{i}": i for i in range(150)}, ttl=300)
        client = sync_client(config)
        try:
            manifest = create_backup(client, tmp_path / "snap", prefix=prefix)
            assert manifest.entries == 150
            cache.clear()
            assert cache.get_many([f"k{i}" for i in range(150)]) == {}
            report = restore_backup(client, tmp_path / "snap")
            assert report.restored == 150
            assert cache.get_many([f"k{i}" for i in range(150)]) == {f"k{i}": i for i in range(150)}
            spread = keys_per_primary(redis_cluster, escape_glob(prefix + ":") + "*")
            assert all(count > 0 for count in spread.values()), spread
            cache.clear()
        finally:
            client.close()


def test_the_breaker_settings_apply_to_the_cluster_tiers(redis_cluster: ClusterEndpoint, prefix: str) -> None:
    """CACHE_BREAKER_THRESHOLD and CACHE_BREAKER_COOLDOWN_MS, as for a standalone server (no node answers here)."""
    from qcache.errors import CircuitOpenError

    config = cluster_config(redis_cluster, prefix, REDIS_CLUSTER_NODES="127.0.0.1:1", CACHE_BREAKER_THRESHOLD=2,
                            CACHE_BREAKER_COOLDOWN_MS=60_000)

    def settle(result: Any) -> Any:
        return asyncio.run(result) if asyncio.iscoroutine(result) else result

    for tier in (sync_tier_from_config(config, namespace=f"{prefix}:"),
                 async_tier_from_config(config, namespace=f"{prefix}:")):
        try:
            for _ in range(2):
                with pytest.raises(BackendError) as caught:
                    settle(tier.get(f"{prefix}:k"))
                assert not isinstance(caught.value, CircuitOpenError)
            with pytest.raises(CircuitOpenError):  # open after two failures, not the default five
                settle(tier.get(f"{prefix}:k"))
        finally:
            settle(tier.close())
