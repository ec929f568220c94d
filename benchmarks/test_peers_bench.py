"""qcache beside the libraries a user would pick instead: the same operations, values and rounds.

Each benchmark times one contender against the operation's baseline in
alternating rounds (:func:`bench_support.record_ratio`) and records the median
ratio, contender over baseline, in ``extra_info`` together with the operation,
the contender, its serializer and the baseline, which is what
:mod:`qcache.bench.peers` turns into the report's and the overview notebook's
comparison. The baselines are what a user would write by hand:

* in process, cachetools ``TTLCache.get`` / ``__setitem__`` (sync) and
  aiocache's ``SimpleMemoryCache.get`` (async, as both peers there are async);
* on Redis, redis-py ``GET`` / ``MGET`` / ``SET PX`` with ``msgpack`` (numpy
  ``frombuffer`` for embeddings); async contenders against the same calls
  through ``redis.asyncio``, so an event loop's cost is on both sides;
* a two-tier read with the value in process, against qcache's own async read.

The peers are an optional extra (``pip install qcache[peers]``); a peer that
is not installed is skipped with a note saying so. Every Redis key lives
under a prefix unique to the test and is removed afterwards (SCAN + UNLINK,
never a flush).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import redis
import redis.asyncio
from bench_support import MakeCache, cache_config, record_ratio, unique_prefix
from cachetools import TTLCache

from qcache import AsyncQueryCache
from qcache.testing import RedisEndpoint

pytestmark = pytest.mark.redis

GROUP = "peers: each contender over its baseline, interleaved rounds"
VALUE = {"id": 42, "title": "a cached search result", "tags": ["a", "b", "c"], "score": 0.87}
MANY = 100
EMBEDDING_DIMS = 1536
TTL = 3600
#: Entries already in the in-process caches when they are measured.
FILLED = 1_000
#: Calls per round, by operation (so one round takes a few milliseconds on each side).
CALLS = {"l1-hit": 5_000, "l1-set": 2_000, "async-l1-hit": 2_000, "two-tier-read": 2_000,
         "l2-hit": 100, "write-through-set": 100, "get-many-100-small": 10, "get-many-100-embeddings": 10}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: what it is, how it stores values, and one call (sync, or a coroutine)."""

    name: str
    serializer: str
    call: Callable[[], Any] | None = None
    acall: Callable[[], Awaitable[Any]] | None = None


def require(module: str, peer: str) -> Any:
    """Import a peer's module, or skip the benchmark with a note when the peer is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"peer {peer} is not installed (pip install qcache[peers]); left out of the comparison")


def per_call_ns(side: Side, number: int, loop: asyncio.AbstractEventLoop | None) -> Callable[[], float]:
    """A round of ``number`` calls of ``side`` returning ns per call (async sides run on ``loop``)."""
    if side.call is not None:
        call = side.call

        def sync_round() -> float:
            started = time.perf_counter_ns()
            for _ in range(number):
                call()
            return (time.perf_counter_ns() - started) / number

        return sync_round
    assert side.acall is not None and loop is not None
    acall = side.acall

    async def calls() -> None:
        for _ in range(number):
            await acall()

    def async_round() -> float:
        started = time.perf_counter_ns()
        loop.run_until_complete(calls())
        return (time.perf_counter_ns() - started) / number

    return async_round


def compare(benchmark: Any, operation: str, contender: Side, baseline: Side, smoke: bool,
            loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Time ``contender`` over ``baseline`` in alternating rounds and label the result for the report."""
    number = 3 if smoke else CALLS[operation]
    record_ratio(benchmark, per_call_ns(contender, number, loop), per_call_ns(baseline, number, loop), smoke)
    benchmark.extra_info.update(
        ops_per_round=2 * number * benchmark.extra_info["pairs"],
        peer_operation=operation, peer=contender.name, serializer=contender.serializer,
        baseline=baseline.name, baseline_serializer=baseline.serializer,
    )


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of the test's own for the async sides (closed afterwards)."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


