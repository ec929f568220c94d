"""LRU kept in the store's own data while the store has one partition.

A store built with the policy name ``LRU`` holds its entries in an ordered
dict whose order is the recency order, instead of a plain dict beside an
:class:`LRUPolicy`'s ordered map (about 40 bytes an entry less). It must
decide exactly as :class:`LRUPolicy` does, hit for hit, and hand the order to
an :class:`LRUPolicy` of its own, unchanged, when a second partition opens or
the partition is resized; a caller holding the hit path's ``lookup`` follows.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from typing import Any

from qcache.memory.clock import ManualClock
from qcache.memory.policies.classic import LRUPolicy
from qcache.memory.store import DEFAULT_PARTITION, MemoryStore, _DataOrderLRU


def pair(clock: ManualClock, entries: int = 50, max_bytes: int = 4_000) -> tuple[MemoryStore, MemoryStore]:
    """The store keeping LRU in its data, and one driving an LRUPolicy instance (the general path)."""
    ordered = MemoryStore(entries, max_bytes, "LRU", clock=clock)
    general = MemoryStore(entries, max_bytes, LRUPolicy(entries), clock=clock)
    assert type(ordered._default.policy) is _DataOrderLRU
    assert type(general._default.policy) is LRUPolicy
    return ordered, general


def run_same(stores: tuple[MemoryStore, MemoryStore], rng: random.Random, clock: ManualClock, steps: int,
             partitions: tuple[str | None, ...] = (None,)) -> None:
    """The same random reads, writes, deletes and clock moves on both stores; every answer must match."""
    ordered, general = stores
    for step in range(steps):
        key = f"k{rng.randrange(120)}"
        roll = rng.random()
        if roll < 0.45:
            assert ordered.get(key, "absent") == general.get(key, "absent"), step
        elif roll < 0.85:
            size, ttl = rng.randrange(1, 200), rng.choice([None, 5.0, 30.0])
            partition = rng.choice(partitions)
            assert ordered.set(key, (key, step), size, ttl, None, partition) == general.set(
                key, (key, step), size, ttl, None, partition), step
        elif roll < 0.95:
            assert ordered.delete(key) == general.delete(key), step
        else:
            clock.advance(rng.choice([0.5, 3.0, 10.0]))
        if step % 97 == 0:
            assert sorted(ordered.keys()) == sorted(general.keys()), step
    assert sorted(ordered.keys()) == sorted(general.keys())
    assert ordered.stats() == general.stats()
    ordered.check_invariants()
    general.check_invariants()


def test_the_data_order_decides_as_lru_policy_does() -> None:
    clock = ManualClock(1000.0)
    stores = pair(clock)
    run_same(stores, random.Random(3), clock, 6_000)
    assert stores[0].stats().evictions > 500  # the bounds were in play, not just the TTLs
    assert type(stores[0]._default.policy) is _DataOrderLRU  # still one partition: still the data's order


def test_a_second_partition_takes_the_order_out_of_the_data_unchanged() -> None:
    clock = ManualClock(1000.0)
    stores = pair(clock)
    ordered = stores[0]
    lookups: list[Callable[[str], Any]] = [ordered.hit_path().lookup]
    ordered.follow_lookup(lookups.append)
    run_same(stores, random.Random(5), clock, 2_000)
    before = ordered.hit_path().lookup
    run_same(stores, random.Random(6), clock, 4_000, partitions=(None, "other"))
    assert type(ordered._default.policy) is LRUPolicy and type(ordered._data) is dict
    assert len(lookups) == 2 and lookups[-1] == ordered.hit_path().lookup != before
    ordered.set("after", "new", 1, None)
    assert lookups[-1]("after") is not None and before("after") is None  # the follower has the live data


def test_a_lookup_taken_before_the_move_finds_nothing_after_it() -> None:
    # A hit that read the old lookup just before the move must not serve an entry deleted after it:
    # the old dict is emptied, so such a read falls through to the store's locked path.
    store = MemoryStore(50, 4_000, "LRU", clock=ManualClock(1000.0))
    store.set("k", "v", 1, None)
    old_lookup = store.hit_path().lookup
    assert old_lookup("k") is not None
    store.set("x", "y", 1, None, partition="other")  # a second partition: the order leaves the data
    store.delete("k")
    assert old_lookup("k") is None and store.get("k") is None


def test_resizing_the_partition_takes_the_order_out_of_the_data_unchanged() -> None:
    clock = ManualClock(1000.0)
    stores = pair(clock)
    run_same(stores, random.Random(7), clock, 2_000)
    for store in stores:
        store.set_partition_cap(DEFAULT_PARTITION, 10)  # the ten most recent stay, in both
    assert sorted(stores[0].keys()) == sorted(stores[1].keys())
    assert type(stores[0]._default.policy) is LRUPolicy
    run_same(stores, random.Random(8), clock, 2_000)


def test_the_data_order_saves_the_second_ordered_map() -> None:
    def per_entry(policy: Any) -> float:
        store = MemoryStore(20_000, 10**9, policy, clock=ManualClock(0.0))
        keys = [f"key:{i:06d}" for i in range(10_000)]
        tracemalloc.start()
        try:
            for key in keys:
                store.set(key, None, 10, 60.0)
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(store) == 10_000
        return held / 10_000

    ordered, general = per_entry("LRU"), per_entry(LRUPolicy(20_000))
    assert ordered + 16 <= general, (ordered, general)  # the plain dict's share of its table: 20-40 bytes
