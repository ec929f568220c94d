"""What L1 coherence costs, and why it tracks in broadcast mode: ratios measured side by side.

* The facade: a write-through set with coherence over one without (the
  bookkeeping, and for writes the pool takes, the echo check's MGET on the listener's thread).
* The facade: an L2 read at level BOTH (L1 too small to hold the key, so every
  read goes to Redis and fills L1) with ``MEMORY_CACHE_COHERENCE`` on over the
  same read with it off; once with the namespace quiet, once while another
  process writes 500 keys a second into it (every one reported to this
  process in broadcast mode). Goal: at most 1.05. Sync and asyncio.
* The two ways Redis can track, on raw redis-py connections (sync and
  asyncio), GET on a connection over GET on a plain one:
  per-key tracking (``CLIENT TRACKING ON REDIRECT``: the server records every
  key each connection reads) against broadcast (``BCAST PREFIX`` registered on
  a separate connection: reads are untouched). And the delay from a write's
  reply to its invalidation message on the listening connection, p50 and p99,
  in each mode.

Ratios go to ``extra_info`` (``ratio``, and the delays in microseconds); the
``timing`` tests assert the facade's goal when benchmarks measure.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from bench_support import GATE_ROUNDS, MakeCache, alternating_rounds, record_ratio, unique_prefix
from conftest import cache_config

from qcache import AsyncQueryCache
from qcache.testing import RedisEndpoint

pytestmark = pytest.mark.redis

VALUE = {"id": 42, "title": "a cached search result", "tags": ["a", "b", "c"], "score": 0.87}
KEYS = 64
#: Relative slack on the goal, as in test_cache_bench.py.
TOLERANCE = 0.10
GOAL = 1.05
#: Writes per second another process makes into the namespace in the "busy" variants.
BUSY_WRITES_PER_SECOND = 500
Round = Callable[[], float]

_WRITER = """
import sys, time, redis
client = redis.Redis.from_url(sys.argv[1])
prefix, rate = sys.argv[2], float(sys.argv[3])
i = 0
start = time.monotonic()
while True:
    client.set(f"{prefix}:_:search:other{i % 1000}", b"x", px=60_000)
    i += 1
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
"""


def per_call_ns(fn: Callable[[], Any], number: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - started) / number


@pytest.fixture
def busy_namespace(redis_endpoint: RedisEndpoint) -> Iterator[Callable[[str], None]]:
    """``start(prefix)``: another process writing into that namespace until the test ends."""
    writers: list[subprocess.Popen[bytes]] = []

    def start(prefix: str) -> None:
        writers.append(subprocess.Popen(
            [sys.executable, "-c", _WRITER, redis_endpoint.url, prefix, str(BUSY_WRITES_PER_SECOND)]
        ))
        time.sleep(0.2)  # let it run

    yield start
    for writer in writers:
        writer.kill()
        writer.wait()


def l2_read_pair(make_cache: MakeCache) -> tuple[Any, Any]:
    """Two caches on one namespace, coherence on and off; L1 holds one entry, so every read goes to L2."""
    on = make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=1)
    off = make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=1, MEMORY_CACHE_COHERENCE=False)
    for cache in (on, off):
        for i in range(KEYS):
            cache.set(f"k{i}", VALUE, ttl=3600)
    assert on.stats()["l1_coherence"]["live"] and "l1_coherence" not in off.stats()
    return on, off


def reading(cache: Any) -> Callable[[], Any]:
    keys = itertools.cycle([f"k{i}" for i in range(KEYS)])
    get = cache.get
    return lambda: get(next(keys))


@pytest.mark.benchmark(group="coherence: L2 read at level BOTH, tracking on / off")
@pytest.mark.parametrize("namespace", ["quiet", "busy"])
def test_bench_interleaved_l2_read_with_tracking(
    benchmark: Any, make_cache: MakeCache, busy_namespace: Callable[[str], None], namespace: str, smoke: bool
) -> None:
    """QueryCache.get missing L1 with coherence over without: ``extra_info["ratio"]``, goal <= 1.05."""
    on, off = l2_read_pair(make_cache)
    if namespace == "busy":
        busy_namespace(on.config.core.key_prefix)
        busy_namespace(off.config.core.key_prefix)
    read_on, read_off = reading(on), reading(off)
    assert read_on() == VALUE and read_off() == VALUE
    record_ratio(benchmark, lambda: per_call_ns(read_on, 200), lambda: per_call_ns(read_off, 200), smoke)
    benchmark.extra_info["reports_seen"] = on.stats()["l1_coherence"]["reports"]


@pytest.mark.benchmark(group="coherence: write-through set at level BOTH, tracking on / off")
def test_bench_interleaved_write_with_tracking(benchmark: Any, make_cache: MakeCache, smoke: bool) -> None:
    """QueryCache.set with coherence over without: ``extra_info["ratio"]`` (bookkeeping, the echo check's MGET)."""
    on = make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=1000)
    off = make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=1000, MEMORY_CACHE_COHERENCE=False)
    keys_on = itertools.cycle([f"w{i}" for i in range(KEYS)])
    keys_off = itertools.cycle([f"w{i}" for i in range(KEYS)])
    set_on, set_off = on.set, off.set
    record_ratio(
        benchmark,
        lambda: per_call_ns(lambda: set_on(next(keys_on), VALUE, 3600), 200),
        lambda: per_call_ns(lambda: set_off(next(keys_off), VALUE, 3600), 200),
        smoke,
    )
    benchmark.extra_info["echoes_kept"] = on.stats()["l1_coherence"]["echoes_kept"]


