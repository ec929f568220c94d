"""Batch sizes 1, 10, 100, 500 and 1000 for ``get_many`` and ``set_many`` against Redis.

The cache runs at level L2_REDIS so every key goes to Redis and the batch
path (chunked MGET, pipelined SETs, decoding) is what is measured. Beside
each size sit the raw redis-py equivalents on the same number of keys: one
MGET of the entries the cache wrote, each then decoded exactly as the cache
decodes it (``unpack_record`` and the cache's codec), and a
non-transactional pipeline of SETs with an expiry.

Every benchmark runs on the standalone server and on a local 3-primary
Redis Cluster (conftest's ``topology``), in the same group, so each batch
size shows cluster beside standalone. On the cluster the baselines are what
a user there writes by hand: redis-py's ``RedisCluster.mget_nonatomic`` (one
MGET per slot) and its cluster pipeline; the report pairs each cluster
benchmark with its standalone twin.

Target (reported here, per batch size; the gate checks it on
``test_cache_bench.py``'s pair): ``get_many`` of 100 keys costs at most 1.3x
the raw MGET of 100 keys plus the same decoding, so the ratio of the two
``get_many`` benchmarks is the facade's own overhead.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from bench_support import Topology, make_keys, small_value

from qcache.cache.record import unpack_record
from qcache.codec import Codec

BATCH_SIZES = [1, 10, 100, 500, 1000]
TTL = 600.0


def group(op: str, size: int) -> str:
    return f"batch: {op} of {size} key{'s' if size > 1 else ''}"


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_get_many_querycache(benchmark: Any, topology: Topology, size: int) -> None:
    cache = topology.make_cache("L2_REDIS", CACHE_BATCH_SIZE=max(BATCH_SIZES))
    keys = make_keys(size, "batch")
    value = small_value()
    cache.set_many(dict.fromkeys(keys, value), ttl=TTL)
    benchmark.group = group("get_many", size)
    benchmark.extra_info.update(ops_per_round=1, keys=size, cache_op="get_many")
    found = benchmark(cache.get_many, keys)
    assert len(found) == size and found[keys[-1]] == value


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_get_many_raw_mget_decode(benchmark: Any, topology: Topology, size: int) -> None:
    """Baseline: one MGET of the cache's own entries (one per slot on a cluster), then the decoding."""
    cache = topology.make_cache("L2_REDIS", CACHE_BATCH_SIZE=max(BATCH_SIZES))
    keys = make_keys(size, "batch")
    cache.set_many(dict.fromkeys(keys, small_value()), ttl=TTL)
    core = cache._core
    spec = core.spec(None)
    skeys = [core.storage_key(cache.namespace, spec, key)[0] for key in keys]
    codec: Codec = core.codec
    mget = topology.mget

    def read() -> list[Any]:
        records = [unpack_record(raw) for raw in mget(skeys)]
        return [codec.decode(r.payload, key=r.binding(skey)) for skey, r in zip(skeys, records)]

    benchmark.group = group("get_many", size)
    benchmark.extra_info.update(ops_per_round=1, keys=size)
    values = benchmark(read)
    assert len(values) == size and values[-1] == small_value()


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_set_many_querycache(benchmark: Any, topology: Topology, size: int) -> None:
    cache = topology.make_cache("L2_REDIS", CACHE_BATCH_SIZE=max(BATCH_SIZES))
    items = dict.fromkeys(make_keys(size, "batch"), small_value())
    benchmark.group = group("set_many", size)
    benchmark.extra_info.update(ops_per_round=1, keys=size, cache_op="set_many")
    benchmark(cache.set_many, items, ttl=TTL)
    assert len(cache.get_many(list(items))) == size


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_set_many_raw_pipeline(benchmark: Any, topology: Topology, size: int) -> None:
    """Baseline: ``msgpack.packb`` per value and a non-transactional pipeline of SET ... PX (per node on a cluster)."""
    keys = [topology.key_prefix + key for key in make_keys(size, "batch")]
    value = small_value()
    px = int(TTL * 1000)
    client = topology.client

    def write() -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, msgpack.packb(value), px=px)
        pipe.execute()

    benchmark.group = group("set_many", size)
    benchmark.extra_info.update(ops_per_round=1, keys=size)
    benchmark(write)
    assert client.exists(*keys) == size
