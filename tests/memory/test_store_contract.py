"""Behaviour every MemoryStore must show whatever eviction policy drives it.

Parametrized over every registered policy, so a policy added to the registry
is held to the same contract without touching this file. Nothing here assumes
*which* key a policy evicts, only what must hold whichever it picks.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.policies import EvictionPolicy, available_policies, create_policy
from qcache.memory.store import _DRAIN_BATCH, DEFAULT_PARTITION, MemoryStore, StoredEntry

from .support import named


@pytest.fixture(params=available_policies())
def policy_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


def make(
    policy_name: str,
    clock: ManualClock,
    max_entries: int = 100,
    max_bytes: int = 10_000,
    cleanup_interval: float = 300.0,
) -> tuple[MemoryStore, EvictionPolicy]:
    """A store driving a policy instance the test can inspect."""
    policy = create_policy(policy_name, max_entries)
    store = MemoryStore(
        max_entries, max_bytes, policy, clock=clock, cleanup_interval=cleanup_interval
    )
    return store, policy


# ------------------------------------------------------------------ bounds


def test_count_bound_holds_and_store_stays_full(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=50, max_bytes=10**9)
    for i in range(500):
        store.set(f"k{i}", i, 10, None)
        assert len(store) <= 50
    # Each insert adds one entry and evicts only down to the bound.
    assert len(store) == 50 == len(policy)
    stats = store.stats()
    assert stats.evictions + stats.rejected == 450
    assert stats.bytes == store.total_bytes == 500
    store.check_invariants()


def test_byte_bound_holds(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=1000, max_bytes=1000)
    rng = random.Random(7)
    for i in range(400):
        store.set(f"k{i}", i, rng.randint(1, 120), None)
        assert store.total_bytes <= 1000
    kept = {k: named(store.get_entry(k)) for k in store.keys()}
    assert sum(e.size for e in kept.values() if e) == store.total_bytes
    assert len(store) == len(policy)
    store.check_invariants()


def test_equal_sizes_fill_the_byte_bound_exactly(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=1000, max_bytes=1000)
    for i in range(100):
        store.set(f"k{i}", i, 100, None)
    assert len(store) == 10
    assert store.total_bytes == 1000


def test_one_big_entry_evicts_several_small_ones(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=100, max_bytes=100)
    for i in range(10):
        store.set(f"small{i}", i, 10, None)
    stored = store.set("big", "B", 95, None)
    assert store.total_bytes <= 100
    if stored:
        assert store.get("big") == "B"
        assert len(store) == 1  # 95 + any 10-byte entry would exceed 100
    assert len(store) == len(policy)
    store.check_invariants()


def test_oversize_entry_is_rejected_without_evicting(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=10, max_bytes=100)
    for i in range(5):
        assert store.set(f"k{i}", i, 10, None)
    assert store.set("huge", "x", 101, None) is False
    assert "huge" not in store
    assert sorted(store.keys()) == [f"k{i}" for i in range(5)]
    stats = store.stats()
    assert (stats.rejected, stats.evictions, stats.bytes) == (1, 0, 50)


def test_oversize_overwrite_drops_the_stale_value(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=10, max_bytes=100)
    store.set("k", "old", 10, None)
    store.set("other", "o", 10, None)
    assert store.set("k", "new", 500, None) is False
    assert store.get("k") is None  # never the superseded "old"
    assert store.get("other") == "o"
    assert store.total_bytes == 10
    assert len(policy) == 1


def test_entry_of_exactly_max_bytes_fits(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=10, max_bytes=100)
    store.set("a", 1, 40, None)
    stored = store.set("b", 2, 100, None)
    assert store.total_bytes <= 100
    if stored:
        assert store.keys() == ["b"]


def test_zero_size_entries_are_bounded_by_count(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=5, max_bytes=1)
    for i in range(20):
        store.set(f"k{i}", i, 0, None)
    assert len(store) == 5
    assert store.total_bytes == 0


# --------------------------------------------------------------------- TTL


def test_expired_entries_are_never_returned(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock)
    store.set("k", "v", 10, ttl=10)
    clock.advance(9.999)
    assert store.get("k") == "v"
    assert "k" in store
    clock.advance(0.001)  # exactly at expires_at: already gone
    assert "k" not in store
    assert store.get("k", "miss") == "miss"
    assert store.get_entry("k") is None
    with pytest.raises(KeyError):
        store.remaining_ttl("k")
    # The read that found it expired also reclaimed it.
    assert len(store) == 0 == len(policy)
    assert store.total_bytes == 0
    assert store.stats().expirations == 1


def test_get_entry_and_peeks_see_no_expired_entry(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("gone", 1, 10, ttl=5)
    store.set("kept", 2, 10, ttl=50)
    clock.advance(5)
    assert store.keys() == ["kept"]
    assert "gone" not in store
    assert store.get_entry("gone") is None
    assert store.delete("gone") is False  # nothing live was removed
    assert store.stats().expirations == 1


def test_cleanup_reclaims_without_reads(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=1000, max_bytes=10**6)
    for i in range(300):
        store.set(f"short{i}", i, 7, ttl=10)
    for i in range(50):
        store.set(f"long{i}", i, 3, ttl=100)
    for i in range(20):
        store.set(f"forever{i}", i, 1, None)
    assert store.cleanup() == 0
    clock.advance(10)
    assert store.cleanup() == 300  # more than one drain batch
    assert len(store) == 70 == len(policy)
    assert store.total_bytes == 50 * 3 + 20
    clock.advance(1000)
    assert store.cleanup() == 50
    assert sorted(store.keys()) == sorted(f"forever{i}" for i in range(20))
    assert store.stats().expirations == 350
    store.check_invariants()


def test_periodic_drain_runs_on_set_after_interval(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=10_000, max_bytes=10**6, cleanup_interval=60)
    count = _DRAIN_BATCH * 3
    for i in range(count):
        store.set(f"k{i}", i, 1, ttl=5)
    clock.advance(30)  # expired, but the interval has not elapsed: no sweep yet
    store.set("trigger0", 0, 1, None)
    assert len(store) == count + 1
    clock.advance(30)
    store.set("trigger1", 1, 1, None)
    # One bounded batch per set, not the whole backlog at once...
    assert count + 2 - _DRAIN_BATCH <= len(store) < count + 2
    for i in range(10):
        store.set(f"more{i}", i, 1, None)
    # ...until the backlog is gone.
    assert len(store) == 12
    assert store.stats().expirations == count


def test_expired_entries_go_before_live_ones(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=10, max_bytes=10**6)
    for i in range(5):
        store.set(f"stale{i}", i, 1, ttl=1)
    for i in range(5):
        store.set(f"live{i}", i, 1, ttl=100)
    clock.advance(2)
    for i in range(5):
        assert store.set(f"new{i}", i, 1, ttl=100)
    stats = store.stats()
    assert (stats.expirations, stats.evictions) == (5, 0)
    assert sorted(store.keys()) == sorted([f"live{i}" for i in range(5)] + [f"new{i}" for i in range(5)])


def test_overwrite_updates_value_size_expiry_and_meta(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock)
    store.set("k", "v1", 100, ttl=10, meta=("tag:a",))
    clock.advance(5)
    store.set("k", "v2", 30, ttl=20, meta=("tag:b",))
    assert store.total_bytes == 30
    assert len(store) == 1 == len(policy)
    assert store.remaining_ttl("k") == pytest.approx(20)
    entry = named(store.get_entry("k"))
    assert entry is not None and entry.partition is not None
    assert entry == StoredEntry("v2", 30, 1025.0, ("tag:b",), entry.partition)
    assert entry.partition.name == DEFAULT_PARTITION
    clock.advance(15)  # past the first expiry
    assert store.cleanup() == 0
    assert store.get("k") == "v2"
    clock.advance(5)
    assert store.get("k") is None


def test_stale_heap_pairs_never_expire_newer_writes(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("immortal", 1, 1, ttl=10)
    store.set("immortal", 2, 1, None)
    store.set("reborn", 1, 1, ttl=10)
    store.delete("reborn")
    store.set("reborn", 2, 1, ttl=100)
    clock.advance(50)
    assert store.cleanup() == 0
    assert store.get("immortal") == 2
    assert store.remaining_ttl("immortal") is None
    assert store.get("reborn") == 2
    assert store.remaining_ttl("reborn") == pytest.approx(50)


def test_overwrites_move_the_reclaiming_of_an_entry_both_ways(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("later", 1, 1, ttl=10)
    store.set("later", 2, 1, ttl=100)  # the pair at 10 stays; it moves to 100 when popped
    store.set("sooner", 1, 1, ttl=100)
    store.set("sooner", 2, 1, ttl=5)  # brought forward: a pair at 5 is needed
    store.check_invariants()
    clock.advance(6)
    assert store.cleanup() == 1  # "sooner", reclaimed without being read
    assert store.keys() == ["later"]
    clock.advance(10)
    assert store.cleanup() == 0
    assert store.get("later") == 2
    store.check_invariants()
    clock.advance(84)  # at 100: "later" expires now
    assert store.cleanup() == 1
    assert len(store) == 0
    store.check_invariants()


def test_expiry_heap_does_not_grow_under_overwrite_churn(
    policy_name: str, clock: ManualClock
) -> None:
    store, _ = make(policy_name, clock, max_entries=100, max_bytes=10**6)
    keys = [f"k{i}" for i in range(20)]

    def churn(rounds: int) -> None:
        for r in range(rounds):
            # A fresh expiry each time, so every overwrite leaves a stale pair.
            store.set(keys[r % 20], r, 10, ttl=1000 + r)

    tracemalloc.start()
    try:
        churn(5_000)
        settled, _ = tracemalloc.get_traced_memory()
        churn(20_000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 20,000 uncompacted pairs would hold well over 1 MB.
    assert after - settled < 64 * 1024
    assert len(store) == 20
    store.check_invariants()


# ---------------------------------------------------- delete, clear, peeks


def test_delete(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock)
    store.set("a", 1, 10, ttl=30)
    store.set("b", 2, 20, None)
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.delete("never") is False
    assert store.keys() == ["b"]
    assert store.total_bytes == 20
    assert len(policy) == 1
    store.check_invariants()


def test_delete_where(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=5000, max_bytes=10**6)
    for i in range(2500):  # more than one deletion batch
        store.set(f"search:{i}", i, 2, ttl=100)
    for i in range(10):
        store.set(f"search:old{i}", i, 2, ttl=1)
        store.set(f"file:{i}", i, 3, None)
    clock.advance(1)
    removed = store.delete_where(lambda key: key.startswith("search:"))
    assert removed == 2500  # the expired matches are reclaimed, not counted
    assert sorted(store.keys()) == sorted(f"file:{i}" for i in range(10))
    assert store.total_bytes == 30
    assert len(policy) == 10
    assert store.delete_where(lambda key: False) == 0
    store.check_invariants()


def test_delete_where_propagates_predicate_errors(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("a", 1, 1, None)

    def broken(key: str) -> bool:
        raise LookupError("bad pattern")

    with pytest.raises(LookupError):
        store.delete_where(broken)
    assert store.get("a") == 1


def test_clear_keeps_counters(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock, max_entries=3)
    for i in range(5):
        store.set(f"k{i}", i, 1, ttl=10)
    evicted = store.stats().evictions + store.stats().rejected
    store.clear()
    assert len(store) == 0 == len(policy)
    assert store.keys() == []
    assert store.total_bytes == 0
    assert store.stats().evictions + store.stats().rejected == evicted == 2
    clock.advance(20)
    assert store.cleanup() == 0  # no ghost of a cleared entry comes back
    assert store.set("fresh", 1, 1, ttl=10)
    assert store.get("fresh") == 1
    store.check_invariants()


def test_remaining_ttl(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("timed", 1, 1, ttl=60)
    store.set("forever", 2, 1, None)
    clock.advance(15)
    assert store.remaining_ttl("timed") == pytest.approx(45)
    assert store.remaining_ttl("forever") is None
    with pytest.raises(KeyError):
        store.remaining_ttl("absent")


def test_hits_return_the_stored_object(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    value = {"rows": [1, 2, 3]}
    store.set("q", value, 40, ttl=60, meta={"tags": ("repo:1",)})
    assert store.get("q") is value
    entry = named(store.get_entry("q"))
    assert entry is not None
    assert entry.value is value
    assert (entry.size, entry.expires_at, entry.meta) == (40, 1060.0, {"tags": ("repo:1",)})


def test_policy_name_and_stats(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock, max_entries=4, max_bytes=999)
    assert store.policy_name == policy_name
    assert MemoryStore(4, 999, policy_name, clock=clock).policy_name == policy_name
    store.set("a", 1, 10, None)
    stats = store.stats()
    assert (stats.entries, stats.bytes, stats.max_entries, stats.max_bytes) == (1, 10, 4, 999)
    assert (stats.evictions, stats.expirations, stats.rejected) == (0, 0, 0)


# --------------------------------------------------------- random workload


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_workload_matches_a_model(policy_name: str, clock: ManualClock, seed: int) -> None:
    """Whatever the policy evicts, what remains is exactly the last live write."""
    rng = random.Random(seed)
    store, policy = make(policy_name, clock, max_entries=40, max_bytes=1500)
    written: dict[str, StoredEntry] = {}  # last write per key, absent once deleted
    keys = [f"k{i}" for i in range(120)]
    for step in range(3000):
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.45:
            ttl = rng.choice([None, 5.0, 50.0])
            size = rng.randint(0, 90)
            stored = store.set(key, (key, step), size, ttl, meta=step)
            expires_at = None if ttl is None else clock() + ttl
            written[key] = StoredEntry((key, step), size, expires_at, step)  # partition: compared apart
            assert (store.get(key) == (key, step)) is stored
        elif op < 0.75:
            value = store.get(key)
            if value is not None:
                assert value == written[key].value
        elif op < 0.85:
            store.delete(key)
            written.pop(key, None)
        elif op < 0.95:
            clock.advance(rng.choice([0.5, 2.0, 10.0]))
        elif op < 0.99:
            store.cleanup()
        else:
            wanted = f"k{rng.randint(0, 9)}"
            store.delete_where(lambda k: k.startswith(wanted))
            for k in [k for k in written if k.startswith(wanted)]:
                del written[k]
        assert len(store) <= 40
        assert store.total_bytes <= 1500
    now = clock()
    for key in store.keys():
        entry = named(store.get_entry(key))
        assert entry is not None and entry.partition is not None
        assert entry[:4] == written[key][:4]
        assert entry.partition.name == DEFAULT_PARTITION
        assert entry.expires_at is None or entry.expires_at > now
    assert len(store) == len(policy)
    store.check_invariants()


def test_delete_where_with_meta(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock)
    store.set("q1", 1, 1, None, meta=frozenset({"repo:1", "repo:2"}))
    store.set("q2", 2, 1, None, meta=frozenset({"repo:2"}))
    store.set("q3", 3, 1, None)
    seen: list[tuple[str, object]] = []

    def tagged(key: str, meta: object) -> bool:
        seen.append((key, meta))
        return isinstance(meta, frozenset) and "repo:2" in meta

    assert store.delete_where(tagged, with_meta=True) == 2
    assert store.keys() == ["q3"]
    assert sorted(seen, key=lambda pair: pair[0])[2] == ("q3", None)
    assert len(policy) == 1


def test_peek_sees_live_entries_without_side_effects(policy_name: str, clock: ManualClock) -> None:
    store, policy = make(policy_name, clock)
    store.set("k", "v", 10, ttl=10, meta="caller-key")
    peeked = store.peek("k")
    assert peeked is not None and peeked.partition is not None
    assert peeked == StoredEntry("v", 10, 1010.0, "caller-key", peeked.partition)
    assert store.peek("absent") is None
    clock.advance(10)
    assert store.peek("k") is None
    # Peeking found it expired but left reclaiming to reads and cleanup.
    assert len(store) == 1 == len(policy)
    assert store.cleanup() == 1


@pytest.mark.timeout(20)
def test_delete_where_predicate_may_use_the_store(policy_name: str, clock: ManualClock) -> None:
    store, _ = make(policy_name, clock)
    store.set("a", 1, 1, None, meta="drop")
    store.set("b", 2, 1, None, meta="keep")

    def by_meta(key: str) -> bool:
        entry = store.peek(key)  # would deadlock if the predicate ran under the lock
        return entry is not None and entry.meta == "drop"

    assert store.delete_where(by_meta) == 1
    assert store.keys() == ["b"]