@pytest.fixture
def async_pair(redis_endpoint: RedisEndpoint) -> Iterator[tuple[asyncio.AbstractEventLoop, Any, Any]]:
    """Two asyncio caches on one loop, coherence on and off, as :func:`l2_read_pair`."""
    loop = asyncio.new_event_loop()
    prefix = unique_prefix()

    async def build() -> tuple[Any, Any]:
        on = AsyncQueryCache(cache_config(redis_endpoint, prefix, "BOTH", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=1))
        off = AsyncQueryCache(cache_config(redis_endpoint, prefix + "-off", "BOTH", "WRITE_THROUGH",
                                           MEMORY_CACHE_MAX_SIZE=1, MEMORY_CACHE_COHERENCE=False))
        for cache in (on, off):
            await cache.__aenter__()
            await cache.set_many({f"k{i}": VALUE for i in range(KEYS)}, ttl=3600)
        return on, off

    on, off = loop.run_until_complete(build())
    try:
        yield loop, on, off
    finally:
        async def teardown() -> None:
            for cache in (on, off):
                await cache.clear()
                await cache.close()

        loop.run_until_complete(teardown())
        loop.close()


def async_reading(loop: asyncio.AbstractEventLoop, cache: Any, number: int) -> Round:
    keys = itertools.cycle([f"k{i}" for i in range(KEYS)])

    async def reads() -> float:
        started = time.perf_counter_ns()
        for _ in range(number):
            await cache.get(next(keys))
        return (time.perf_counter_ns() - started) / number

    return lambda: loop.run_until_complete(reads())


@pytest.mark.benchmark(group="coherence: L2 read at level BOTH, tracking on / off")
def test_bench_interleaved_async_l2_read_with_tracking(
    benchmark: Any, async_pair: tuple[asyncio.AbstractEventLoop, Any, Any], smoke: bool
) -> None:
    """AsyncQueryCache.get missing L1 with coherence over without: ``extra_info["ratio"]``, goal <= 1.05."""
    loop, on, off = async_pair
    assert on.stats()["l1_coherence"]["live"]
    record_ratio(benchmark, async_reading(loop, on, 200), async_reading(loop, off, 200), smoke)


@pytest.mark.timing
def test_ratio_l2_read_with_tracking(make_cache: MakeCache) -> None:
    on, off = l2_read_pair(make_cache)
    ours, theirs = alternating_rounds(
        lambda: per_call_ns(reading(on), 200), lambda: per_call_ns(reading(off), 200), GATE_ROUNDS
    )
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"\n[bench] L2 read at BOTH, coherence on / off: ratio {ratio:.3f} (goal <= {GOAL})")
    assert ratio <= GOAL * (1 + TOLERANCE)


# -- the tracking modes, on raw redis-py ---------------------------------------------------------------


class Modes:
    """Connections for comparing the modes: a listener, a per-key tracked reader, a plain reader."""

    def __init__(self, endpoint: RedisEndpoint, prefix: str) -> None:
        kwargs = endpoint.client_kwargs()
        self.prefix = prefix
        self.listener = redis.Redis(**kwargs, protocol=2, single_connection_client=True)
        self.listener_id = int(self.listener.client_id())
        self.plain = redis.Redis(**kwargs, single_connection_client=True)
        self.tracked = redis.Redis(**kwargs, single_connection_client=True)
        self.writer = redis.Redis(**kwargs, single_connection_client=True)
        self.keys = [f"{prefix}:k{i}" for i in range(KEYS)]
        for key in self.keys:
            self.writer.set(key, b"v" * 200, px=600_000)

    def per_key(self) -> None:
        """The tracked reader reports the keys it reads to the listener."""
        self.tracked.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", self.listener_id)

    def broadcast(self) -> None:
        """Another connection is told of every change under the prefix; the readers are untouched."""
        self.listener.execute_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", self.listener_id, "BCAST", "PREFIX", self.prefix
        )

    def close(self) -> None:
        self.writer.delete(*self.keys)
        for client in (self.listener, self.plain, self.tracked, self.writer):
            client.close()


