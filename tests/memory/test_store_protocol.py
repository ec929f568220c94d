"""How the store drives its policy: the exact calls, LRU order, admission refusal."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.store import MemoryStore

from .support import RecordingLRU, RejectNewcomer


class LyingPolicy(RejectNewcomer):
    """A broken policy naming a key the store never held."""

    def victim(self) -> Hashable:
        super().victim()
        return "no-such-key"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


def test_driver_protocol_calls(clock: ManualClock) -> None:
    policy = RecordingLRU(2)
    store = MemoryStore(2, 100, policy, clock=clock)

    store.set("a", 1, 10, None)
    store.set("a", 2, 10, None)
    assert policy.take() == [("insert", "a"), ("access", "a")]

    store.get("a")
    store.get_entry("a")
    store.get("b")
    store.get_entry("b")
    # Hits wait in the read buffer until the next locked operation; LRU only needs a key's last one.
    assert policy.take() == [("access", "a"), ("miss", "b"), ("miss", "b")]

    # Peeks are not reads.
    assert "a" in store
    assert store.peek("a") is not None
    assert store.peek("b") is None
    store.remaining_ttl("a")
    store.keys()
    store.stats()
    assert policy.take() == []

    # Over the bound: the policy names the victim and the store drops it
    # without calling on_remove (the policy already forgot it).
    store.set("b", 1, 10, None)
    store.set("c", 1, 10, None)
    assert policy.take() == [("insert", "b"), ("insert", "c"), ("victim", "a")]
    assert store.keys() == ["b", "c"]

    assert store.delete("b") is True
    assert store.delete("b") is False
    assert policy.take() == [("remove", "b")]

    # Expiry found by a read: removed, then the lookup is a miss.
    store.set("t", 1, 10, ttl=5)
    clock.advance(5)
    assert store.get("t") is None
    assert policy.take() == [("insert", "t"), ("remove", "t"), ("miss", "t")]

    # Expiry found by cleanup.
    store.set("u", 1, 10, ttl=5)
    clock.advance(5)
    assert store.cleanup() == 1
    assert policy.take() == [("insert", "u"), ("remove", "u")]

    # An oversize overwrite drops the old value through on_remove.
    store.set("big", 1, 10, None)
    assert policy.take() == [("insert", "big")]
    assert store.set("big", 2, 101, None) is False
    assert policy.take() == [("remove", "big")]

    store.delete_where(lambda key: key == "c")
    assert policy.take() == [("remove", "c")]

    store.clear()
    assert policy.take() == [("clear", None)]


def test_lru_order_is_respected() -> None:
    store = MemoryStore(3, 10**6, "LRU")
    for key in "abc":
        store.set(key, key, 1, None)
    store.get("a")  # b is now the least recently used
    store.set("d", "d", 1, None)
    assert sorted(store.keys()) == ["a", "c", "d"]
    store.set("c", "c2", 1, None)  # an overwrite counts as a use
    store.set("e", "e", 1, None)
    assert sorted(store.keys()) == ["c", "d", "e"]
    assert store.stats().evictions == 2


class RecordingCounts(RejectNewcomer):
    """A policy that counts every hit (as frequency policies do): no repeat may be dropped."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.accesses: list[Hashable] = []

    def on_access(self, key: Hashable) -> None:
        self.accesses.append(key)


def test_buffered_hits_reach_the_policy_in_order_before_any_decision(clock: ManualClock) -> None:
    policy = RecordingCounts(10)
    store = MemoryStore(10, 100, policy, clock=clock)
    for key in "abc":
        store.set(key, key, 1, None)
    for key in "abab":
        assert store.get(key) == key
    assert store.get_entry("c") is not None
    assert policy.accesses == []  # lock-free hits, not told yet
    store.set("d", "d", 1, None)  # a write replays them first, every one, in order
    assert policy.accesses == ["a", "b", "a", "b", "c"]
    for _ in range(200):  # a reader that fills the buffer replays it itself
        store.get("a")
    assert 136 <= len(policy.accesses) <= 205
    store.delete("a")
    assert policy.accesses.count("a") == 202
    store.get("a")
    assert policy.accesses.count("a") == 202  # a miss is no hit


def test_byte_pressure_evicts_in_policy_order() -> None:
    store = MemoryStore(100, 100, "FIFO")
    for i in range(5):
        store.set(f"k{i}", i, 20, None)
    store.set("big", "B", 50, None)
    # FIFO gives up the three oldest, no more than needed.
    assert sorted(store.keys()) == ["big", "k3", "k4"]
    assert store.total_bytes == 90


def test_admission_rejection_of_a_newcomer(clock: ManualClock) -> None:
    policy = RejectNewcomer(3)
    store = MemoryStore(3, 100, policy, clock=clock)
    for key in "abc":
        assert store.set(key, key, 10, ttl=50)
    assert store.set("d", "d", 10, ttl=50) is False
    assert "d" not in store
    assert sorted(store.keys()) == ["a", "b", "c"]
    stats = store.stats()
    assert (stats.rejected, stats.evictions, stats.entries, stats.bytes) == (1, 0, 3, 30)
    assert len(policy) == 3
    store.check_invariants()  # the refused entry left no live heap pair behind
    clock.advance(60)
    assert store.cleanup() == 3
    assert len(store) == 0 == len(policy)


def test_admission_rejection_under_byte_pressure(clock: ManualClock) -> None:
    policy = RejectNewcomer(10)
    store = MemoryStore(10, 100, policy, clock=clock)
    store.set("a", "a", 60, None)
    assert store.set("b", "b", 50, None) is False
    assert store.keys() == ["a"]
    assert store.total_bytes == 60
    assert store.stats().rejected == 1


def test_a_policy_out_of_step_is_reported() -> None:
    store = MemoryStore(1, 100, LyingPolicy(1))
    store.set("a", 1, 1, None)
    with pytest.raises(RuntimeError, match="out of step"):
        store.set("b", 2, 1, None)


def test_the_hit_path_is_the_store_s_own_state(clock: ManualClock) -> None:
    """What a caller inlining get_entry's fast path holds is live: the data, the clock, the read buffer."""
    policy = RecordingCounts(10)
    store = MemoryStore(10, 100, policy, clock=clock)
    path = store.hit_path()
    store.set("a", 1, 1, ttl=5)
    entry = path.lookup("a")
    peeked = store.peek("a")
    # The stored tuple itself, in StoredEntry's field order (the store hands out a StoredEntry of it).
    assert entry is not None and peeked is not None and entry == peeked and entry[0] is peeked.value
    assert path.clock() == clock()
    path.reads.append("a")  # a hit noted the way get_entry notes it
    store.set("b", 2, 1, None)
    assert policy.accesses == ["a"]
    for _ in range(path.batch):
        path.reads.append("b")
    path.replay()
    assert policy.accesses == ["a"] + ["b"] * path.batch and path.reads == []
    clock.advance(5)
    assert path.lookup("a") is not None and store.get_entry("a") is None  # expiry is the caller's to check
