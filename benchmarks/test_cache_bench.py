"""Speed and memory of the cache facade, as ratios against baselines measured in the same run.

Three kinds of tests:

* ``test_bench_*``: pytest-benchmark figures, the facade and its baseline side
  by side in one group (``--benchmark-group-by=group`` prints them together);
* ``test_bench_interleaved_*``: one benchmark per gated figure that runs both
  sides in interleaved rounds and records the ratio in ``extra_info`` (what
  the gate checks, see :func:`record_interleaved`);
* ``test_ratio_*``: a plain test that runs both sides in interleaved rounds,
  prints the ratio and asserts it against the target with a modest tolerance.

Baselines are what a user would write by hand: ``cachetools.TTLCache`` for an
L1 hit; redis-py ``GET``/``MGET``/``SET PX`` with ``msgpack.packb``/``unpackb``
(``numpy`` ``tobytes``/``frombuffer`` for embeddings) for the Redis path. The
targets (issue table, in ``benchmarks/gate.toml``): an L1 hit at most 0.5x
``TTLCache.get``; an L2 hit and a write-through set at most 1.1x the raw call;
``get_many(100)`` and ``set_many(100)`` at most 1.3x; a WRITE_BACK ``set`` at
least 10x as fast as a WRITE_THROUGH one; 100,000 L1 entries of 1 KB at most
1.5x the bytes of their values and keys.

Caches, Redis and the run mode come from ``conftest.py`` (``make_cache``,
``redis_endpoint``): every key written lives under a prefix unique to the
cache and is deleted afterwards. The ratio tests are marked ``timing``: they
run when benchmarks measure (``--benchmark-enable``), not in the plain test run.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import pytest
import redis
import redis.asyncio
from bench_support import GATE_ROUNDS, MakeCache, alternating_rounds, cache_config, record_ratio, unique_prefix
from cachetools import TTLCache

from qcache import AsyncQueryCache, QueryCache
from qcache.cache.record import unpack_record
from qcache.codec import Codec
from qcache.l2 import escape_glob
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
#: Dimensions of the embeddings of the batch figures (a common text-embedding size).
EMBEDDING_DIMS = 1536
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


#: Entries held in L1 (and in the TTLCache) while the L1 hit is measured: the issue's two sizes.
L1_HELD = (1_000, 1_000_000)


@pytest.fixture(params=L1_HELD, ids=lambda held: f"{held:_}-held")
def l1_pair(request: pytest.FixtureRequest, make_cache: MakeCache, smoke: bool) -> Pair:
    """An L1 hit through the facade (BOTH, metrics on) and the same hit on a cachetools TTLCache, both full."""
    held = min(request.param, 1_000) if smoke else request.param
    cache = make_cache("BOTH", CACHE_METRICS_ENABLED=True, MEMORY_CACHE_MAX_SIZE=held + 10,
                       MEMORY_CACHE_MAX_MEMORY_MB=4096)
    ttl_cache: TTLCache[str, Any] = TTLCache(maxsize=held + 10, ttl=3600)
    local = cache._core.l1
    assert local is not None
    # Filled through the store (the facade's L1 keys, no Redis writes): a million sets through
    # Redis would take minutes and measure nothing this figure is about.
    base = cache._core.storage_key(cache.namespace, cache._core.spec(None), "x")[0][:-1]
    for i in range(held):
        local.set(f"{base}fill:{i}", VALUE, 64, 3600.0, partition="default")
        ttl_cache[f"fill:{i}"] = VALUE
    cache.set("hot", VALUE, ttl=3600)
    ttl_cache["hot"] = VALUE
    assert cache.get("hot") == VALUE and ttl_cache.get("hot") == VALUE
    assert cache.get("fill:7") == VALUE
    get, ttl_get = cache.get, ttl_cache.get
    return (lambda: get("hot")), (lambda: ttl_get("hot"))


def raw_key(cache: QueryCache, name: str) -> str:
    """A key for a baseline's own copy, under the cache's prefix (so the cleanup removes it too)."""
    return f"{cache._core.keys.prefix}:raw:{name}"


@pytest.fixture
def l2_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """An L2 hit through the facade (level L2_REDIS) and what a user writes by hand: GET + ``msgpack.unpackb``."""
    cache = make_cache("L2_REDIS")
    cache.set("warm", VALUE, ttl=3600)
    key = raw_key(cache, "warm")
    client.set(key, msgpack.packb(VALUE), px=3_600_000)
    get, unpackb = client.get, msgpack.unpackb

    def raw_get() -> Any:
        return unpackb(get(key))

    assert cache.get("warm") == VALUE and raw_get() == VALUE
    cached_get = cache.get
    return (lambda: cached_get("warm")), raw_get


@pytest.fixture
def l2_same_decoding_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """An L2 hit through the facade and a raw GET of the same record decoded by the same codec.

    Not the user's baseline (see :func:`l2_pair`): it leaves out the record
    and codec, so it isolates the facade's own overhead for regression hunting.
    """
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

    Not a target: it splits the L2-hit overhead into the tier's share and the facade's.
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


def small_values() -> dict[str, Any]:
    """:data:`MANY` small dicts, one per key."""
    return {f"item:{i}": {**VALUE, "id": i} for i in range(MANY)}


def embeddings() -> dict[str, np.ndarray]:
    """:data:`MANY` embeddings of :data:`EMBEDDING_DIMS` float32 each, one per key."""
    rng = np.random.default_rng(7)
    return {f"vec:{i}": rng.standard_normal(EMBEDDING_DIMS).astype(np.float32) for i in range(MANY)}


def many_against_raw(make_cache: MakeCache, client: redis.Redis, values: dict[str, Any],
                     pack: Callable[[Any], bytes], unpack: Callable[[bytes], Any],
                     cache_type: str | None = None) -> Pair:
    """``get_many`` of ``values`` from L2 and a raw MGET of the user's own copies, unpacked one by one."""
    cache = make_cache("L2_REDIS")
    cache.set_many(values, ttl=3600, cache_type=cache_type)
    keys = list(values)
    raw_keys = [raw_key(cache, key) for key in keys]
    with client.pipeline(transaction=False) as pipe:
        for key, value in zip(raw_keys, values.values(), strict=True):
            pipe.set(key, pack(value), px=3_600_000)
        pipe.execute()
    mget = client.mget

    def raw_mget() -> dict[str, Any]:
        return {key: unpack(raw) for key, raw in zip(keys, mget(raw_keys), strict=True) if raw is not None}

    got, expected = cache.get_many(keys, cache_type=cache_type), raw_mget()
    assert len(got) == len(expected) == MANY
    get_many = cache.get_many
    return (lambda: get_many(keys, cache_type=cache_type)), raw_mget