@pytest.fixture
def modes(redis_endpoint: RedisEndpoint) -> Iterator[Modes]:
    made = Modes(redis_endpoint, unique_prefix())
    try:
        yield made
    finally:
        made.close()


def raw_reads(client: Any, keys: list[str], number: int) -> Round:
    cycle = itertools.cycle(keys)
    get = client.get
    return lambda: per_call_ns(lambda: get(next(cycle)), number)


@pytest.mark.benchmark(group="coherence: GET cost of each tracking mode (raw redis-py, sync)")
@pytest.mark.parametrize("mode", ["per-key", "broadcast"])
def test_bench_get_cost_of_tracking_mode(benchmark: Any, modes: Modes, mode: str, smoke: bool) -> None:
    """GET on a connection under ``mode`` over GET on a plain one: ``extra_info["ratio"]``."""
    if mode == "per-key":
        modes.per_key()
        reader = modes.tracked
    else:
        modes.broadcast()
        reader = modes.plain
    baseline = modes.writer  # a plain connection, no tracking of its own
    record_ratio(benchmark, raw_reads(reader, modes.keys, 300), raw_reads(baseline, modes.keys, 300), smoke)
    benchmark.extra_info["mode"] = mode


@pytest.mark.benchmark(group="coherence: GET cost of each tracking mode (raw redis-py, asyncio)")
@pytest.mark.parametrize("mode", ["per-key", "broadcast"])
def test_bench_async_get_cost_of_tracking_mode(
    benchmark: Any, redis_endpoint: RedisEndpoint, mode: str, smoke: bool
) -> None:
    """As the sync one, on ``redis.asyncio`` connections."""
    loop = asyncio.new_event_loop()
    prefix = unique_prefix()
    kwargs = redis_endpoint.client_kwargs()
    keys = [f"{prefix}:k{i}" for i in range(KEYS)]

    async def setup() -> tuple[Any, Any, Any]:
        listener = aredis.Redis(**kwargs, protocol=2, single_connection_client=True)
        listener_id = int(await listener.client_id())
        reader = aredis.Redis(**kwargs, single_connection_client=True)
        baseline = aredis.Redis(**kwargs, single_connection_client=True)
        for key in keys:
            await baseline.set(key, b"v" * 200, px=600_000)
        if mode == "per-key":
            await reader.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id)
        else:
            await listener.execute_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST", "PREFIX", prefix
            )
        return listener, reader, baseline

    listener, reader, baseline = loop.run_until_complete(setup())

    def reads(client: Any) -> Round:
        cycle = itertools.cycle(keys)

        async def run() -> float:
            started = time.perf_counter_ns()
            for _ in range(300):
                await client.get(next(cycle))
            return (time.perf_counter_ns() - started) / 300

        return lambda: loop.run_until_complete(run())

    try:
        record_ratio(benchmark, reads(reader), reads(baseline), smoke)
        benchmark.extra_info["mode"] = mode
    finally:
        async def teardown() -> None:
            await baseline.delete(*keys)
            for client in (listener, reader, baseline):
                await client.aclose()

        loop.run_until_complete(teardown())
        loop.close()


@pytest.mark.benchmark(group="coherence: invalidation delay of each tracking mode (raw redis-py)")
@pytest.mark.parametrize("mode", ["per-key", "broadcast"])
def test_bench_invalidation_delay_of_tracking_mode(benchmark: Any, modes: Modes, mode: str, smoke: bool) -> None:
    """From a write's reply to its invalidation message: p50 and p99 in ``extra_info`` (microseconds).

    Per-key mode reports a key once per read: the key is read again before each write.
    """
    if mode == "per-key":
        modes.per_key()
    else:
        modes.broadcast()
    # Subscribing from the listener's own connection keeps its id (the redirect target).
    connection = modes.listener.connection
    assert connection is not None
    connection.send_command("SUBSCRIBE", "__redis__:invalidate")
    connection.read_response()
    key = modes.keys[0]
    samples: list[float] = []

    def one_round() -> None:
        if mode == "per-key":
            modes.tracked.get(key)
        modes.writer.set(key, b"w", px=600_000)
        written = time.perf_counter_ns()
        while True:
            reply = connection.read_response()
            if isinstance(reply, list) and reply[0] == b"message":
                break
        samples.append((time.perf_counter_ns() - written) / 1000)

    rounds = 20 if smoke else 2000
    benchmark.pedantic(lambda: [one_round() for _ in range(rounds)], rounds=1, iterations=1)
    quantiles = statistics.quantiles(samples, n=100, method="inclusive")
    benchmark.extra_info.update(mode=mode, p50_us=quantiles[49], p99_us=quantiles[98], samples=len(samples))
