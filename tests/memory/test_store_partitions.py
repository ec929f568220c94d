"""Partitions of the L1 store: per-partition caps inside the global entry and byte bounds.

Most tests are parametrized over every registered policy and assert only
what must hold whichever key a policy picks (counts per partition, bounds,
accounting); the few that assume an order use LRU or FIFO explicitly.
"""

from __future__ import annotations

import random

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.partition import Partition, fullest
from qcache.memory.policies import available_policies, create_policy
from qcache.memory.policies.classic import LRUPolicy
from qcache.memory.store import DEFAULT_PARTITION, MAX_PARTITIONS, MemoryStore

from .support import RecordingLRU, RejectNewcomer, named


@pytest.fixture(params=available_policies())
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


def holding(store: MemoryStore, partition: str) -> set[str]:
    """The live keys of ``partition``, read without counting accesses."""
    found = set()
    for key in store.keys():
        entry = store.peek(key)
        assert entry is not None and entry.partition is not None
        if entry.partition.name == partition:
            found.add(key)
    return found


# ------------------------------------------------------------ a partition's own cap


def test_partition_cap_holds_while_the_global_bound_is_larger(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, policy_name, clock=clock, partition_caps={"search": 5})
    for i in range(20):
        store.set(f"d{i}", i, 10, None)
    for i in range(60):
        store.set(f"s{i}", i, 10, None, partition="search")
        assert store.stats().partitions["search"] <= 5
    stats = store.stats()
    assert stats.partitions == {DEFAULT_PARTITION: 20, "search": 5}
    assert stats.entries == 25 < stats.max_entries
    assert stats.evictions + stats.rejected == 55
    assert len(holding(store, "search")) == 5
    # The cap took its evictions from "search" only: every default entry is still there.
    assert holding(store, DEFAULT_PARTITION) == {f"d{i}" for i in range(20)}
    store.check_invariants()


def test_a_capped_partition_evicts_in_its_own_policy_order(clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, "LRU", clock=clock, partition_caps={"search": 3})
    store.set("old-default", 0, 1, None)  # older than every search key, yet not the victim
    for key in ("a", "b", "c"):
        store.set(key, key, 1, None, partition="search")
    store.get("a")  # b is now search's least recently used
    assert store.set("d", "d", 1, None, partition="search")
    assert holding(store, "search") == {"a", "c", "d"}
    assert "old-default" in store


def test_admission_can_refuse_a_newcomer_at_its_partition_cap(clock: ManualClock) -> None:
    store = MemoryStore(10, 10**6, RejectNewcomer(10), clock=clock, partition_caps={"search": 2})
    assert store.set("a", 1, 1, None, partition="search")
    assert store.set("b", 2, 1, None, partition="search")
    assert store.set("c", 3, 1, None, partition="search") is False
    assert "c" not in store
    assert holding(store, "search") == {"a", "b"}
    stats = store.stats()
    assert (stats.rejected, stats.evictions) == (1, 0)
    store.check_invariants()


def test_unpartitioned_store_keeps_one_default_partition(policy_name: str, clock: ManualClock) -> None:
    policy = create_policy(policy_name, 10)
    store = MemoryStore(10, 10**6, policy, clock=clock)
    for i in range(30):
        store.set(f"k{i}", i, 1, None)
    assert store.stats().partitions == {DEFAULT_PARTITION: 10}
    entry = store.peek(store.keys()[0])
    assert entry is not None and entry.partition is not None
    assert entry.partition.name == DEFAULT_PARTITION
    assert entry.partition.policy is policy  # the instance passed in is the one driven
    assert len(policy) == 10
    # Naming the default partition is the same as naming none.
    store.set("named", 1, 1, None, partition=DEFAULT_PARTITION)
    assert store.stats().partitions == {DEFAULT_PARTITION: 10}
    store.check_invariants()


# ------------------------------------------------------------ the global bounds across partitions