@pytest.fixture
def many_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """``get_many`` of 100 small dicts from L2 and MGET + ``msgpack.unpackb`` per value."""
    return many_against_raw(make_cache, client, small_values(), msgpack.packb, msgpack.unpackb)


@pytest.fixture
def many_embedding_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """``get_many`` of 100 embeddings (type ``embedding``) and MGET + ``numpy.frombuffer`` per value."""

    def pack(vector: np.ndarray) -> bytes:
        return vector.tobytes()

    def unpack(raw: bytes) -> np.ndarray:
        return np.frombuffer(raw, dtype=np.float32)

    return many_against_raw(make_cache, client, embeddings(), pack, unpack, cache_type="embedding")


@pytest.fixture
def many_same_decoding_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """``get_many`` of 100 keys from L2 and a raw MGET of the same records, decoded by the same codec.

    Not the user's baseline (see :func:`many_pair`); it isolates the facade's per-key overhead.
    """
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
def write_through_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """A WRITE_THROUGH set (level BOTH) and a raw ``SET PX`` of ``msgpack.packb``, over rotating keys."""
    cache = make_cache("BOTH", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=20_000)
    ours = itertools.cycle([f"wt:{i}" for i in range(10_000)])
    theirs = itertools.cycle([raw_key(cache, f"wt:{i}") for i in range(10_000)])
    cached_set, raw_set, packb = cache.set, client.set, msgpack.packb
    return (lambda: cached_set(next(ours), VALUE, 3600)), (lambda: raw_set(next(theirs), packb(VALUE), px=3_600_000))


@pytest.fixture
def set_many_pair(make_cache: MakeCache, client: redis.Redis) -> Pair:
    """``set_many`` of 100 small dicts (L2_REDIS, write-through) and a raw pipeline of 100 ``SET PX``."""
    cache = make_cache("L2_REDIS", "WRITE_THROUGH")
    values = small_values()
    raw = {raw_key(cache, key): value for key, value in values.items()}
    packb = msgpack.packb

    def raw_set_many() -> None:
        with client.pipeline(transaction=False) as pipe:
            for key, value in raw.items():
                pipe.set(key, packb(value), px=3_600_000)
            pipe.execute()

    set_many = cache.set_many
    return (lambda: set_many(values, ttl=3600)), raw_set_many


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


