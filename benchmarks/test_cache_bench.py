"""Speed and memory of the cache facade, as ratios against baselines measured in the same run.

Two kinds of tests per target:

* ``test_bench_*``: pytest-benchmark figures, the facade and its baseline side
  by side in one group (``--benchmark-group-by=group`` prints them together);
* ``test_bench_interleaved_*``: for the two Redis-path targets, one
  benchmark that runs both sides in interleaved rounds and records the ratio
  in ``extra_info`` (what the gate checks, see :func:`record_interleaved`);
* ``test_ratio_*``: one plain test per target that runs both sides in
  interleaved rounds (``time.perf_counter_ns``, the order alternating so drift
  hits both alike), takes the median per side, prints the ratio and asserts it
  against the target with a modest tolerance.

Targets: an L1 hit through ``QueryCache.get`` (level BOTH, metrics on) costs
at most a ``cachetools.TTLCache.get``; an L2 hit at most 1.25x a raw redis-py
GET of the same bytes plus the same decoding; ``get_many`` of 100 keys from L2
at most 1.3x a raw MGET plus decoding; a WRITE_BACK ``set`` at least 10x as
fast as a WRITE_THROUGH one; 100,000 L1 entries of 1 KB at most 1.5x the bytes
of their values and keys.

Caches, Redis and the run mode come from ``conftest.py`` (``make_cache``,
``redis_endpoint``): every key written lives under a prefix unique to the
cache and is deleted afterwards. The ratio tests are marked ``timing``: they
run when benchmarks measure (``--benchmark-enable``), not in the plain test run.
"""

from __future__ import annotations

import gc
import itertools
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from bench_support import GATE_ROUNDS, MakeCache, alternating_rounds, record_ratio
from cachetools import TTLCache

from qcache import QueryCache
from qcache.cache.record import unpack_record
from qcache.codec import Codec
from qcache.testing import RedisEndpoint

pytestmark = pytest.mark.redis

#: Interleaved rounds per ratio; the median of each side is compared.
ROUNDS = GATE_ROUNDS
#: Relative slack on each target: the machine is shared, medians still wobble a little.
TOLERANCE = 0.10
#: Entries of the L1 footprint measurement (the target's figure); a smoke run uses fewer.
FOOTPRINT_ENTRIES = 100_000
SMOKE_FOOTPRINT_ENTRIES = 10_000

VALUE = {"id": 42, "title": "a cached search result", "tags": ["a", "b", "c"], "score": 0.87}
MANY = 100
Pair = tuple[Callable[[], Any], Callable[[], Any]]


@pytest.fixture(scope="module")
def client(redis_endpoint: RedisEndpoint) -> Iterator[redis.Redis]:
    """The baselines' own client (redis-py picks hiredis when installed, as the tier does)."""
    connection = redis.Redis(**redis_endpoint.client_kwargs())
    yield connection
    connection.close()


def per_call_ns(fn: Callable[[], Any], number: int) -> float:
    """Mean nanoseconds per call of ``fn`` over ``number`` back-to-back calls."""
    started = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - started) / number


def interleaved_rounds(candidate: Callable[[], Any], baseline: Callable[[], Any], number: int,
                       rounds: int = ROUNDS) -> tuple[list[float], list[float]]:
    """Ns per call of each side in ``rounds`` alternating rounds of ``number`` calls."""
    return alternating_rounds(lambda: per_call_ns(candidate, number), lambda: per_call_ns(baseline, number), rounds)


def interleaved(candidate: Callable[[], Any], baseline: Callable[[], Any], number: int) -> tuple[float, float]:
    """Median ns per call of each side over :data:`ROUNDS` alternating rounds."""
    ours, theirs = interleaved_rounds(candidate, baseline, number)
    return statistics.median(ours), statistics.median(theirs)


def record_interleaved(benchmark: Any, top: Callable[[], Any], bottom: Callable[[], Any], number: int,
                       smoke: bool) -> None:
    """:func:`bench_support.record_ratio` of ``top`` over ``bottom``, each round ``number`` calls."""
    record_ratio(benchmark, lambda: per_call_ns(top, number), lambda: per_call_ns(bottom, number), smoke)
    benchmark.extra_info["ops_per_round"] = 2 * number * benchmark.extra_info["pairs"]


