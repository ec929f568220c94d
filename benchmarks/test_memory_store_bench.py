"""Speed and footprint of the L1 MemoryStore against cachetools and a plain dict.

Absolute times depend on the machine; the targets are ratios measured in the
same run:

* a hit through ``MemoryStore.get`` (and ``get_entry``, which the facade
  uses) costs at most ``GET_RATIO_TARGET`` of a ``cachetools.TTLCache.get``
  hit, so the facade can add its own work and still match TTLCache;
* 100,000 entries of 1 KiB ``bytes`` under ~40-character keys take at most
  ``MEMORY_RATIO_TARGET`` times the bytes of those keys and values.

The pytest-benchmark groups show the per-call picture next to the baselines;
the two ratio tests assert the targets and print the measured figures.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from bench_support import alternating_rounds, median_ratio, per_op, record_ratio, timed
from cachetools import LRUCache, TTLCache

from qcache.memory.store import MemoryStore

CAPACITY = 1_000
TTL = 300.0
GET_RATIO_TARGET = 0.35
MEMORY_RATIO_TARGET = 1.5
#: Allowance for scheduler noise on a shared machine, applied to the time ratio only.
TIME_TOLERANCE = 0.15


def make_key(i: int) -> str:
    """A ~40-character key shaped like the facade's (prefix, namespace, type, query)."""
    return f"qcache:acme:search:{i:021d}"


HIT_KEYS = [make_key(i) for i in range(CAPACITY)]
#: Twice the capacity, written round-robin: every write evicts.
CHURN_KEYS = [make_key(i) for i in range(10 * CAPACITY, 12 * CAPACITY)]


def run_gets(get: Callable[[str], Any], keys: list[str]) -> None:
    """One lookup per key; the loop overhead is the same for every contender."""
    for key in keys:
        get(key)


def filled_store() -> MemoryStore:
    store = MemoryStore(CAPACITY, 1 << 30, "LRU")
    for key in HIT_KEYS:
        store.set(key, key, 64, TTL)
    return store


def filled_ttlcache() -> TTLCache[str, Any]:
    cache: TTLCache[str, Any] = TTLCache(CAPACITY, TTL)
    for key in HIT_KEYS:
        cache[key] = key
    return cache


# -------------------------------------------------- pytest-benchmark groups


@pytest.mark.benchmark(group="l1-get-hit (1,000 hits per round)")
def test_get_hit_memory_store(benchmark: Any) -> None:
    store = filled_store()
    benchmark(run_gets, store.get, HIT_KEYS)
    assert store.get(HIT_KEYS[0]) == HIT_KEYS[0]


@pytest.mark.benchmark(group="l1-get-hit (1,000 hits per round)")
def test_get_entry_hit_memory_store(benchmark: Any) -> None:
    store = filled_store()
    benchmark(run_gets, store.get_entry, HIT_KEYS)
    assert store.get_entry(HIT_KEYS[0]) is not None


@pytest.mark.benchmark(group="l1-get-hit (1,000 hits per round)")
def test_get_hit_cachetools_ttlcache(benchmark: Any) -> None:
    cache = filled_ttlcache()
    benchmark(run_gets, cache.get, HIT_KEYS)
    assert cache.get(HIT_KEYS[0]) == HIT_KEYS[0]


@pytest.mark.benchmark(group="l1-get-hit (1,000 hits per round)")
def test_get_hit_cachetools_lrucache(benchmark: Any) -> None:
    cache: LRUCache[str, Any] = LRUCache(CAPACITY)
    for key in HIT_KEYS:
        cache[key] = key
    benchmark(run_gets, cache.get, HIT_KEYS)
    assert cache.get(HIT_KEYS[0]) == HIT_KEYS[0]


@pytest.mark.benchmark(group="l1-get-hit (1,000 hits per round)")
def test_get_hit_dict(benchmark: Any) -> None:
    table = {key: key for key in HIT_KEYS}
    benchmark(run_gets, table.get, HIT_KEYS)
    assert table.get(HIT_KEYS[0]) == HIT_KEYS[0]


