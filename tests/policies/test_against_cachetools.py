"""LRU, FIFO and LFU agree hit for hit with cachetools, an independent implementation."""

from __future__ import annotations

from collections.abc import Sequence

import cachetools
import pytest

from qcache.memory.policies import create_policy
from qcache.sim import HotSpot, Uniform, WithScans, Zipf, count_hits, run_policy

CACHETOOLS = {"LRU": cachetools.LRUCache, "FIFO": cachetools.FIFOCache, "LFU": cachetools.LFUCache}

WORKLOADS = [
    Zipf(keys=3000, requests=30000, exponent=0.9, seed=1),
    Zipf(keys=500, requests=20000, exponent=1.2, seed=2),
    Uniform(keys=800, requests=15000, seed=3),
    HotSpot(keys=2000, requests=20000, seed=4),
    WithScans(Zipf(keys=2000, requests=20000, exponent=0.8, seed=5), every=1500, length=300),
]


def cachetools_hits(name: str, keys: Sequence[int], capacity: int) -> int:
    cache = CACHETOOLS[name](maxsize=capacity)
    hits = 0
    for key in keys:
        if key in cache:
            cache[key]  # noqa: B018  (a read is what updates recency / frequency)
            hits += 1
        else:
            cache[key] = True
    return hits


@pytest.mark.parametrize("name", sorted(CACHETOOLS))
@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name.split("(")[0])
@pytest.mark.parametrize("capacity", [1, 7, 64, 450])
def test_same_hits_as_cachetools(name: str, workload: Zipf, capacity: int) -> None:
    keys = list(workload)
    expected = cachetools_hits(name, keys, capacity)
    assert 0 < expected < len(keys) or capacity == 1
    assert run_policy(create_policy(name, capacity), keys) == expected
    # The simulator's inlined fast paths must not drift from the policy objects.
    assert count_hits(name, keys, capacity) == expected