@pytest.mark.benchmark(group="facade target: L2 hit, QueryCache.get (L2_REDIS) vs GET + msgpack.unpackb")
def test_bench_l2_hit_query_cache(benchmark: Any, l2_pair: Pair) -> None:
    assert benchmark(l2_pair[0]) == VALUE


@pytest.mark.benchmark(group="facade target: L2 hit, QueryCache.get (L2_REDIS) vs GET + msgpack.unpackb")
def test_bench_l2_hit_raw_get_baseline(benchmark: Any, l2_pair: Pair) -> None:
    assert benchmark(l2_pair[1]) == VALUE


@pytest.mark.benchmark(group="facade target: get_many of 100 keys from L2 vs MGET + msgpack.unpackb")
def test_bench_get_many_query_cache(benchmark: Any, many_pair: Pair) -> None:
    assert len(benchmark(many_pair[0])) == MANY


@pytest.mark.benchmark(group="facade target: get_many of 100 keys from L2 vs MGET + msgpack.unpackb")
def test_bench_get_many_raw_mget_baseline(benchmark: Any, many_pair: Pair) -> None:
    assert len(benchmark(many_pair[1])) == MANY


@pytest.mark.benchmark(group="facade target: set, WRITE_BACK vs WRITE_THROUGH (level BOTH)")
def test_bench_set_write_back(benchmark: Any, set_pair: Pair) -> None:
    benchmark(set_pair[0])


@pytest.mark.benchmark(group="facade target: set, WRITE_BACK vs WRITE_THROUGH (level BOTH)")
def test_bench_set_write_through_baseline(benchmark: Any, set_pair: Pair) -> None:
    benchmark(set_pair[1])


# -- the gate's figures: interleaved, as benchmarks ------------------------------------------------
# Baselines are what a user writes by hand: cachetools for L1, redis-py with msgpack (numpy's
# tobytes/frombuffer for embeddings) for L2. The "same decoding" figures compare against a raw
# call that decodes qcache's own record with its codec: not a target, a finer regression check
# of the facade's overhead alone.

INTERLEAVED = "facade gate: interleaved ratios (median over adjacent round pairs)"


@pytest.mark.benchmark(group=INTERLEAVED)
def test_bench_interleaved_l1_hit_vs_ttlcache(benchmark: Any, l1_pair: Pair, smoke: bool, gc_paused: None) -> None:
    """QueryCache.get from L1 over TTLCache.get: ``extra_info["ratio"]``, lower is better."""
    record_interleaved(benchmark, l1_pair[0], l1_pair[1], number=20_000, smoke=smoke)


#: The Redis-path figures: the pair fixture (the facade first, its baseline second) and the calls
#: per round, by the id the gate names the benchmark with.
REDIS_PATH = {
    "l2-hit": ("l2_pair", 200),  # over GET + msgpack.unpackb
    "l2-hit-same-decoding": ("l2_same_decoding_pair", 200),
    "l2-tier": ("l2_tier_pair", 200),  # the tier's share of an L2 hit; not a figure
    "get-many": ("many_pair", 30),  # 100 small dicts over MGET + msgpack.unpackb
    "get-many-embeddings": ("many_embedding_pair", 20),  # 100 embeddings over MGET + numpy.frombuffer
    "get-many-same-decoding": ("many_same_decoding_pair", 30),
    "set-many": ("set_many_pair", 20),  # over a pipeline of 100 SET PX + msgpack.packb
    "write-through": ("write_through_pair", 200),  # over SET PX + msgpack.packb
}


@pytest.mark.benchmark(group=INTERLEAVED)
@pytest.mark.parametrize("figure", list(REDIS_PATH))
def test_bench_interleaved_redis_path(benchmark: Any, figure: str, request: pytest.FixtureRequest,
                                      smoke: bool) -> None:
    """The facade over its Redis-path baseline: ``extra_info["ratio"]``, lower is better."""
    fixture, number = REDIS_PATH[figure]
    ours, theirs = request.getfixturevalue(fixture)
    record_interleaved(benchmark, ours, theirs, number=number, smoke=smoke)


# -- the same Redis-path figures on the asyncio facade (reported, not gated) --------------------------
# AsyncQueryCache against what a user writes by hand with redis.asyncio and msgpack; both sides
# await their calls on one event loop, so the loop's own cost is on both.

AsyncPair = tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]