def report(what: str, ours: float, theirs: float, ratio: float, target: str) -> None:
    """Print one figure (both sides per call, their ratio) into the run log."""
    print(
        f"\n[bench] {what}: {ours / 1000:.2f} us vs {theirs / 1000:.2f} us,"
        f" ratio {ratio:.2f}x ({target})"
    )


# -- fixtures for each comparison ----------------------------------------------------------------


@pytest.fixture
def l1_pair(make_cache: MakeCache) -> Pair:
    """An L1 hit through the facade (BOTH, metrics on) and the same hit on a cachetools TTLCache."""
    cache = make_cache("BOTH", CACHE_METRICS_ENABLED=True)
    cache.set("hot", VALUE, ttl=3600)
    ttl_cache: TTLCache[str, Any] = TTLCache(maxsize=20_000, ttl=3600)
    ttl_cache["hot"] = VALUE
    assert cache.get("hot") == VALUE and ttl_cache.get("hot") == VALUE
    get, ttl_get = cache.get, ttl_cache.get
    return (lambda: get("hot")), (lambda: ttl_get("hot"))


@pytest.fixture
def l2_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """An L2 hit through the facade (level L2_REDIS) and a raw GET of the same bytes, decoded the same way."""
    cache = make_cache("L2_REDIS")
    cache.set("warm", VALUE, ttl=3600)
    skey = cache._core.storage_key(cache.namespace, cache._core.spec(None), "warm")[0]
    codec: Codec = cache._core.codec

    def raw_get() -> Any:
        record = unpack_record(client.get(skey))
        return codec.decode(record.payload, key=record.binding(skey))

    assert cache.get("warm") == VALUE and raw_get() == VALUE
    get = cache.get
    return (lambda: get("warm")), raw_get


@pytest.fixture
def l2_tier_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """The cache's own L2 tier (pool, timeouts, breaker) plus the same decoding, and the raw baseline.

    Not a target: it splits the L2-hit ratio into the tier's share and the facade's.
    """
    cache = make_cache("L2_REDIS")
    cache.set("warm", VALUE, ttl=3600)
    skey = cache._core.storage_key(cache.namespace, cache._core.spec(None), "warm")[0]
    codec: Codec = cache._core.codec
    tier = cache._shared.tier
    assert tier is not None

    def tier_get() -> Any:
        record = unpack_record(tier.get(skey))
        return codec.decode(record.payload, key=record.binding(skey))

    def raw_get() -> Any:
        record = unpack_record(client.get(skey))
        return codec.decode(record.payload, key=record.binding(skey))

    assert tier_get() == VALUE
    return tier_get, raw_get


@pytest.fixture
def many_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """``get_many`` of 100 keys from L2 and a raw MGET of them, decoded the same way."""
    cache = make_cache("L2_REDIS")
    keys = [f"item:{i}" for i in range(MANY)]
    cache.set_many({key: {**VALUE, "id": i} for i, key in enumerate(keys)}, ttl=3600)
    core = cache._core
    spec = core.spec(None)
    skeys = [core.storage_key(cache.namespace, spec, key)[0] for key in keys]
    codec: Codec = core.codec

    def raw_mget() -> dict[str, Any]:
        out = {}
        for key, skey, raw in zip(keys, skeys, client.mget(skeys)):
            if raw is not None:
                record = unpack_record(raw)
                out[key] = codec.decode(record.payload, key=record.binding(skey))
        return out

    assert cache.get_many(keys) == raw_mget() and len(raw_mget()) == MANY
    get_many = cache.get_many
    return (lambda: get_many(keys)), raw_mget


@pytest.fixture
def set_pair(make_cache: MakeCache) -> Pair:
    """A WRITE_BACK set and a WRITE_THROUGH set (level BOTH), each over a rotating set of keys."""
    back = make_cache("BOTH", "WRITE_BACK", MEMORY_CACHE_MAX_SIZE=20_000)
    through = make_cache("BOTH", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=20_000)
    back_keys = itertools.cycle([f"wb:{i}" for i in range(10_000)])
    through_keys = itertools.cycle([f"wt:{i}" for i in range(10_000)])
    back_set, through_set = back.set, through.set
    return (lambda: back_set(next(back_keys), VALUE, 3600)), (lambda: through_set(next(through_keys), VALUE, 3600))