@pytest.mark.benchmark(group="l1-set-evict (2,000 writes per round, each evicting once warm)")
def test_set_evicting_memory_store(benchmark: Any) -> None:
    store = MemoryStore(CAPACITY, 1 << 30, "LRU")
    value = b"v" * 64

    def writes() -> None:
        for key in CHURN_KEYS:
            store.set(key, value, 64, TTL)

    benchmark(writes)
    assert len(store) == CAPACITY
    assert store.stats().evictions > 0


@pytest.mark.benchmark(group="l1-set-evict (2,000 writes per round, each evicting once warm)")
def test_set_evicting_cachetools_ttlcache(benchmark: Any) -> None:
    cache: TTLCache[str, Any] = TTLCache(CAPACITY, TTL)
    value = b"v" * 64

    def writes() -> None:
        for key in CHURN_KEYS:
            cache[key] = value

    benchmark(writes)
    assert len(cache) == CAPACITY


# ------------------------------------------------------------ gated ratios


@pytest.mark.benchmark(
    group="l1 store gate: MemoryStore over TTLCache.get, interleaved rounds (median over adjacent pairs)"
)
@pytest.mark.parametrize("method", ["get", "get_entry"])
def test_bench_interleaved_get_hit_vs_ttlcache(benchmark: Any, method: str, smoke: bool, gc_paused: None) -> None:
    """A MemoryStore hit over a TTLCache.get hit: ``extra_info["ratio"]``, what the gate checks."""
    store, cache = filled_store(), filled_ttlcache()
    store_get = getattr(store, method)
    keys = HIT_KEYS * 2
    record_ratio(
        benchmark,
        per_op(lambda: run_gets(store_get, keys), len(keys)),
        per_op(lambda: run_gets(cache.get, keys), len(keys)),
        smoke,
    )


# ---------------------------------------------------------- asserted ratios


@pytest.mark.timing
@pytest.mark.parametrize("method", ["get", "get_entry"])
def test_get_hit_ratio_against_ttlcache(method: str, gc_paused: None) -> None:
    store = filled_store()
    cache = filled_ttlcache()
    store_get = getattr(store, method)
    keys = HIT_KEYS * 2

    ours, theirs = alternating_rounds(
        timed(lambda: run_gets(store_get, keys)), timed(lambda: run_gets(cache.get, keys)), rounds=41
    )
    ratio, store_ns, ttl_ns = median_ratio(ours, theirs), statistics.median(ours), statistics.median(theirs)
    per_store = store_ns / len(keys)
    per_ttl = ttl_ns / len(keys)
    print(
        f"\nMemoryStore.{method} hit: {per_store:.0f} ns vs TTLCache.get {per_ttl:.0f} ns "
        f"-> ratio {ratio:.3f} (target <= {GET_RATIO_TARGET}, tolerance {TIME_TOLERANCE:.0%})"
    )
    assert ratio <= GET_RATIO_TARGET * (1 + TIME_TOLERANCE)


@pytest.mark.parametrize("ttl", [TTL, None], ids=["with-ttl", "no-ttl"])
def test_memory_footprint_ratio(ttl: float | None) -> None:
    count = 100_000
    gc.collect()
    tracemalloc.start()
    try:
        store = MemoryStore(count, 1 << 30, "LRU")
        # Keys and values are created here and owned by the store alone, so
        # the traced total is exactly payload plus the store's overhead.
        for i in range(count):
            value = os.urandom(1024)
            store.set(make_key(i), value, len(value), ttl)
        traced, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    payload = 0
    for key in store.keys():
        entry = store.get_entry(key)
        assert entry is not None
        payload += sys.getsizeof(key) + sys.getsizeof(entry[0])  # its value
    assert len(store) == count
    ratio = traced / payload
    print(
        f"\nMemoryStore footprint ({'ttl' if ttl else 'no ttl'}), {count:,} x 1 KiB under "
        f"{len(make_key(0))}-char keys: {traced / 2**20:.1f} MiB for {payload / 2**20:.1f} MiB "
        f"of keys and values -> ratio {ratio:.3f} (target <= {MEMORY_RATIO_TARGET}); "
        f"overhead {(traced - payload) / count:.0f} B/entry"
    )
    assert ratio <= MEMORY_RATIO_TARGET