def test_global_entry_bound_holds_across_partitions(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(30, 10**6, policy_name, clock=clock, partition_caps={"a": 20, "b": 20})
    rng = random.Random(5)
    for step in range(600):
        partition = rng.choice(["a", "b", "c", None])
        store.set(f"k{rng.randint(0, 200)}", step, 1, None, partition=partition)
        stats = store.stats()
        assert stats.entries <= 30
        assert stats.partitions.get("a", 0) <= 20 and stats.partitions.get("b", 0) <= 20
        assert sum(stats.partitions.values()) == stats.entries
    stats = store.stats()
    assert stats.evictions + stats.rejected > 0  # the bounds were hit, not just approached
    store.check_invariants()


def test_a_newcomer_partition_takes_its_share_from_the_fullest(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(10, 10**6, policy_name, clock=clock)
    for i in range(10):
        store.set(f"a{i}", i, 1, None, partition="a")
    for i in range(5):
        assert store.set(f"b{i}", i, 1, None, partition="b")  # "a" is over its share: it gives way
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "a": 5, "b": 5}
    # Equal shares reached: from now on, "b" pays for its own growth.
    for i in range(5, 40):
        store.set(f"b{i}", i, 1, None, partition="b")
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "a": 5, "b": 5}
    assert len(holding(store, "a")) == 5
    store.check_invariants()


def test_shares_follow_the_caps_and_a_partition_within_its_share_is_left_alone(
    policy_name: str, clock: ManualClock
) -> None:
    # Capacities 12 and 4: fair shares of the 12-entry bound are 9 and 3.
    store = MemoryStore(12, 10**6, policy_name, clock=clock, partition_caps={"small": 4})
    for i in range(4):
        store.set(f"s{i}", i, 1, None, partition="small")
    for i in range(200):  # a hot partition hammering the store
        store.set(f"h{i}", i, 1, None, partition="hot")
        assert store.stats().partitions["small"] >= 3
    partitions = store.stats().partitions
    assert (partitions["small"], partitions["hot"]) == (3, 9)
    survivors = holding(store, "small")
    for i in range(200, 400):
        store.set(f"h{i}", i, 1, None, partition="hot")
    assert holding(store, "small") == survivors  # at its share: never touched again
    store.check_invariants()