@dataclass
class AsyncBench:
    """An event loop, a raw ``redis.asyncio`` client on it, and the async caches a test made."""

    endpoint: RedisEndpoint
    loop: asyncio.AbstractEventLoop
    aclient: redis.asyncio.Redis
    opened: list[tuple[AsyncQueryCache, str]] = field(default_factory=list)

    def make_cache(self, level: str, strategy: str = "WRITE_THROUGH", **settings: Any) -> AsyncQueryCache:
        prefix = unique_prefix()
        cache = AsyncQueryCache(cache_config(self.endpoint, prefix, level, strategy, **settings))
        self.opened.append((cache, prefix))
        return cache

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(awaitable)


@pytest.fixture
def async_bench(redis_endpoint: RedisEndpoint, client: redis.Redis) -> Iterator[AsyncBench]:
    """The async figures' setup; afterwards every cache is closed and its keys (raw ones too) unlinked."""
    loop = asyncio.new_event_loop()
    bench = AsyncBench(redis_endpoint, loop, redis.asyncio.Redis(**redis_endpoint.client_kwargs()))
    try:
        yield bench
    finally:
        for cache, prefix in reversed(bench.opened):
            bench.run(cache.close())
            doomed = list(client.scan_iter(match=escape_glob(f"{prefix}:") + "*", count=500))
            for start in range(0, len(doomed), 500):
                client.unlink(*doomed[start : start + 500])
        bench.run(bench.aclient.aclose())
        loop.close()


def async_per_call_ns(loop: asyncio.AbstractEventLoop, acall: Callable[[], Awaitable[Any]],
                      number: int) -> Callable[[], float]:
    """A round of ``number`` awaited calls of ``acall`` on ``loop``, returning ns per call."""

    async def calls() -> None:
        for _ in range(number):
            await acall()

    def one_round() -> float:
        started = time.perf_counter_ns()
        loop.run_until_complete(calls())
        return (time.perf_counter_ns() - started) / number

    return one_round


def async_key(cache: AsyncQueryCache, name: str) -> str:
    """A key for a baseline's own copy, under the cache's prefix (so the cleanup removes it too)."""
    return f"{cache._core.keys.prefix}:raw:{name}"


def async_l2_pair(bench: AsyncBench) -> AsyncPair:
    """An L2 hit through ``AsyncQueryCache.get`` (L2_REDIS) and ``await GET`` + ``msgpack.unpackb``."""
    cache = bench.make_cache("L2_REDIS")
    bench.run(cache.set("warm", VALUE, ttl=3600))
    key = async_key(cache, "warm")
    bench.run(bench.aclient.set(key, msgpack.packb(VALUE), px=3_600_000))
    get, unpackb = bench.aclient.get, msgpack.unpackb

    async def raw_get() -> Any:
        return unpackb(await get(key))

    async def cached_get() -> Any:
        return await cache.get("warm")

    assert bench.run(cached_get()) == VALUE and bench.run(raw_get()) == VALUE
    return cached_get, raw_get


def async_write_through_pair(bench: AsyncBench) -> AsyncPair:
    """A WRITE_THROUGH ``set`` (level BOTH) and ``await SET PX`` of ``msgpack.packb``, over rotating keys."""
    cache = bench.make_cache("BOTH", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=20_000)
    ours = itertools.cycle([f"wt:{i}" for i in range(10_000)])
    theirs = itertools.cycle([async_key(cache, f"wt:{i}") for i in range(10_000)])
    cached_set, raw_set, packb = cache.set, bench.aclient.set, msgpack.packb

    async def ours_set() -> None:
        await cached_set(next(ours), VALUE, 3600)

    async def raw() -> None:
        await raw_set(next(theirs), packb(VALUE), px=3_600_000)

    return ours_set, raw


def async_many_against_raw(bench: AsyncBench, values: dict[str, Any], pack: Callable[[Any], bytes],
                           unpack: Callable[[bytes], Any], cache_type: str | None = None) -> AsyncPair:
    """``get_many`` of ``values`` from L2 and ``await MGET`` of the user's own copies, unpacked one by one."""
    cache = bench.make_cache("L2_REDIS")
    bench.run(cache.set_many(values, ttl=3600, cache_type=cache_type))
    keys = list(values)
    raw_keys = [async_key(cache, key) for key in keys]
    bench.run(bench.aclient.mset({k: pack(v) for k, v in zip(raw_keys, values.values(), strict=True)}))
    mget, get_many = bench.aclient.mget, cache.get_many

    async def raw_mget() -> dict[str, Any]:
        return {key: unpack(raw) for key, raw in zip(keys, await mget(raw_keys), strict=True) if raw is not None}

    async def cached_many() -> dict[str, Any]:
        return await get_many(keys, cache_type=cache_type)

    assert len(bench.run(cached_many())) == len(bench.run(raw_mget())) == MANY
    return cached_many, raw_mget