@pytest.fixture
def back_vs_l1_pair(make_cache: MakeCache) -> Pair:
    """A WRITE_BACK set (level BOTH) and a set on an L1-only cache, each over a rotating set of keys.

    Both sides are in-process work, so their ratio -- what write-back adds to
    an L1 write (encoding, the pending queue, the flusher's share of the
    GIL) -- does not move with Redis's round-trip time the way the
    write-through comparison does.
    """
    back = make_cache("BOTH", "WRITE_BACK", MEMORY_CACHE_MAX_SIZE=20_000)
    local = make_cache("L1_MEMORY", MEMORY_CACHE_MAX_SIZE=20_000)
    back_keys = itertools.cycle([f"wb:{i}" for i in range(10_000)])
    local_keys = itertools.cycle([f"l1:{i}" for i in range(10_000)])
    back_set, local_set = back.set, local.set
    return (lambda: back_set(next(back_keys), VALUE, 3600)), (lambda: local_set(next(local_keys), VALUE, 3600))


# -- pytest-benchmark figures ----------------------------------------------------------------------


@pytest.mark.benchmark(group="facade target: L1 hit, QueryCache.get (BOTH, metrics on) vs TTLCache.get")
def test_bench_l1_hit_query_cache(benchmark: Any, l1_pair: Pair) -> None:
    assert benchmark(l1_pair[0]) == VALUE


@pytest.mark.benchmark(group="facade target: L1 hit, QueryCache.get (BOTH, metrics on) vs TTLCache.get")
def test_bench_l1_hit_ttlcache_baseline(benchmark: Any, l1_pair: Pair) -> None:
    assert benchmark(l1_pair[1]) == VALUE


@pytest.mark.benchmark(group="facade target: L2 hit, QueryCache.get (L2_REDIS) vs raw GET + same decoding")
def test_bench_l2_hit_query_cache(benchmark: Any, l2_pair: Pair) -> None:
    assert benchmark(l2_pair[0]) == VALUE


@pytest.mark.benchmark(group="facade target: L2 hit, QueryCache.get (L2_REDIS) vs raw GET + same decoding")
def test_bench_l2_hit_raw_get_baseline(benchmark: Any, l2_pair: Pair) -> None:
    assert benchmark(l2_pair[1]) == VALUE


@pytest.mark.benchmark(group="facade target: get_many of 100 keys from L2 vs raw MGET + same decoding")
def test_bench_get_many_query_cache(benchmark: Any, many_pair: Pair) -> None:
    assert len(benchmark(many_pair[0])) == MANY


@pytest.mark.benchmark(group="facade target: get_many of 100 keys from L2 vs raw MGET + same decoding")
def test_bench_get_many_raw_mget_baseline(benchmark: Any, many_pair: Pair) -> None:
    assert len(benchmark(many_pair[1])) == MANY


@pytest.mark.benchmark(group="facade target: set, WRITE_BACK vs WRITE_THROUGH (level BOTH)")
def test_bench_set_write_back(benchmark: Any, set_pair: Pair) -> None:
    benchmark(set_pair[0])


@pytest.mark.benchmark(group="facade target: set, WRITE_BACK vs WRITE_THROUGH (level BOTH)")
def test_bench_set_write_through_baseline(benchmark: Any, set_pair: Pair) -> None:
    benchmark(set_pair[1])


# -- the gate's figures for the Redis path: interleaved, as benchmarks ------------------------------


@pytest.mark.benchmark(group="facade gate: interleaved ratios (median over adjacent round pairs)")
def test_bench_interleaved_l1_hit_vs_ttlcache(benchmark: Any, l1_pair: Pair, smoke: bool, gc_paused: None) -> None:
    """QueryCache.get from L1 over TTLCache.get: ``extra_info["ratio"]``, lower is better."""
    record_interleaved(benchmark, l1_pair[0], l1_pair[1], number=20_000, smoke=smoke)


@pytest.mark.benchmark(group="facade gate: interleaved ratios (median over adjacent round pairs)")
def test_bench_interleaved_get_many_vs_mget(benchmark: Any, many_pair: Pair, smoke: bool) -> None:
    """get_many(100) from L2 over MGET + the same decoding: ``extra_info["ratio"]``, lower is better."""
    record_interleaved(benchmark, many_pair[0], many_pair[1], number=30, smoke=smoke)


