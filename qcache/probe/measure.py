"""The measurements themselves: each a few hundred milliseconds to a few seconds.

Times are medians over repeated rounds measured in this process, so they
describe this machine and this Redis; the tuner compares them with each
other, never with fixed numbers.
"""

from __future__ import annotations

import itertools
import random
import statistics
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from qcache import QueryCache
from qcache.codec import Codec
from qcache.config import CacheConfig
from qcache.memory.policies import available_policies
from qcache.probe.payloads import KINDS, value_of
from qcache.sim import Zipf
from qcache.tune.evidence import BatchSample, CodecSample, OpTime, PoolSample
from qcache.tune.profiles import ProfileMeasurement

US = 1e6
ALGORITHMS = ("none", "lz4", "zstd")
CODEC_SIZES = (256, 1024, 4096, 16384, 131072)


def _median_us(call: Callable[[], object], repeats: int, per_round: int = 1) -> float:
    """Median time of one ``call()`` in microseconds, over ``repeats`` rounds of ``per_round`` calls."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(per_round):
            call()
        samples.append((time.perf_counter() - started) / per_round)
    return statistics.median(samples) * US


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Probe:
    """Where and how hard to measure: a Redis URL and a repeat count."""

    redis_url: str
    repeats: int = 15

    def config(self, **settings: Any) -> CacheConfig:
        """Defaults plus ``settings`` on this Redis, under a fresh key prefix; no environment read."""
        values: dict[str, Any] = {
            "REDIS_URL": self.redis_url,
            "CACHE_KEY_PREFIX": f"qcache-tune-{uuid.uuid4().hex[:12]}",
            "CACHE_LOG_LEVEL": "WARNING",
        }
        values.update(settings)
        return CacheConfig.from_env(env_file=None, environ={}, **values)

    @contextmanager
    def cache(self, **settings: Any) -> Iterator[QueryCache]:
        """A cache on this Redis whose own keys are removed afterwards (``clear()``: its namespace only)."""
        cache = QueryCache(self.config(**settings))
        try:
            yield cache
        finally:
            try:
                cache.flush()
                cache.clear()
            finally:
                cache.close()


def _round_trip(codec: Codec, value: Any, compress: bool) -> object:
    return codec.decode(codec.encode(value, key="probe", compress=compress), key="probe")


def measure_codec(
    kinds: Sequence[str] = KINDS, sizes: Sequence[int] = CODEC_SIZES, repeats: int = 15
) -> list[CodecSample]:
    """Encode + decode per kind, size and algorithm (no Redis), with the bytes each stores."""
    found = []
    for kind in kinds:
        for size in sizes:
            value = value_of(kind, size)
            for algorithm in ALGORITHMS:
                codec = Codec(compressor=algorithm, compression_threshold=0)
                compress = algorithm != "none"
                stored = codec.encode(value, key="probe", compress=compress)
                serialized = len(Codec(compressor="none").encode(value, key="probe"))
                us = _median_us(partial(_round_trip, codec, value, compress), repeats, per_round=5)
                found.append(CodecSample(algorithm, kind, f"{size}B", serialized, len(stored), us))
    return found


def measure_l1_overhead(value_bytes: int, entries: int = 5000) -> float:
    """Bytes L1 spends per entry beyond the value itself (tracemalloc over ``entries`` entries)."""
    config = CacheConfig.from_env(
        env_file=None, environ={}, CACHE_LEVEL="L1_MEMORY", MEMORY_CACHE_MAX_SIZE=entries * 2, CACHE_LOG_LEVEL="WARNING"
    )
    values = [bytes([i % 251]) * value_bytes for i in range(entries)]
    with QueryCache(config) as cache:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i, value in enumerate(values):
            cache.set(f"k{i}", value)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    # The values exist before the cache holds them (L1 keeps a reference, not a copy): what is
    # traced is the cost of holding them.
    return (after - before) / entries


def measure_policy_gets(repeats: int = 15, entries: int = 1000) -> dict[str, float]:
    """Nanoseconds per L1 hit for each registered eviction policy (level L1_MEMORY, no Redis)."""
    found: dict[str, float] = {}
    for policy in available_policies():
        config = CacheConfig.from_env(
            env_file=None,
            environ={},
            CACHE_LEVEL="L1_MEMORY",
            MEMORY_CACHE_EVICTION_POLICY=policy,
            MEMORY_CACHE_MAX_SIZE=entries * 2,
            CACHE_LOG_LEVEL="WARNING",
        )
        with QueryCache(config) as cache:
            for i in range(entries):
                cache.set(f"k{i}", i)
            found[policy] = _median_us(partial(cache.get, "k1"), repeats, per_round=500) * 1000
    return found


def measure_levels(probe: Probe, value: Any) -> tuple[float, float]:
    """Microseconds of an L1 hit (level BOTH) and of a read served by Redis (level L2_REDIS)."""
    with probe.cache(CACHE_LEVEL="BOTH") as both, probe.cache(CACHE_LEVEL="L2_REDIS") as l2:
        both.set("k", value)
        l2.set("k", value)
        return (
            _median_us(lambda: both.get("k"), probe.repeats, per_round=200),
            _median_us(lambda: l2.get("k"), probe.repeats, per_round=20),
        )


def _set_next(cache: QueryCache, keys: Iterator[str], value: Any) -> None:
    cache.set(next(keys), value)


def measure_write_strategies(probe: Probe, value: Any) -> list[OpTime]:
    """Get and set at level BOTH for every write strategy."""
    found = []
    for strategy in ("WRITE_THROUGH", "WRITE_BACK", "WRITE_AROUND"):
        with probe.cache(CACHE_LEVEL="BOTH", CACHE_WRITE_STRATEGY=strategy) as cache:
            keys = itertools.cycle([f"w{i}" for i in range(500)])
            set_us = _median_us(partial(_set_next, cache, keys, value), probe.repeats, per_round=20)
            cache.flush()
            get_us = _median_us(partial(cache.get, "w1"), probe.repeats, per_round=50)
            found += [OpTime(strategy, "BOTH", "set", set_us), OpTime(strategy, "BOTH", "get", get_us)]
    return found


def measure_batches(probe: Probe, value: Any, sizes: Sequence[int] = (1, 10, 100, 500, 1000)) -> list[BatchSample]:
    """``get_many`` and ``set_many`` per batch size, served by Redis (level L2_REDIS)."""
    found = []
    with probe.cache(CACHE_LEVEL="L2_REDIS") as cache:
        for size in sizes:
            batch = {f"b{size}-{i}": value for i in range(size)}
            keys = list(batch)
            found.append(BatchSample("set_many", size, _median_us(partial(cache.set_many, batch), probe.repeats)))
            found.append(BatchSample("get_many", size, _median_us(partial(cache.get_many, keys), probe.repeats)))
    return found


def _timed_gets(cache: QueryCache, count: int, sink: list[float], lock: threading.Lock) -> None:
    """``count`` gets of one key, each timed, appended to ``sink`` at the end."""
    mine = []
    for _ in range(count):
        started = time.perf_counter()
        cache.get("p")
        mine.append(time.perf_counter() - started)
    with lock:
        sink.extend(mine)


def measure_pools(
    probe: Probe, value: Any, threads: int, pools: Sequence[int] = (1, 2, 4, 8, 16, 32), gets_per_thread: int = 200
) -> list[PoolSample]:
    """``threads`` threads reading through Redis at once, for each pool size: throughput, p50, p99."""
    found = []
    for pool in pools:
        with probe.cache(CACHE_LEVEL="L2_REDIS", REDIS_MAX_CONNECTIONS=pool, CACHE_CONNECTION_POOL_SIZE=pool) as cache:
            cache.set("p", value)
            latencies: list[float] = []
            lock = threading.Lock()
            workers = [
                threading.Thread(target=_timed_gets, args=(cache, gets_per_thread, latencies, lock))
                for _ in range(threads)
            ]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
            ordered = sorted(latencies)
            found.append(
                PoolSample(
                    pool,
                    threads,
                    len(ordered) / elapsed,
                    _percentile(ordered, 0.5) * 1000,
                    _percentile(ordered, 0.99) * 1000,
                )
            )
    return found


def measure_profile(
    profile: str,
    probe: Probe,
    operations: int = 40_000,
    keys: int = 100_000,
    read_ratio: float = 0.9,
    value_bytes: int = 1024,
) -> ProfileMeasurement:
    """One mixed Zipf workload through a cache configured by ``profile``.

    The profile's Redis connection (host, TLS files) is replaced by the
    probe's, and encryption is off: profiles carry no key.
    """
    overrides = {
        "REDIS_SSL_ENABLED": False,
        "REDIS_SSL_CERT_PATH": "",
        "REDIS_SSL_KEY_PATH": "",
        "REDIS_SSL_CA_CERT_PATH": "",
        "ENVIRONMENT": profile,
        "CACHE_ENCRYPTION_ENABLED": False,
    }
    requests = Zipf(keys=keys, requests=operations, exponent=1.0, seed=7).generate()
    rng = random.Random(8)
    chooser = [rng.random() for _ in range(operations)]  # under read_ratio: a read
    value = value_of("search", value_bytes)
    gets: list[float] = []
    sets: list[float] = []
    hits = 0
    with probe.cache(**overrides) as cache:
        started = time.perf_counter()
        for key, draw in zip(requests, chooser):
            name = f"p{key}"
            if draw < read_ratio:
                t0 = time.perf_counter()
                found = cache.get(name)
                gets.append(time.perf_counter() - t0)
                if found is None:
                    t0 = time.perf_counter()
                    cache.set(name, value)
                    sets.append(time.perf_counter() - t0)
                else:
                    hits += 1
            else:
                t0 = time.perf_counter()
                cache.set(name, value)
                sets.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        l1_hits = int(cache.stats()["hits"].get("l1", 0))
    gets.sort()
    sets.sort()
    return ProfileMeasurement(
        profile,
        operations,
        operations / elapsed,
        _percentile(gets, 0.5) * 1000,
        _percentile(gets, 0.99) * 1000,
        _percentile(sets, 0.5) * 1000,
        _percentile(sets, 0.99) * 1000,
        hits / max(1, len(gets)),
        l1_hits / max(1, len(gets)),
    )
