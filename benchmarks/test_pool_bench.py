"""Connection pool sizes 1, 4, 10 and 50 against 1, 4 and 16 concurrent threads.

Each round starts the threads together; every thread performs a fixed number
of ``QueryCache.get`` hits at level L2_REDIS (so every call needs a pooled
connection) and times each call. A pool smaller than the number of threads
makes callers queue for a connection (redis-py's blocking pool), which shows
in the p99 latency long before it shows in the throughput.

``extra_info``: throughput (operations per second over the round's wall
time, median over rounds) and p50 / p99 latency in milliseconds over every
call of every round.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest
from bench_support import MakeCache, Mode, make_keys, small_value

POOL_SIZES = [1, 4, 10, 50]
THREADS = [1, 4, 16]
KEYS = make_keys(200, "pool")
TTL = 600.0


def percentile(sorted_ns: list[int], fraction: float) -> float:
    """Nearest-rank percentile of sorted samples, in milliseconds."""
    index = min(len(sorted_ns) - 1, max(0, round(fraction * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1e6


@pytest.mark.parametrize("threads", THREADS, ids=[f"{t}-threads" for t in THREADS])
@pytest.mark.parametrize("pool", POOL_SIZES, ids=[f"pool-{p}" for p in POOL_SIZES])
def test_concurrent_gets(
    benchmark: Any, make_cache: MakeCache, bench_mode: Mode, smoke: bool, pool: int, threads: int
) -> None:
    cache = make_cache(
        "L2_REDIS",
        REDIS_MAX_CONNECTIONS=pool,
        CACHE_CONNECTION_POOL_SIZE=pool,
        REDIS_SOCKET_TIMEOUT=30.0,
        # Throughput under contention, not the deadline: a thread may wait for a pooled connection
        # longer than the default 250 ms when the machine is busy, and would then count a miss.
        CACHE_L2_TIMEOUT_MS=30_000,
    )
    value = small_value()
    cache.set_many(dict.fromkeys(KEYS, value), ttl=TTL)
    per_thread = 10 if smoke else bench_mode.ops_per_thread
    latencies: list[int] = []
    walls: list[float] = []
    errors: list[BaseException] = []

    def worker(offset: int, barrier: threading.Barrier, out: list[int]) -> None:
        get, clock = cache.get, time.perf_counter_ns
        try:
            barrier.wait()
            for i in range(per_thread):
                key = KEYS[(offset + i) % len(KEYS)]
                started = clock()
                got = get(key)
                out.append(clock() - started)
                if got is None:
                    raise AssertionError(f"miss on {key}")
        except BaseException as exc:  # surfaced by the test below, not lost in the thread
            errors.append(exc)

    def round_() -> None:
        barrier = threading.Barrier(threads + 1)
        samples: list[list[int]] = [[] for _ in range(threads)]
        workers = [
            threading.Thread(target=worker, args=(17 * n, barrier, samples[n]), daemon=True)
            for n in range(threads)
        ]
        for thread in workers:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in workers:
            thread.join()
        walls.append(time.perf_counter() - started)
        for chunk in samples:
            latencies.extend(chunk)

    benchmark.group = f"pool: {threads} thread{'s' if threads > 1 else ''} x {per_thread} gets"
    if not smoke:
        round_()  # warm-up: opens the pool's connections, which no measured round should pay for
        latencies.clear()
        walls.clear()
    benchmark.pedantic(round_, rounds=1 if smoke else bench_mode.scenario_rounds, iterations=1)
    assert not errors, errors[0]
    total = threads * per_thread
    assert len(latencies) == total * len(walls)
    latencies.sort()
    benchmark.extra_info.update(
        pool=pool,
        threads=threads,
        ops_per_round=total,
        throughput_ops=round(total / statistics.median(walls)),
        p50_ms=round(percentile(latencies, 0.50), 4),
        p99_ms=round(percentile(latencies, 0.99), 4),
    )
