"""The L2 on a Redis Cluster beside a standalone Redis, in the same run.

Both caches run at level L2_REDIS (every read goes to Redis) on the run's
standalone server and on a local 3-primary cluster (``redis_cluster``), with
the same values. Each benchmark here is a pair measured in alternating
rounds (:func:`bench_support.record_ratio`), so the ratio in ``extra_info``
(cluster over standalone) is not bent by load on the shared machine:

* ``get_many`` of 100 keys (target: at most 1.5x standalone);
* one L2 hit (``get``), reported;
* ``set_many`` of 100 keys, reported;
* the hash-tag trade-off at the tier: ``get_many`` of 100 keys spread over
  slots against 100 keys sharing one hash tag (one slot, one MGET).

The ratios are printed and stored for the report; ``results/`` and the
capacity model in ``docs/cluster.md`` quote them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bench_support import make_keys, per_op, record_ratio, small_value, unique_prefix
from conftest import cache_config

from qcache import QueryCache
from qcache.l2 import RedisClusterTier, escape_glob
from qcache.testing import ClusterEndpoint, RedisEndpoint

TTL = 600.0
GROUP = "cluster vs standalone: ratio in extra_info (cluster over standalone)"


@pytest.fixture
def pair(redis_endpoint: RedisEndpoint, redis_cluster: ClusterEndpoint) -> Iterator[tuple[QueryCache, QueryCache]]:
    """(cluster cache, standalone cache), both L2 only, closed and cleaned after the test."""
    caches: list[QueryCache] = []
    for cluster in (True, False):
        prefix = unique_prefix()
        config = cache_config(redis_endpoint, prefix, "L2_REDIS", "WRITE_THROUGH", CACHE_BATCH_SIZE=1000)
        if cluster:
            config = cache_config(redis_endpoint, prefix, "L2_REDIS", "WRITE_THROUGH", CACHE_BATCH_SIZE=1000,
                                  REDIS_URL=redis_cluster.url, REDIS_CLUSTER_ENABLED=True)
        caches.append(QueryCache(config))
    try:
        yield caches[0], caches[1]
    finally:
        for cache in caches:
            cache.clear()
            cache.close()


def rounds_of(fn: Callable[[], Any], ops: int) -> Callable[[], float]:
    """One round: ``fn`` ``ops`` times; its time per call in ns."""
    return per_op(lambda: [fn() for _ in range(ops)], ops)


def test_bench_cluster_get_many_100(benchmark: Any, pair: tuple[QueryCache, QueryCache], smoke: bool) -> None:
    cluster, standalone = pair
    keys = make_keys(100, "cl")
    for cache in pair:
        cache.set_many(dict.fromkeys(keys, small_value()), ttl=TTL)
    assert cluster.get_many(keys) == standalone.get_many(keys)
    benchmark.group = GROUP
    benchmark.extra_info.update(target="<= 1.5x")
    record_ratio(benchmark, rounds_of(lambda: cluster.get_many(keys), 20),
                 rounds_of(lambda: standalone.get_many(keys), 20), smoke)


def test_bench_cluster_l2_hit(benchmark: Any, pair: tuple[QueryCache, QueryCache], smoke: bool) -> None:
    cluster, standalone = pair
    for cache in pair:
        cache.set("hit", small_value(), ttl=TTL)
    assert cluster.get("hit") == standalone.get("hit") == small_value()
    benchmark.group = GROUP
    record_ratio(benchmark, rounds_of(lambda: cluster.get("hit"), 200),
                 rounds_of(lambda: standalone.get("hit"), 200), smoke)


def test_bench_cluster_set_many_100(benchmark: Any, pair: tuple[QueryCache, QueryCache], smoke: bool) -> None:
    cluster, standalone = pair
    items = dict.fromkeys(make_keys(100, "cl"), small_value())
    benchmark.group = GROUP
    record_ratio(benchmark, rounds_of(lambda: cluster.set_many(items, ttl=TTL), 20),
                 rounds_of(lambda: standalone.set_many(items, ttl=TTL), 20), smoke)
    assert len(cluster.get_many(list(items))) == 100


def test_bench_cluster_hash_tag_trade_off(benchmark: Any, redis_cluster: ClusterEndpoint, smoke: bool) -> None:
    """Tier ``get_many`` of 100 keys spread over slots, over the same read of 100 keys in one slot."""
    namespace = f"{unique_prefix()}:"
    tier = RedisClusterTier.from_client(redis_cluster.client(), namespace=namespace, batch_size=1000,
                                        owns_client=True)
    spread = [f"{namespace}k{i}" for i in range(100)]  # hashed whole: slots all over
    tagged = [f"{namespace}{{tag}}:k{i}" for i in range(100)]  # Redis hashes only "tag": one slot
    try:
        data = b"x" * 300
        tier.set_many([(k, data) for k in spread + tagged], ttl=TTL)
        client = tier.client.cluster()
        assert len({client.keyslot(k) for k in tagged}) == 1
        assert len({client.keyslot(k) for k in spread}) > 50
        benchmark.group = GROUP
        record_ratio(benchmark, rounds_of(lambda: tier.get_many(spread), 20),
                     rounds_of(lambda: tier.get_many(tagged), 20), smoke)
    finally:
        tier.delete_pattern(escape_glob(namespace) + "*")
        tier.close()
