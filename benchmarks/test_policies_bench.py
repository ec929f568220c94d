"""Speed of every eviction policy in an L1-shaped driver, against cachetools.

Each policy drives a tiny dict+policy cache (``PolicyDict``: the calls the L1
store makes, without its TTL and byte accounting) and is compared with the
cachetools class that does the same job in the same run:

* LRU, FIFO, LFU and RANDOM against ``LRUCache``, ``FIFOCache``,
  ``LFUCache`` and ``RRCache``;
* SIEVE, S3-FIFO, ARC, W-TinyLFU and ADAPTIVE, which cachetools lacks, against
  ``LRUCache``, the usual default they replace.

Two operations: ``get`` of a present key (a hit), and ``set`` of a new key
in a full cache (an insertion plus an eviction). The pytest-benchmark groups
show the per-call picture; ``test_policy_speed_ratios`` (marked ``timing``:
it runs when benchmarks measure) interleaves policy and baseline, takes
medians, prints every figure and asserts the ratio targets below (a policy
may be at most that many times slower).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import cachetools
import pytest
from bench_support import alternating_rounds, median_ratio, per_op, record_ratio, timed

from qcache.memory.policies import EvictionPolicy, available_policies, create_policy
from qcache.memory.policies.adaptive import SMALL_CACHE, AdaptivePolicy

CAPACITY = 1_000
HIT_KEYS = [f"qcache:acme:search:{i:012d}" for i in range(CAPACITY)] * 20
NEW_KEYS = [f"qcache:acme:search:{i:012d}" for i in range(10**6, 10**6 + 20 * CAPACITY)]

BASELINES: dict[str, type[cachetools.Cache]] = {
    "LRU": cachetools.LRUCache,
    "FIFO": cachetools.FIFOCache,
    "LFU": cachetools.LFUCache,
    "RANDOM": cachetools.RRCache,
}
# (get, set) ratio targets: policy time / baseline time.
TARGETS: dict[str, tuple[float, float]] = {
    "LRU": (1.0, 1.0),
    "FIFO": (1.0, 1.0),
    "LFU": (1.0, 1.0),
    "RANDOM": (1.0, 1.0),
    "SIEVE": (1.0, 1.5),
    "S3_FIFO": (1.0, 2.0),
    "ARC": (1.0, 2.0),
    # A sketch update per request and an admission duel per eviction, in Python.
    "W_TINYLFU": (4.5, 6.0),
    # W-TinyLFU driving the cache and, at 1,000 entries, a whole ARC beside it as a shadow.
    "ADAPTIVE": (6.0, 8.5),
}
#: Allowance for scheduler noise on a shared machine.
TIME_TOLERANCE = 0.15


class PolicyDict:
    """A bounded dict driven by a policy exactly as the L1 store drives it."""

    def __init__(self, policy: EvictionPolicy) -> None:
        self.data: dict[Hashable, Any] = {}
        self.capacity = policy.capacity
        self._access, self._miss = policy.on_access, policy.on_miss
        self._insert, self._victim = policy.on_insert, policy.victim

    def get(self, key: Hashable, default: Any = None) -> Any:
        try:
            value = self.data[key]
        except KeyError:
            self._miss(key)
            return default
        self._access(key)
        return value

    def set(self, key: Hashable, value: Any) -> None:
        data = self.data
        if key in data:
            data[key] = value
            self._access(key)
            return
        data[key] = value
        self._insert(key)
        if len(data) > self.capacity:
            del data[self._victim()]


def baseline_for(name: str) -> type[cachetools.Cache]:
    return BASELINES.get(name, cachetools.LRUCache)


def filled_policy_dict(name: str, capacity: int = CAPACITY) -> PolicyDict:
    cache = PolicyDict(create_policy(name, capacity))
    for key in HIT_KEYS[:capacity]:
        cache.set(key, key)
    return cache


def filled_cachetools(name: str, capacity: int = CAPACITY) -> cachetools.Cache:
    cache = baseline_for(name)(maxsize=capacity)
    for key in HIT_KEYS[:capacity]:
        cache[key] = key
    return cache


def run_gets(get: Callable[[Hashable], Any], keys: list[str] = HIT_KEYS) -> None:
    for key in keys:
        get(key)


def new_key_stream() -> Iterator[list[str]]:
    """Batches of keys never seen before, so every set inserts and evicts."""
    offset = 0
    while True:
        yield [f"{key}:{offset}" for key in NEW_KEYS]
        offset += 1


def run_sets(store: Callable[[Hashable, Any], None], keys: list[str]) -> None:
    for key in keys:
        store(key, key)



@pytest.mark.parametrize("name", available_policies())
def test_get_hit(benchmark: Any, name: str, gc_paused: None) -> None:
    benchmark.group = "l1 get (hit), per policy"
    cache = filled_policy_dict(name)
    benchmark.extra_info["ops_per_round"] = len(HIT_KEYS)
    benchmark(run_gets, cache.get)
    if benchmark.stats is not None:  # None in smoke runs, which do not measure
        benchmark.extra_info["ns_per_get"] = round(
            benchmark.stats.stats.median / len(HIT_KEYS) * 1e9
        )


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_get_hit_cachetools(benchmark: Any, name: str, gc_paused: None) -> None:
    benchmark.group = "l1 get (hit), per policy"
    benchmark.name = f"cachetools {BASELINES[name].__name__}"
    cache = filled_cachetools(name)
    benchmark.extra_info["ops_per_round"] = len(HIT_KEYS)
    benchmark(run_gets, cache.get)


@pytest.mark.parametrize("name", available_policies())
def test_set_with_eviction(benchmark: Any, name: str, gc_paused: None) -> None:
    benchmark.group = "l1 set (new key, evicts), per policy"
    cache = filled_policy_dict(name)
    batches = new_key_stream()
    benchmark.extra_info["ops_per_round"] = len(NEW_KEYS)
    benchmark.pedantic(lambda: run_sets(cache.set, next(batches)), rounds=5, iterations=1)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_set_with_eviction_cachetools(benchmark: Any, name: str, gc_paused: None) -> None:
    benchmark.group = "l1 set (new key, evicts), per policy"
    cache = filled_cachetools(name)
    batches = new_key_stream()
    benchmark.extra_info["ops_per_round"] = len(NEW_KEYS)
    benchmark.pedantic(
        lambda: run_sets(cache.__setitem__, next(batches)), rounds=5, iterations=1
    )


def record_get_ratio(benchmark: Any, ours: PolicyDict, theirs: cachetools.Cache, keys: list[str], smoke: bool) -> None:
    """Get-hit time of ``ours`` over ``theirs`` over ``keys``, in interleaved rounds: ``extra_info["ratio"]``."""
    record_ratio(
        benchmark,
        per_op(lambda: run_gets(ours.get, keys), len(keys)),
        per_op(lambda: run_gets(theirs.get, keys), len(keys)),
        smoke,
    )


def record_set_ratio(benchmark: Any, ours: PolicyDict, theirs: cachetools.Cache, smoke: bool) -> None:
    """Set-with-eviction time of ``ours`` over ``theirs``, keys never seen before: ``extra_info["ratio"]``."""
    our_batches, their_batches = new_key_stream(), new_key_stream()
    record_ratio(
        benchmark,
        per_op(lambda: run_sets(ours.set, next(our_batches)), len(NEW_KEYS)),
        per_op(lambda: run_sets(theirs.__setitem__, next(their_batches)), len(NEW_KEYS)),
        smoke,
    )


@pytest.mark.benchmark(group="l1 policy gate: policy over cachetools, interleaved rounds (median over adjacent pairs)")
@pytest.mark.parametrize("name", available_policies())
def test_bench_interleaved_get_ratio(benchmark: Any, name: str, smoke: bool, gc_paused: None) -> None:
    """Policy get-hit time over its cachetools baseline's: ``extra_info["ratio"]``, what the gate checks."""
    record_get_ratio(benchmark, filled_policy_dict(name), filled_cachetools(name), HIT_KEYS, smoke)
    benchmark.extra_info["baseline"] = baseline_for(name).__name__