def test_byte_bound_holds_across_partitions(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(1000, 1000, policy_name, clock=clock)
    for i in range(10):
        store.set(f"a{i}", i, 100, None, partition="a")
    for i in range(5):
        assert store.set(f"b{i}", i, 100, None, partition="b")
        assert store.total_bytes <= 1000
    stats = store.stats()
    assert stats.bytes == 1000
    assert stats.partitions == {DEFAULT_PARTITION: 0, "a": 5, "b": 5}
    rng = random.Random(11)
    for step in range(500):
        store.set(f"k{rng.randint(0, 99)}", step, rng.randint(0, 150), None, partition=rng.choice("abc"))
        assert store.total_bytes <= 1000
    store.check_invariants()


def test_byte_pressure_is_shared_by_bytes_not_by_entry_count(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(100, 1000, policy_name, clock=clock)
    store.set("big0", 0, 400, None, partition="big")
    store.set("big1", 1, 400, None, partition="big")
    for i in range(20):
        store.set(f"small{i}", i, 10, None, partition="small")
    assert store.total_bytes == 1000
    # 1,010 bytes: "big" holds fewer entries but far more bytes, so it gives way.
    assert store.set("small20", 20, 10, None, partition="small")
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "big": 1, "small": 21}
    assert store.total_bytes == 610
    store.check_invariants()


# ------------------------------------------------------------ caps changing at runtime


def test_lowering_a_cap_shrinks_the_partition_at_once(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, policy_name, clock=clock, partition_caps={"search": 10})
    for i in range(10):
        store.set(f"s{i}", i, 7, None, partition="search")
        store.set(f"d{i}", i, 7, None)
    before = store.stats()
    store.set_partition_cap("search", 4)
    after = store.stats()
    assert after.partitions == {DEFAULT_PARTITION: 10, "search": 4}
    assert after.evictions == before.evictions + 6
    assert after.bytes == 14 * 7
    assert store.partition_cap("search") == 4
    store.check_invariants()
    for i in range(10, 40):  # the new cap holds for later writes, with the rebuilt policy
        store.set(f"s{i}", i, 7, None, partition="search")
        assert store.stats().partitions["search"] <= 4
    store.check_invariants()
    store.set_partition_cap("search", 8)
    for i in range(40, 80):
        store.set(f"s{i}", i, 7, None, partition="search")
    assert store.stats().partitions == {DEFAULT_PARTITION: 10, "search": 8}
    store.set_partition_cap("search", None)  # back to the global bound only
    for i in range(80, 200):
        store.set(f"s{i}", i, 7, None, partition="search")
    assert store.stats().partitions["search"] + store.stats().partitions[DEFAULT_PARTITION] == 100
    assert store.partition_cap("search") is None
    store.check_invariants()


def test_a_shrink_keeps_what_the_policy_values_most_and_its_order(clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, "LRU", clock=clock)
    for i in range(10):
        store.set(f"k{i}", i, 1, None, partition="search")
    store.get("k0")  # now the most recently used
    store.set_partition_cap("search", 4)
    assert holding(store, "search") == {"k7", "k8", "k9", "k0"}
    # The rebuilt policy kept the recency order: k7 is still the next to go.
    store.set("k10", 10, 1, None, partition="search")
    assert holding(store, "search") == {"k8", "k9", "k0", "k10"}


def test_a_shrink_drops_expired_entries_before_live_ones(clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, "FIFO", clock=clock)
    for i in range(6):
        store.set(f"live{i}", i, 1, None, partition="search")
    for i in range(4):
        store.set(f"brief{i}", i, 1, 5.0, partition="search")
    clock.advance(10)
    store.set_partition_cap("search", 6)
    assert holding(store, "search") == {f"live{i}" for i in range(6)}
    stats = store.stats()
    assert (stats.expirations, stats.evictions) == (4, 0)
    store.check_invariants()


def test_a_cap_set_before_the_first_write_applies_to_it(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(50, 10**6, policy_name, clock=clock)
    store.set_partition_cap("embedding", 3)
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "embedding": 0}
    for i in range(10):
        store.set(f"e{i}", i, 1, None, partition="embedding")
    assert store.stats().partitions["embedding"] == 3
    store.check_invariants()


def test_a_cap_above_the_global_bound_is_clipped_to_it(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(8, 10**6, policy_name, clock=clock, partition_caps={"file": 10_000})
    for i in range(30):
        store.set(f"f{i}", i, 1, None, partition="file")
    entry = store.peek(next(iter(holding(store, "file"))))
    assert entry is not None and entry.partition is not None
    assert (entry.partition.cap, entry.partition.capacity) == (10_000, 8)
    assert entry.partition.policy.capacity == 8
    assert store.stats().partitions["file"] == 8
    # Still a no-op for the policy: the capacity it was built for does not change.
    policy = entry.partition.policy
    store.set_partition_cap("file", 9_000)
    assert entry.partition.policy is policy
    store.check_invariants()


# ------------------------------------------------------------ entries moving, leaving, coming back


def test_an_overwrite_can_move_a_key_to_another_partition(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(10, 10**6, policy_name, clock=clock, partition_caps={"a": 2, "b": 2})
    store.set("k", "in a", 5, None, partition="a")
    store.set("k", "in b", 7, None, partition="b")
    stats = store.stats()
    assert stats.partitions == {DEFAULT_PARTITION: 0, "a": 0, "b": 1}
    entry = named(store.get_entry("k"))
    assert entry is not None and entry.partition is not None
    assert (entry.value, entry.partition.name) == ("in b", "b")
    assert (entry.partition.bytes, stats.bytes) == (7, 7)
    store.check_invariants()


def test_deletes_expiry_cleanup_and_clear_keep_partition_counts(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(100, 10**6, policy_name, clock=clock, partition_caps={"a": 10})
    for i in range(10):
        store.set(f"a{i}", i, 3, 5.0 if i % 2 else None, partition="a")
        store.set(f"b{i}", i, 3, 5.0 if i % 2 else None, partition="b")
    assert store.delete("a0") and store.delete("b0")
    assert store.delete_where(lambda key: key in {"a2", "b2", "b4"}) == 3
    clock.advance(6)
    assert store.get("a1") is None  # expired, reclaimed on read
    assert store.cleanup() == 9
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "a": 3, "b": 2}
    store.check_invariants()
    store.clear()
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "a": 0, "b": 0}
    for i in range(15):
        store.set(f"a{i}", i, 3, None, partition="a")
    assert store.stats().partitions["a"] == 10
    store.check_invariants()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_partitioned_workload_keeps_every_invariant(
    policy_name: str, clock: ManualClock, seed: int
) -> None:
    """Whatever the policies evict, caps, bounds and accounting hold and reads see the last write."""
    rng = random.Random(seed)
    caps = {"a": 6, "b": 15}
    store = MemoryStore(25, 1200, policy_name, clock=clock, partition_caps=caps)
    written: dict[str, tuple[object, str]] = {}
    keys = [f"k{i}" for i in range(80)]
    for step in range(2500):
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.5:
            partition = rng.choice(["a", "b", "c", None])
            ttl = rng.choice([None, 3.0, 30.0])
            stored = store.set(key, step, rng.randint(0, 100), ttl, partition=partition)
            written[key] = (step, partition or DEFAULT_PARTITION)
            assert (store.get(key) == step) is stored
        elif op < 0.75:
            value = store.get(key)
            if value is not None:
                assert value == written[key][0]
        elif op < 0.82:
            store.delete(key)
            written.pop(key, None)
        elif op < 0.9:
            clock.advance(rng.choice([0.5, 2.0]))
        elif op < 0.95:
            name = rng.choice(["a", "b"])
            store.set_partition_cap(name, rng.choice([None, 1, 4, 10, 40]))
        else:
            store.cleanup()
        partitions = store.stats().partitions
        for name in ("a", "b"):
            cap = store.partition_cap(name)
            assert cap is None or partitions.get(name, 0) <= cap
        assert len(store) <= 25 and store.total_bytes <= 1200
    store.check_invariants()
    for key in store.keys():
        entry = named(store.get_entry(key))
        assert entry is not None and entry.partition is not None
        assert (entry.value, entry.partition.name) == written[key]


# ------------------------------------------------------------ policy protocol per partition



def test_each_partition_policy_hears_only_about_its_own_keys(clock: ManualClock) -> None:
    default = RecordingLRU(10)
    store = MemoryStore(10, 10**6, default, clock=clock, partition_caps={"a": 1})
    store.set("x", 1, 1, None)
    store.set("y", 1, 1, None, partition="a")
    a_entry = store.peek("y")
    assert a_entry is not None and a_entry.partition is not None
    a = a_entry.partition.policy
    assert isinstance(a, RecordingLRU) and a is not default and a.capacity == 1
    store.get("y")
    store.get("x")
    store.get("nowhere")  # an absent key belongs to no partition: the default hears of it
    store.set("z", 1, 1, None, partition="a")  # over a's cap of 1: a's victim is y
    store.set("x", 2, 1, None, partition="a")  # x moves from default to a
    assert default.calls == [("insert", "x"), ("access", "x"), ("miss", "nowhere"), ("remove", "x")]
    assert a.calls == [
        ("insert", "y"),
        ("access", "y"),
        ("insert", "z"),
        ("victim", "y"),
        ("insert", "x"),
        ("victim", "z"),
    ]


def test_a_policy_instance_that_needs_more_than_a_capacity_is_refused_clearly(clock: ManualClock) -> None:
    class NeedsOptions(LRUPolicy):
        def __init__(self, capacity: int, flavour: str) -> None:
            super().__init__(capacity)

    policy = NeedsOptions(10, "x")
    store = MemoryStore(10, 100, policy, clock=clock)
    for i in range(8):
        store.set(f"k{i}", i, 1, None)
    with pytest.raises(TypeError, match="registry name"):
        store.set("k", 1, 1, None, partition="a")
    with pytest.raises(TypeError, match="registry name"):
        store.set_partition_cap(DEFAULT_PARTITION, 5)  # a rebuild would need a new instance
    # Neither attempt changed anything: same policy, same entries, no cap recorded.
    assert len(store) == 8 == len(policy)
    assert store.partition_cap(DEFAULT_PARTITION) is None
    store.check_invariants()


# ------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("caps", "error"),
    [
        ({"a": 0}, ValueError),
        ({"a": -3}, ValueError),
        ({"a": 2.5}, TypeError),
        ({"a": True}, TypeError),
        ({"": 3}, ValueError),
        ({3: 3}, TypeError),
        ([("a", 3)], TypeError),
    ],
)
def test_bad_partition_caps_are_refused(caps: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        MemoryStore(10, 100, partition_caps=caps)  # type: ignore[arg-type]


def test_bad_partition_arguments_change_nothing(clock: ManualClock) -> None:
    store = MemoryStore(10, 100, clock=clock, partition_caps={"a": 2})
    with pytest.raises(TypeError):
        store.set("k", 1, 1, None, partition=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.set("k", 1, 1, None, partition="")
    with pytest.raises(ValueError):
        store.set_partition_cap("a", 0)
    with pytest.raises(TypeError):
        store.set_partition_cap(None, 3)  # type: ignore[arg-type]
    assert len(store) == 0
    assert store.partition_cap("a") == 2
    assert store.stats().partitions == {DEFAULT_PARTITION: 0, "a": 0}


def test_partitions_are_limited_in_number(clock: ManualClock) -> None:
    store = MemoryStore(10, 100, "LRU", clock=clock)
    for i in range(MAX_PARTITIONS - 1):
        store.set_partition_cap(f"p{i}", 1)
    with pytest.raises(ValueError, match="at most"):
        store.set("k", 1, 1, None, partition="one-too-many")
    with pytest.raises(ValueError, match="at most"):
        store.set_partition_cap("one-too-many", 1)
    store.set("k", 1, 1, None, partition="p0")  # known partitions still work
    assert "k" in store
    with pytest.raises(ValueError, match="at most"):
        MemoryStore(10, 100, partition_caps={f"p{i}": 1 for i in range(MAX_PARTITIONS)})


# ------------------------------------------------------------ the fair-share rule itself


def make_partition(name: str, capacity: int, entries: int, size: int) -> Partition:
    part = Partition(name, None, capacity, create_policy("FIFO", capacity))
    part.entries, part.bytes = entries, size
    return part


def test_fullest_is_relative_to_capacity() -> None:
    big = make_partition("big", 100, 60, 600)
    small = make_partition("small", 10, 8, 40)
    assert fullest([big, small], by_entries=True) is small  # 8/10 of its capacity against 60/100
    assert fullest([big, small], by_entries=False) is big  # 6 bytes per slot of capacity against 4


def test_fullest_skips_empty_partitions_and_breaks_ties_by_age() -> None:
    first = make_partition("first", 10, 5, 50)
    second = make_partition("second", 20, 10, 100)
    empty = make_partition("empty", 1, 0, 0)
    assert fullest([empty, first, second], by_entries=True) is first
    assert fullest([empty, first, second], by_entries=False) is first
    assert fullest([empty], by_entries=True) is None
    assert fullest([], by_entries=False) is None