@pytest.fixture
def prefix(redis_endpoint: RedisEndpoint) -> Iterator[str]:
    """A key prefix unique to the test; every key under it is removed afterwards."""
    chosen = unique_prefix()
    yield chosen
    client = redis.Redis(**redis_endpoint.client_kwargs())
    try:
        doomed = list(client.scan_iter(match=f"{chosen}:*", count=500))
        for start in range(0, len(doomed), 500):
            client.unlink(*doomed[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def client(redis_endpoint: RedisEndpoint) -> Iterator[redis.Redis]:
    connection = redis.Redis(**redis_endpoint.client_kwargs())
    yield connection
    connection.close()


@pytest.fixture
def aclient(redis_endpoint: RedisEndpoint, loop: asyncio.AbstractEventLoop) -> Iterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis(**redis_endpoint.client_kwargs())
    yield connection
    loop.run_until_complete(connection.aclose())


def plain_endpoint(endpoint: RedisEndpoint) -> None:
    """Skip when the run's Redis needs TLS: the peers are set up for a plain connection only."""
    if endpoint.tls is not None:
        pytest.skip("the peers are compared on a plain (non-TLS) Redis connection only")


def small_values(prefix: str) -> dict[str, Any]:
    return {f"{prefix}:item:{i}": {**VALUE, "id": i} for i in range(MANY)}


def embeddings(prefix: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {f"{prefix}:vec:{i}": rng.standard_normal(EMBEDDING_DIMS).astype(np.float32) for i in range(MANY)}


def fill(set_item: Callable[[str, Any], Any]) -> None:
    """Put :data:`FILLED` entries in an in-process cache, so a hit is not measured on an empty one."""
    for i in range(FILLED):
        set_item(f"fill:{i}", {**VALUE, "id": i})


# ---------------------------------------------------------------------------- in process, sync


def ttlcache_side(operation: str) -> Side:
    cache: TTLCache[str, Any] = TTLCache(maxsize=4 * FILLED, ttl=TTL)
    fill(cache.__setitem__)
    cache["hot"] = VALUE
    if operation == "l1-hit":
        get = cache.get
        return Side("cachetools TTLCache", "none (objects)", call=lambda: get("hot"))
    keys = itertools.cycle([f"new:{i}" for i in range(2 * FILLED)])
    setitem = cache.__setitem__
    return Side("cachetools TTLCache", "none (objects)", call=lambda: setitem(next(keys), VALUE))


IN_PROCESS = ("qcache", "cachebox", "theine")


def in_process_side(peer: str, operation: str, make_cache: MakeCache) -> Side:
    keys = itertools.cycle([f"new:{i}" for i in range(2 * FILLED)])
    if peer == "qcache":
        cache = make_cache("BOTH" if operation == "l1-hit" else "L1_MEMORY", CACHE_METRICS_ENABLED=True,
                           MEMORY_CACHE_MAX_SIZE=4 * FILLED)
        fill(lambda k, v: cache.set(k, v, ttl=TTL))
        cache.set("hot", VALUE, ttl=TTL)
        get, put = cache.get, cache.set
        serializer = "none (objects); a set serializes once to weigh the value"
        if operation == "l1-hit":
            return Side("qcache QueryCache", serializer, call=lambda: get("hot"))
        return Side("qcache QueryCache", serializer, call=lambda: put(next(keys), VALUE, TTL))
    if peer == "cachebox":
        cachebox = require("cachebox", peer)
        box = cachebox.TTLCache(4 * FILLED, TTL)
        fill(box.insert)
        box["hot"] = VALUE
        if operation == "l1-hit":
            box_get = box.get
            return Side("cachebox TTLCache (Rust)", "none (objects)", call=lambda: box_get("hot"))
        insert = box.insert
        return Side("cachebox TTLCache (Rust)", "none (objects)", call=lambda: insert(next(keys), VALUE))
    theine = require("theine", peer)
    tiny = theine.Cache(4 * FILLED)
    ttl = datetime.timedelta(seconds=TTL)
    fill(lambda k, v: tiny.set(k, v, ttl))
    tiny.set("hot", VALUE, ttl)
    if operation == "l1-hit":
        tiny_get = tiny.get
        return Side("theine Cache (W-TinyLFU)", "none (objects)", call=lambda: tiny_get("hot"))
    tiny_set = tiny.set
    return Side("theine Cache (W-TinyLFU)", "none (objects)", call=lambda: tiny_set(next(keys), VALUE, ttl))


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("peer", IN_PROCESS)
@pytest.mark.parametrize("operation", ["l1-hit", "l1-set"])
def test_peer_in_process(benchmark: Any, operation: str, peer: str, make_cache: MakeCache, smoke: bool,
                         gc_paused: None) -> None:
    """A hit (1k entries held) and a set of a new key, over cachetools ``TTLCache``."""
    compare(benchmark, operation, in_process_side(peer, operation, make_cache), ttlcache_side(operation), smoke)


# ------------------------------------------------------------------------------ in process, async


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("peer", ["qcache", "cashews"])
def test_peer_async_l1_hit(benchmark: Any, peer: str, redis_endpoint: RedisEndpoint, prefix: str,
                           loop: asyncio.AbstractEventLoop, smoke: bool, gc_paused: None) -> None:
    """An async in-process hit over aiocache's ``SimpleMemoryCache.get``."""
    aiocache = require("aiocache", "aiocache")
    memory = aiocache.SimpleMemoryCache()
    loop.run_until_complete(memory.set("hot", VALUE, ttl=TTL))
    baseline = Side("aiocache SimpleMemoryCache", "none (objects)", acall=lambda: memory.get("hot"))
    contender: Side
    close: Callable[[], Awaitable[Any]]
    if peer == "qcache":
        config = cache_config(redis_endpoint, prefix, "L1_MEMORY", "WRITE_THROUGH", CACHE_METRICS_ENABLED=True)
        cache = AsyncQueryCache(config)
        loop.run_until_complete(cache.set("hot", VALUE, ttl=TTL))
        contender, close = Side("qcache AsyncQueryCache", "none on a hit", acall=lambda: cache.get("hot")), cache.close
    else:
        cashews = require("cashews", peer)
        mem = cashews.Cache()
        mem.setup("mem://")
        loop.run_until_complete(mem.set("hot", VALUE, expire=TTL))
        contender, close = Side("cashews mem://", "none (objects)", acall=lambda: mem.get("hot")), mem.close
    try:
        compare(benchmark, "async-l1-hit", contender, baseline, smoke, loop)
    finally:
        loop.run_until_complete(close())


# ----------------------------------------------------------------------------------- on Redis

REDIS_PEERS = ("qcache", "dogpile.cache", "aiocache", "cashews")
REDIS_OPERATIONS = ("l2-hit", "write-through-set", "get-many-100-small", "get-many-100-embeddings")


@dataclass
class RedisBench:
    """What the Redis-path comparisons share: the endpoint, a key prefix, both raw clients and a loop."""

    endpoint: RedisEndpoint
    prefix: str
    client: redis.Redis
    aclient: redis.asyncio.Redis
    loop: asyncio.AbstractEventLoop
    make_cache: MakeCache

    def values(self, operation: str) -> dict[str, Any]:
        if operation == "get-many-100-embeddings":
            return embeddings(self.prefix)
        if operation == "get-many-100-small":
            return small_values(self.prefix)
        return {f"{self.prefix}:warm": VALUE}


def raw_codec(operation: str) -> tuple[str, Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The serializer a user writes by hand for the operation's values: name, pack, unpack."""
    if operation == "get-many-100-embeddings":
        return "numpy tobytes/frombuffer", lambda v: v.tobytes(), lambda b: np.frombuffer(b, dtype=np.float32)
    return "msgpack", msgpack.packb, msgpack.unpackb


def raw_side(bench: RedisBench, operation: str, is_async: bool) -> Side:
    """The hand-written baseline of a Redis operation, sync (redis-py) or async (redis.asyncio)."""
    serializer, pack, unpack = raw_codec(operation)
    values = bench.values(operation)
    raw = {f"{key}:raw": value for key, value in values.items()}
    with bench.client.pipeline(transaction=False) as pipe:
        for key, value in raw.items():
            pipe.set(key, pack(value), px=TTL * 1000)
        pipe.execute()
    keys = list(raw)
    name = "redis.asyncio" if is_async else "redis-py"
    client: Any = bench.aclient if is_async else bench.client
    if operation == "l2-hit":
        what = f"{name} GET + {serializer}"
        if is_async:
            async def aget() -> Any:
                return unpack(await client.get(keys[0]))
            return Side(what, serializer, acall=aget)
        return Side(what, serializer, call=lambda: unpack(client.get(keys[0])))
    if operation == "write-through-set":
        rotating = itertools.cycle([f"{bench.prefix}:wt:{i}:raw" for i in range(1_000)])
        what = f"{name} SET PX + {serializer}"
        if is_async:
            return Side(what, serializer, acall=lambda: client.set(next(rotating), pack(VALUE), px=TTL * 1000))
        return Side(what, serializer, call=lambda: client.set(next(rotating), pack(VALUE), px=TTL * 1000))
    what = f"{name} MGET + {serializer}"
    if is_async:
        async def amget() -> Any:
            return [unpack(b) for b in await client.mget(keys) if b is not None]
        return Side(what, serializer, acall=amget)
    return Side(what, serializer, call=lambda: [unpack(b) for b in client.mget(keys) if b is not None])


def qcache_redis_side(bench: RedisBench, operation: str) -> Side:
    if operation == "write-through-set":
        cache = bench.make_cache("BOTH", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=20_000)
        rotating = itertools.cycle([f"wt:{i}" for i in range(1_000)])
        put = cache.set
        return Side("qcache QueryCache (BOTH)", "msgpack (qcache codec)", call=lambda: put(next(rotating), VALUE, TTL))
    cache = bench.make_cache("L2_REDIS")
    cache_type = "embedding" if operation == "get-many-100-embeddings" else None
    serializer = "qcache codec (numpy raw, lz4 tried)" if cache_type else "msgpack (qcache codec)"
    values = bench.values(operation)
    cache.set_many(values, ttl=TTL, cache_type=cache_type)
    keys = list(values)
    if operation == "l2-hit":
        get = cache.get
        return Side("qcache QueryCache (L2_REDIS)", serializer, call=lambda: get(keys[0]))
    get_many = cache.get_many
    return Side("qcache QueryCache (L2_REDIS)", serializer, call=lambda: get_many(keys, cache_type=cache_type))


def dogpile_side(bench: RedisBench, operation: str) -> Side:
    require("dogpile.cache.backends.redis", "dogpile.cache")
    from dogpile.cache import make_region
    from dogpile.cache.api import NO_VALUE

    kwargs = bench.endpoint.client_kwargs()
    region = make_region().configure(
        "dogpile.cache.redis",
        expiration_time=TTL,
        arguments={"host": kwargs.get("host", "127.0.0.1"), "port": kwargs.get("port", 6379),
                   "db": kwargs.get("db", 0), "password": kwargs.get("password"),
                   "redis_expiration_time": TTL, "distributed_lock": False},
    )
    name, serializer = "dogpile.cache redis", "pickle"
    values = bench.values(operation)
    keys = list(values)
    if operation == "write-through-set":
        rotating = itertools.cycle([f"{bench.prefix}:wt:{i}" for i in range(1_000)])
        put = region.set
        return Side(name, serializer, call=lambda: put(next(rotating), VALUE))
    region.set_multi(values)
    if operation == "l2-hit":
        get = region.get
        return Side(name, serializer, call=lambda: get(keys[0]))
    get_multi = region.get_multi

    def many() -> list[Any]:
        return [v for v in get_multi(keys) if v is not NO_VALUE]

    return Side(name, serializer, call=many)


def async_peer_side(
    bench: RedisBench, operation: str, name: str, serializer: str,
    set_one: Callable[[str, Any], Awaitable[Any]], set_all: Callable[[dict[str, Any]], Awaitable[Any]],
    get_one: Callable[[str], Awaitable[Any]], get_all: Callable[[list[str]], Awaitable[Any]],
) -> Side:
    """An async peer's side of a Redis operation, from its own four calls (TTL already bound)."""
    if operation == "write-through-set":
        rotating = itertools.cycle([f"{bench.prefix}:wt:{i}" for i in range(1_000)])
        return Side(name, serializer, acall=lambda: set_one(next(rotating), VALUE))
    values = bench.values(operation)
    keys = list(values)
    bench.loop.run_until_complete(set_all(values))
    if operation in ("l2-hit", "two-tier-read"):
        return Side(name, serializer, acall=lambda: get_one(keys[0]))
    return Side(name, serializer, acall=lambda: get_all(keys))


def aiocache_side(bench: RedisBench, operation: str) -> Side:
    aiocache = require("aiocache", "aiocache")
    from aiocache.serializers import PickleSerializer

    kwargs = bench.endpoint.client_kwargs()
    embedding = operation == "get-many-100-embeddings"
    # aiocache's Redis default is JSON, which cannot hold a numpy array: embeddings take its pickle serializer.
    cache = aiocache.RedisCache(
        serializer=PickleSerializer() if embedding else None,
        endpoint=kwargs.get("host", "127.0.0.1"), port=kwargs.get("port", 6379), db=kwargs.get("db", 0),
        password=kwargs.get("password"),
    )
    return async_peer_side(
        bench, operation, "aiocache RedisCache", "pickle" if embedding else "json (its default)",
        lambda key, value: cache.set(key, value, ttl=TTL),
        lambda values: cache.multi_set(list(values.items()), ttl=TTL),
        cache.get, cache.multi_get,
    )


def cashews_side(bench: RedisBench, operation: str, client_side: bool = False) -> Side:
    cashews = require("cashews", "cashews")
    cache = cashews.Cache()
    cache.setup(bench.endpoint.url, client_side=client_side)
    return async_peer_side(
        bench, operation, "cashews redis" + (" client_side" if client_side else ""), "pickle (its default)",
        lambda key, value: cache.set(key, value, expire=TTL),
        lambda values: cache.set_many(values, expire=TTL),
        cache.get, lambda keys: cache.get_many(*keys),
    )


@pytest.fixture
def redis_bench(redis_endpoint: RedisEndpoint, prefix: str, client: redis.Redis, aclient: redis.asyncio.Redis,
                loop: asyncio.AbstractEventLoop, make_cache: MakeCache) -> RedisBench:
    plain_endpoint(redis_endpoint)
    return RedisBench(redis_endpoint, prefix, client, aclient, loop, make_cache)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("peer", REDIS_PEERS)
@pytest.mark.parametrize("operation", REDIS_OPERATIONS)
def test_peer_on_redis(benchmark: Any, operation: str, peer: str, redis_bench: RedisBench, smoke: bool) -> None:
    """A Redis hit, a write, and batch reads of small dicts and embeddings, over the raw calls."""
    builders: dict[str, Callable[[RedisBench, str], Side]] = {
        "qcache": qcache_redis_side, "dogpile.cache": dogpile_side,
        "aiocache": aiocache_side, "cashews": cashews_side,
    }
    contender = builders[peer](redis_bench, operation)
    baseline = raw_side(redis_bench, operation, is_async=contender.acall is not None)
    compare(benchmark, operation, contender, baseline, smoke, redis_bench.loop)


@pytest.mark.benchmark(group=GROUP)
def test_peer_two_tier_read(benchmark: Any, redis_bench: RedisBench, redis_endpoint: RedisEndpoint,
                            smoke: bool) -> None:
    """A read whose value sits in process in front of Redis: cashews ``client_side`` over qcache (BOTH, async)."""
    loop = redis_bench.loop
    contender = cashews_side(redis_bench, "two-tier-read", client_side=True)
    assert contender.acall is not None
    loop.run_until_complete(contender.acall())  # the first read fills its local copy
    config = cache_config(redis_endpoint, redis_bench.prefix, "BOTH", "WRITE_THROUGH", CACHE_METRICS_ENABLED=True)
    cache = AsyncQueryCache(config)
    loop.run_until_complete(cache.set("warm", VALUE, ttl=TTL))
    baseline = Side("qcache AsyncQueryCache (BOTH)", "msgpack (qcache codec); none on an L1 hit",
                    acall=lambda: cache.get("warm"))
    try:
        compare(benchmark, "two-tier-read", contender, baseline, smoke, loop)
    finally:
        loop.run_until_complete(cache.close())


# ------------------------------------------------------------------------------ memory in process

MEMORY_SCRIPT = Path(__file__).resolve().parent / "peer_memory.py"
#: Entries of the memory comparison: the issue's 100k, and fewer in a smoke run.
MEMORY_ENTRIES = 100_000
SMOKE_MEMORY_ENTRIES = 2_000


def resident_per_entry(cache: str, entries: int) -> float:
    """Resident bytes per entry of ``cache`` holding ``entries`` of 1 KiB, from a fresh process."""
    done = subprocess.run([sys.executable, str(MEMORY_SCRIPT), cache, str(entries)],
                          capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(done.stdout)
    if "error" in result:
        pytest.skip(f"{cache}: {result['error']}; left out of the comparison")
    return float(result["bytes_per_entry"])


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("peer", IN_PROCESS)
def test_peer_l1_memory(benchmark: Any, peer: str, smoke: bool) -> None:
    """Resident bytes per 1 KiB entry (key, value, bookkeeping) over cachetools ``TTLCache``'s, 100k entries.

    Not a time: ``ratio`` is the byte ratio; both sides are measured in their
    own fresh process, one after the other (memory does not drift with load).
    """
    if peer != "qcache":
        require(peer, peer)
    entries = SMOKE_MEMORY_ENTRIES if smoke else MEMORY_ENTRIES
    ours = benchmark.pedantic(resident_per_entry, args=(peer, entries), rounds=1, iterations=1)
    theirs = resident_per_entry("cachetools", entries)
    ratio = ours / theirs
    names = {"qcache": "qcache QueryCache (L1_MEMORY)", "cachebox": "cachebox TTLCache (Rust)",
             "theine": "theine Cache (W-TinyLFU)"}
    benchmark.extra_info.update(
        ratio=ratio, ratio_q1=ratio, ratio_q3=ratio, top_ns=0.0, bottom_ns=0.0,
        bytes_per_entry=ours, baseline_bytes_per_entry=theirs, entries=entries,
        peer_operation="l1-memory", peer=names[peer], serializer="none (objects)",
        baseline="cachetools TTLCache", baseline_serializer="none (objects)",
    )