@pytest.mark.benchmark(group="facade gate: interleaved ratios (median over adjacent round pairs)")
def test_bench_interleaved_l2_hit_vs_raw_get(benchmark: Any, l2_pair: Pair, smoke: bool) -> None:
    """QueryCache.get from L2 over a raw GET + the same decoding: ``extra_info["ratio"]``, lower is better."""
    record_interleaved(benchmark, l2_pair[0], l2_pair[1], number=200, smoke=smoke)


@pytest.mark.benchmark(group="facade gate: interleaved ratios (median over adjacent round pairs)")
def test_bench_interleaved_write_back_speedup(benchmark: Any, set_pair: Pair, smoke: bool) -> None:
    """WRITE_THROUGH set time over WRITE_BACK set time: ``extra_info["ratio"]``, higher is better."""
    record_interleaved(benchmark, set_pair[1], set_pair[0], number=300, smoke=smoke)


@pytest.mark.benchmark(group="facade gate: interleaved ratios (median over adjacent round pairs)")
def test_bench_interleaved_write_back_vs_l1_set(benchmark: Any, back_vs_l1_pair: Pair, smoke: bool) -> None:
    """WRITE_BACK set time over an L1-only set time: ``extra_info["ratio"]``, lower is better."""
    record_interleaved(benchmark, back_vs_l1_pair[0], back_vs_l1_pair[1], number=300, smoke=smoke)


# -- ratios, asserted ------------------------------------------------------------------------------


@pytest.mark.timing
def test_ratio_l1_hit_vs_ttlcache(l1_pair: Pair) -> None:
    ours, theirs = interleaved(*l1_pair, number=20_000)
    ratio = ours / theirs
    report("L1 hit, QueryCache.get vs TTLCache.get", ours, theirs, ratio, "target <= 1.0x, stretch 0.5x")
    assert ratio <= 1.0 * (1 + TOLERANCE)


@pytest.mark.timing
def test_ratio_l2_hit_vs_raw_get(l2_pair: Pair, l2_tier_pair: Pair) -> None:
    ours, theirs = interleaved(*l2_pair, number=200)
    ratio = ours / theirs
    report("L2 hit, QueryCache.get vs GET + decode", ours, theirs, ratio, "target <= 1.25x")
    tier, raw = interleaved(*l2_tier_pair, number=200)
    report("  of which the L2 tier: tier.get vs GET, both + decode", tier, raw, tier / raw, "information")
    assert ratio <= 1.25 * (1 + TOLERANCE)


@pytest.mark.timing
def test_ratio_get_many_vs_raw_mget(many_pair: Pair) -> None:
    ours, theirs = interleaved(*many_pair, number=30)
    ratio = ours / theirs
    report("get_many(100) from L2 vs MGET + decode", ours, theirs, ratio, "target <= 1.3x")
    assert ratio <= 1.3 * (1 + TOLERANCE)


@pytest.mark.timing
def test_ratio_write_back_vs_write_through_set(set_pair: Pair) -> None:
    back, through = interleaved(*set_pair, number=300)
    speedup = through / back
    print(
        f"\n[bench] set throughput: WRITE_BACK {back / 1000:.2f} us, WRITE_THROUGH {through / 1000:.2f} us,"
        f" speed-up {speedup:.1f}x (target >= 10x)"
    )
    assert speedup >= 10 * (1 - TOLERANCE)


def test_l1_memory_of_100k_1kb_entries(make_cache: MakeCache, smoke: bool) -> None:
    """100,000 entries of 1 KB in L1 take at most 1.5x the bytes of their values and keys.

    Measured with tracemalloc from before the values exist to after they sit in
    the cache and the test dropped its own references: values, storage keys,
    entries, the index, the expiry heap and the eviction policy's bookkeeping.
    """
    count = SMOKE_FOOTPRINT_ENTRIES if smoke else FOOTPRINT_ENTRIES
    cache: QueryCache = make_cache("L1_MEMORY", MEMORY_CACHE_MAX_SIZE=count, MEMORY_CACHE_MAX_MEMORY_MB=1024)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        payload = 0
        for i in range(count):
            key = f"doc:{i:08d}"
            value = os.urandom(1024)
            payload += len(key) + len(value)
            cache.set(key, value, ttl=3600)
        del key, value
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.stats()["l1"]["entries"] == count
    ratio = held / payload
    print(f"\n[bench] L1 memory, {count:,} entries: {held / 2**20:.1f} MiB for {payload / 2**20:.1f} MiB"
          f" of keys and values, ratio {ratio:.2f}x (target <= 1.5x)")
    assert ratio <= 1.5
