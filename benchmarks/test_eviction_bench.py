"""Eviction policies: L1 get and set cost per registered policy, and hit ratios on workloads.

* ``eviction: get hit`` / ``eviction: set with eviction``: a ``MemoryStore``
  driven by each registered policy, next to the cachetools cache with the
  same policy (``LRUCache``, ``FIFOCache``, ``LFUCache``, ``RRCache``; the
  policies cachetools lacks are compared with ``LRUCache``, its default).
* ``eviction: replay``: each policy replays Zipf workloads and, when the
  shared traces are present (``../shared/traces`` or ``QCACHE_TRACES_DIR``),
  the real traces, through the same policy objects L1 uses. The hit rate
  (a fraction, ``extra_info["hit_rate"]``) is what ``qcache report`` holds
  against the hit-rate thresholds; the round's time gives requests/s.

Trace results credit their source in ``extra_info["credit"]``: cache2k
web07 (headissue GmbH / Jens Wilke, CC BY 4.0) and the OLTP trace of
N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead Replacement
Cache", FAST 2003.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench_support import TRACE_PATTERNS, Mode, make_keys, run_each
from cachetools import Cache, FIFOCache, LFUCache, LRUCache, RRCache

from qcache.memory import MemoryStore
from qcache.memory.policies import available_policies, resolve_policy_name
from qcache.sim import Trace, TraceFile, Zipf, count_hits, materialize, shared_traces_dir

POLICIES = available_policies()
DEFAULT = resolve_policy_name("default")
CAPACITY = 1_000
HIT_KEYS = make_keys(CAPACITY, "ev")
#: Twice the capacity, written round-robin: every write evicts once the store is full.
CHURN_KEYS = make_keys(2 * CAPACITY, "churn")
TTL = 600.0
#: cachetools' cache with the same eviction rule, where it has one.
CACHETOOLS_EQUIVALENT: dict[str, type[Cache]] = {
    "LRU": LRUCache, "FIFO": FIFOCache, "LFU": LFUCache, "RANDOM": RRCache,
}
CACHETOOLS = {"LRUCache": LRUCache, "FIFOCache": FIFOCache, "LFUCache": LFUCache, "RRCache": RRCache}
#: Zipf exponents of the synthetic workloads (web-like and database-like skew).
ZIPF_EXPONENTS = (0.8, 1.0)
ZIPF_KEYS = 20_000
#: Cache sizes as fractions of the distinct keys.
SIZE_FRACTIONS = (0.01, 0.1)

GROUP_GET = f"eviction: get hit ({CAPACITY:,} hits per round)"
GROUP_SET = f"eviction: set with eviction ({2 * CAPACITY:,} writes per round)"


def equivalent_of(policy: str) -> str:
    """Name of the cachetools class a policy is compared with."""
    return CACHETOOLS_EQUIVALENT.get(policy, LRUCache).__name__


# ------------------------------------------------------------------ L1 cost


@pytest.mark.benchmark(group=GROUP_GET)
@pytest.mark.parametrize("policy", POLICIES)
def test_get_hit_memory_store(benchmark: Any, policy: str) -> None:
    store = MemoryStore(CAPACITY, 1 << 30, policy)
    for key in HIT_KEYS:
        store.set(key, key, 64, TTL)
    benchmark.extra_info.update(ops_per_round=CAPACITY, policy=policy, compared_with=equivalent_of(policy))
    benchmark(run_each, store.get, HIT_KEYS)
    assert store.get(HIT_KEYS[0]) == HIT_KEYS[0] and store.stats().evictions == 0


@pytest.mark.benchmark(group=GROUP_GET)
@pytest.mark.parametrize("name", list(CACHETOOLS))
def test_get_hit_cachetools(benchmark: Any, name: str) -> None:
    cache = CACHETOOLS[name](CAPACITY)
    for key in HIT_KEYS:
        cache[key] = key
    benchmark.extra_info.update(ops_per_round=CAPACITY)
    benchmark(run_each, cache.get, HIT_KEYS)
    assert cache.get(HIT_KEYS[0]) == HIT_KEYS[0]


@pytest.mark.benchmark(group=GROUP_SET)
@pytest.mark.parametrize("policy", POLICIES)
def test_set_evicting_memory_store(benchmark: Any, policy: str) -> None:
    store = MemoryStore(CAPACITY, 1 << 30, policy)
    value = b"v" * 64
    benchmark.extra_info.update(ops_per_round=len(CHURN_KEYS), policy=policy, compared_with=equivalent_of(policy))
    benchmark(run_each, lambda key: store.set(key, value, 64, TTL), CHURN_KEYS)
    assert len(store) == CAPACITY and store.stats().evictions > 0


@pytest.mark.benchmark(group=GROUP_SET)
@pytest.mark.parametrize("name", list(CACHETOOLS))
def test_set_evicting_cachetools(benchmark: Any, name: str) -> None:
    cache = CACHETOOLS[name](CAPACITY)
    value = b"v" * 64
    benchmark.extra_info.update(ops_per_round=len(CHURN_KEYS))
    benchmark(run_each, lambda key: cache.__setitem__(key, value), CHURN_KEYS)
    assert len(cache) == CAPACITY


# ------------------------------------------------------------------ hit ratio


def replay(benchmark: Any, trace: Trace, policy: str, fraction: float, rounds: int) -> None:
    """Time ``rounds`` replays of ``trace`` by ``policy``; record hit rate and requests/s."""
    capacity = max(1, round(fraction * trace.unique_keys))
    hits = benchmark.pedantic(
        count_hits, args=(policy, trace.keys, capacity), kwargs={"fast": False},
        rounds=rounds, iterations=1,
    )
    assert 0 <= hits < len(trace.keys)
    benchmark.extra_info.update(
        policy=policy, default_policy=DEFAULT, trace=trace.name, capacity=capacity, requests=len(trace.keys),
        hit_rate=round(hits / len(trace.keys), 5),
    )
    if benchmark.stats is not None:
        benchmark.extra_info["requests_per_second"] = round(len(trace.keys) / benchmark.stats.stats.median)
    if trace.credit:
        benchmark.extra_info["credit"] = trace.credit


_ZIPF_TRACES: dict[tuple[float, int], Trace] = {}


def zipf_trace(exponent: float, requests: int) -> Trace:
    """The Zipf workload, generated once per run."""
    key = (exponent, requests)
    if key not in _ZIPF_TRACES:
        _ZIPF_TRACES[key] = materialize(Zipf(keys=ZIPF_KEYS, requests=requests, exponent=exponent, seed=1))
    return _ZIPF_TRACES[key]


@pytest.mark.parametrize("fraction", SIZE_FRACTIONS, ids=[f"size-{f:.0%}" for f in SIZE_FRACTIONS])
@pytest.mark.parametrize("exponent", ZIPF_EXPONENTS, ids=[f"zipf-{e:g}" for e in ZIPF_EXPONENTS])
@pytest.mark.parametrize("policy", POLICIES)
def test_replay_zipf(
    benchmark: Any, bench_mode: Mode, smoke: bool, policy: str, exponent: float, fraction: float
) -> None:
    trace = zipf_trace(exponent, 5_000 if smoke else bench_mode.replay_requests)
    benchmark.group = (
        f"eviction: replay zipf {exponent:g} over {ZIPF_KEYS:,} keys, cache {fraction:.0%} of those requested"
    )
    replay(benchmark, trace, policy, fraction, rounds=1 if smoke else max(1, bench_mode.scenario_rounds // 3))


def shared_trace_names() -> list[str]:
    """File names of the shared traces present beside the repository (empty in a fresh clone).

    Names, not paths, parametrize the tests, so no machine path ends up in
    test ids or in the results.
    """
    folder = shared_traces_dir()
    if folder is None:
        return []
    return sorted({p.name for pattern in TRACE_PATTERNS for p in folder.glob(pattern) if p.is_file()})


_TRACES: dict[tuple[str, int | None], Trace] = {}


def load_trace(name: str, limit: int | None) -> Trace:
    """A shared trace, cut to its first ``limit`` requests (None: whole), read once per run."""
    key = (name, limit)
    if key not in _TRACES:
        folder = shared_traces_dir()
        assert folder is not None
        full = TraceFile(folder / name).load()
        keys = full.keys if limit is None else full.keys[:limit]
        label = full.name if limit is None or limit >= len(full.keys) else f"{full.name}[:{limit}]"
        _TRACES[key] = Trace(name=label, keys=keys, credit=full.credit)
    return _TRACES[key]


#: One case per shared trace, or a single case that skips when there are none.
TRACE_CASES: list[str | None] = list(shared_trace_names()) or [None]


@pytest.mark.traces
@pytest.mark.parametrize("fraction", SIZE_FRACTIONS, ids=[f"size-{f:.0%}" for f in SIZE_FRACTIONS])
@pytest.mark.parametrize("trace_name", TRACE_CASES, ids=[name or "no-shared-traces" for name in TRACE_CASES])
@pytest.mark.parametrize("policy", POLICIES)
def test_replay_trace(
    benchmark: Any, bench_mode: Mode, smoke: bool, policy: str, trace_name: str | None, fraction: float
) -> None:
    if trace_name is None:
        pytest.skip("no shared traces (../shared/traces or QCACHE_TRACES_DIR)")
    trace = load_trace(trace_name, 5_000 if smoke else bench_mode.trace_requests)
    benchmark.group = f"eviction: replay {trace_name}, cache {fraction:.0%} of its distinct keys"
    replay(benchmark, trace, policy, fraction, rounds=1)
