"""Write strategies (write-through, write-back, write-around) at every cache level.

Target (checked by the gate): a WRITE_BACK set, which writes L1 now and L2
later in batches from a background thread, has at least 10x the throughput
of a WRITE_THROUGH set, which waits for Redis. Both at level BOTH, in the same
run; the figure is the ratio of their per-operation times.

Combinations where a strategy cannot apply are measured as they behave:
without L2 every strategy writes L1 only; without L1 write-back has nothing
to write back from and writes through.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from bench_support import MakeCache, make_keys, run_each, small_value

from qcache import QueryCache

STRATEGIES = ["WRITE_THROUGH", "WRITE_BACK", "WRITE_AROUND"]
LEVELS = ["L1_MEMORY", "L2_REDIS", "BOTH"]
KEYS = make_keys(100, "ws")
TTL = 600.0
READ_SHARE = 0.9

GROUP_SET = "write strategy: set (100 sets per round)"
GROUP_GET = "write strategy: get after set (100 gets per round)"
GROUP_MIXED = "write strategy: mixed, 90% get / 10% set (100 ops per round)"

CASES = [pytest.param(s, level, id=f"{s}-{level}") for s in STRATEGIES for level in LEVELS]


def mixed_ops(seed: int = 7) -> list[tuple[bool, str]]:
    """A fixed sequence of (is_write, key): 90% reads, 10% writes, keys drawn uniformly."""
    rng = random.Random(seed)
    return [(rng.random() >= READ_SHARE, rng.choice(KEYS)) for _ in range(len(KEYS))]


def build(make_cache: MakeCache, strategy: str, level: str) -> QueryCache:
    return make_cache(level, strategy, MEMORY_CACHE_MAX_SIZE=4 * len(KEYS))


@pytest.mark.benchmark(group=GROUP_SET)
@pytest.mark.parametrize(("strategy", "level"), CASES)
def test_set(benchmark: Any, make_cache: MakeCache, strategy: str, level: str) -> None:
    cache = build(make_cache, strategy, level)
    value = small_value()
    benchmark.extra_info.update(ops_per_round=len(KEYS), cache_op="set", strategy=strategy, level=level)
    benchmark(run_each, lambda key: cache.set(key, value, ttl=TTL), KEYS)
    assert cache.flush(timeout=5.0) == 0
    assert cache.get(KEYS[0]) == value


@pytest.mark.benchmark(group=GROUP_GET)
@pytest.mark.parametrize(("strategy", "level"), CASES)
def test_get(benchmark: Any, make_cache: MakeCache, strategy: str, level: str) -> None:
    cache = build(make_cache, strategy, level)
    value = small_value()
    for key in KEYS:
        cache.set(key, value, ttl=TTL)
    assert cache.flush(timeout=5.0) == 0
    benchmark.extra_info.update(ops_per_round=len(KEYS), cache_op="get", strategy=strategy, level=level)
    benchmark(run_each, cache.get, KEYS)
    assert cache.get(KEYS[-1]) == value


@pytest.mark.benchmark(group=GROUP_MIXED)
@pytest.mark.parametrize(("strategy", "level"), CASES)
def test_mixed(benchmark: Any, make_cache: MakeCache, strategy: str, level: str) -> None:
    cache = build(make_cache, strategy, level)
    value = small_value()
    for key in KEYS:
        cache.set(key, value, ttl=TTL)
    sequence = mixed_ops()

    def round_() -> None:
        get, set_ = cache.get, cache.set
        for is_write, key in sequence:
            if is_write:
                set_(key, value, ttl=TTL)
            else:
                get(key)

    benchmark.extra_info.update(
        ops_per_round=len(sequence), cache_op="mixed", strategy=strategy, level=level,
        writes_per_round=sum(1 for is_write, _ in sequence if is_write),
    )
    benchmark(round_)
    assert cache.flush(timeout=5.0) == 0
    assert cache.get(sequence[0][1]) == value