@pytest.mark.benchmark(group="l1 policy gate: policy over cachetools, interleaved rounds (median over adjacent pairs)")
@pytest.mark.parametrize("name", available_policies())
def test_bench_interleaved_set_ratio(benchmark: Any, name: str, smoke: bool, gc_paused: None) -> None:
    """Policy set-with-eviction time over its cachetools baseline's: ``extra_info["ratio"]``."""
    record_set_ratio(benchmark, filled_policy_dict(name), filled_cachetools(name), smoke)
    benchmark.extra_info["baseline"] = baseline_for(name).__name__


@pytest.mark.benchmark(group="l1 policy gate: policy over cachetools, interleaved rounds (median over adjacent pairs)")
@pytest.mark.parametrize("operation", ["get", "set"])
def test_bench_interleaved_adaptive_small_cache_ratio(
    benchmark: Any, operation: str, smoke: bool, gc_paused: None
) -> None:
    """ADAPTIVE at SMALL_CACHE entries, where S3-FIFO's whole shadow runs beside ARC's, over LRUCache."""
    assert len(AdaptivePolicy(SMALL_CACHE).candidates) == 3  # W-TinyLFU driving, ARC and S3-FIFO beside it
    ours, theirs = filled_policy_dict("ADAPTIVE", SMALL_CACHE), filled_cachetools("ADAPTIVE", SMALL_CACHE)
    if operation == "get":
        # As many gets as at 1,000 entries, over the keys held.
        record_get_ratio(benchmark, ours, theirs, HIT_KEYS[:SMALL_CACHE] * (len(HIT_KEYS) // SMALL_CACHE), smoke)
    else:
        record_set_ratio(benchmark, ours, theirs, smoke)
    benchmark.extra_info["baseline"] = baseline_for("ADAPTIVE").__name__


@pytest.mark.timing
def test_policy_speed_ratios(gc_paused: None) -> None:
    failures: list[str] = []
    print()
    for name in available_policies():
        ours, theirs = filled_policy_dict(name), filled_cachetools(name)
        gets = alternating_rounds(timed(lambda: run_gets(ours.get)), timed(lambda: run_gets(theirs.get)), 9)
        our_batches, their_batches = new_key_stream(), new_key_stream()
        sets = alternating_rounds(
            timed(lambda: run_sets(ours.set, next(our_batches))),
            timed(lambda: run_sets(theirs.__setitem__, next(their_batches))),
            5,
        )
        get_ratio, set_ratio = median_ratio(*gets), median_ratio(*sets)
        get_ours, get_theirs = (statistics.median(side) / 1e9 for side in gets)
        set_ours, set_theirs = (statistics.median(side) / 1e9 for side in sets)
        baseline = baseline_for(name).__name__
        print(
            f"{name:10} get {get_ours / len(HIT_KEYS) * 1e9:6.0f} ns vs {baseline} "
            f"{get_theirs / len(HIT_KEYS) * 1e9:5.0f} ns (x{get_ratio:.2f})   "
            f"set+evict {set_ours / len(NEW_KEYS) * 1e9:6.0f} ns vs "
            f"{set_theirs / len(NEW_KEYS) * 1e9:5.0f} ns (x{set_ratio:.2f})"
        )
        get_target, set_target = TARGETS[name]
        if get_ratio > get_target * (1 + TIME_TOLERANCE):
            failures.append(f"{name} get x{get_ratio:.2f} > x{get_target}")
        if set_ratio > set_target * (1 + TIME_TOLERANCE):
            failures.append(f"{name} set x{set_ratio:.2f} > x{set_target}")
    assert not failures, "; ".join(failures)