def async_many_pair(bench: AsyncBench) -> AsyncPair:
    """``get_many`` of 100 small dicts from L2 and ``await MGET`` + ``msgpack.unpackb`` per value."""
    return async_many_against_raw(bench, small_values(), msgpack.packb, msgpack.unpackb)


def async_many_embedding_pair(bench: AsyncBench) -> AsyncPair:
    """``get_many`` of 100 embeddings (type ``embedding``) and ``await MGET`` + ``numpy.frombuffer`` per value."""

    def unpack(raw: bytes) -> np.ndarray:
        return np.frombuffer(raw, dtype=np.float32)

    return async_many_against_raw(bench, embeddings(), np.ndarray.tobytes, unpack, cache_type="embedding")


def async_set_many_pair(bench: AsyncBench) -> AsyncPair:
    """``set_many`` of 100 small dicts (L2_REDIS, write-through) and a raw async pipeline of 100 ``SET PX``."""
    cache = bench.make_cache("L2_REDIS", "WRITE_THROUGH")
    values = small_values()
    raw = {async_key(cache, key): value for key, value in values.items()}
    aclient, packb, set_many = bench.aclient, msgpack.packb, cache.set_many

    async def raw_set_many() -> None:
        async with aclient.pipeline(transaction=False) as pipe:
            for key, value in raw.items():
                pipe.set(key, packb(value), px=3_600_000)
            await pipe.execute()

    async def cached_set_many() -> None:
        await set_many(values, ttl=3600)

    return cached_set_many, raw_set_many


#: The asyncio facade's Redis-path figures: the pair builder and the calls per round, by id.
ASYNC_REDIS_PATH: dict[str, tuple[Callable[[AsyncBench], AsyncPair], int]] = {
    "async-l2-hit": (async_l2_pair, 200),  # over await GET + msgpack.unpackb
    "async-write-through": (async_write_through_pair, 200),  # over await SET PX + msgpack.packb
    "async-get-many": (async_many_pair, 30),  # 100 small dicts over await MGET + msgpack.unpackb
    "async-get-many-embeddings": (async_many_embedding_pair, 20),  # 100 embeddings over await MGET + frombuffer
    "async-set-many": (async_set_many_pair, 20),  # over an async pipeline of 100 SET PX + msgpack.packb
}


@pytest.mark.benchmark(group=INTERLEAVED)
@pytest.mark.parametrize("figure", list(ASYNC_REDIS_PATH))
def test_bench_interleaved_async_redis_path(benchmark: Any, figure: str, async_bench: AsyncBench,
                                            smoke: bool) -> None:
    """AsyncQueryCache over its redis.asyncio baseline: ``extra_info["ratio"]``, lower is better; not gated."""
    build, number = ASYNC_REDIS_PATH[figure]
    ours, theirs = build(async_bench)
    number = 3 if smoke else number
    record_ratio(benchmark, async_per_call_ns(async_bench.loop, ours, number),
                 async_per_call_ns(async_bench.loop, theirs, number), smoke)
    benchmark.extra_info["ops_per_round"] = 2 * number * benchmark.extra_info["pairs"]


@pytest.mark.benchmark(group=INTERLEAVED)
def test_bench_interleaved_write_back_speedup(benchmark: Any, set_pair: Pair, smoke: bool) -> None:
    """WRITE_THROUGH set time over WRITE_BACK set time: ``extra_info["ratio"]``, higher is better."""
    record_interleaved(benchmark, set_pair[1], set_pair[0], number=300, smoke=smoke)


@pytest.mark.benchmark(group=INTERLEAVED)
def test_bench_interleaved_write_back_vs_l1_set(benchmark: Any, back_vs_l1_pair: Pair, smoke: bool) -> None:
    """WRITE_BACK set time over an L1-only set time: ``extra_info["ratio"]``, lower is better."""
    # Rounds of 3,000 sets: each spans several of the flusher's batches, so whether a round caught
    # one in progress (the flusher shares the GIL) does not decide its time.
    record_interleaved(benchmark, back_vs_l1_pair[0], back_vs_l1_pair[1], number=3_000, smoke=smoke)


# -- ratios, asserted ------------------------------------------------------------------------------


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
