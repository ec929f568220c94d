"""What keeps an L1 entry small and its write short: expiry queues, shared sizes, plain tuples, the unchecked set.

Expiry pairs of the TTLs in use live in FIFO queues rather than a heap of
tuples, equal sizes share one int object, and the facade writes through
``set_path`` without the checks of ``set``. None of it may change what the
store does: entries expire exactly when they should, in any mix of TTLs, and
the byte and entry accounting stay exact.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from typing import Any

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.policies import available_policies
from qcache.memory.store import _MAX_QUEUES, _SHARED_EXPIRY, _SHARED_SIZES, MemoryStore, StoredEntry, _ExpiryQueue

from .support import named


@pytest.fixture(params=available_policies())
def policy_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


def test_entries_of_many_ttls_expire_exactly_on_time(policy_name: str, clock: ManualClock) -> None:
    """More TTLs than queues (as with jitter), interleaved and rewritten both ways: each entry goes at its expiry."""
    store = MemoryStore(10_000, 10**9, policy_name, clock=clock)
    rng = random.Random(11)
    ttls = [float(t) for t in range(1, 3 * _MAX_QUEUES)] + [0.25, 2.5, 7.75]
    expiry: dict[str, float] = {}
    for step in range(1500):
        key = f"k{rng.randrange(400)}"
        ttl = rng.choice(ttls)
        store.set(key, step, 1, ttl)
        expiry[key] = clock() + ttl
        if step % 50 == 0:
            clock.advance(rng.choice([0.0, 0.1, 0.5]))
    store.check_invariants()
    while expiry:
        clock.advance(0.25)
        now = clock()
        due = {key for key, at in expiry.items() if at <= now}
        assert store.cleanup() == len(due)
        for key in due:
            del expiry[key]
        assert set(store.keys()) == set(expiry)
        assert len(store) == len(expiry)  # reclaimed, not only hidden
        store.check_invariants()


def test_a_clock_that_goes_back_still_expires_every_entry(policy_name: str) -> None:
    """Pairs that cannot join their queue in order (the clock went back) go to the heap and still count."""
    readings = [100.0]
    store = MemoryStore(1000, 10**9, policy_name, clock=lambda: readings[0])
    for i in range(20):
        store.set(f"late{i}", i, 1, 30.0)
    readings[0] = 90.0  # back by 10 s: these expire before the pairs already queued for 30 s
    for i in range(20):
        store.set(f"early{i}", i, 1, 30.0)
    store.check_invariants()
    readings[0] = 120.0
    assert store.cleanup() == 20
    assert sorted(store.keys()) == sorted(f"late{i}" for i in range(20))
    readings[0] = 130.0
    assert store.cleanup() == 20
    assert len(store) == 0
    store.check_invariants()


def test_queued_pairs_are_compacted_under_delete_churn(policy_name: str, clock: ManualClock) -> None:
    """Deleting and writing keys again with one TTL leaves stale queued pairs; they are compacted away."""
    store = MemoryStore(100, 10**9, policy_name, clock=clock)
    keys = [f"k{i}" for i in range(20)]

    def churn(rounds: int) -> None:
        for r in range(rounds):
            key = keys[r % 20]
            store.delete(key)
            store.set(key, r, 10, 60.0)

    tracemalloc.start()
    try:
        churn(5_000)
        settled, _ = tracemalloc.get_traced_memory()
        churn(20_000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - settled < 64 * 1024  # 20,000 stale pairs would hold over 300 KB
    store.check_invariants()
    clock.advance(60)
    assert store.cleanup() == 20
    assert len(store) == 0


def test_a_due_pair_of_an_entry_written_again_later_moves_to_its_new_expiry(
    policy_name: str, clock: ManualClock
) -> None:
    store = MemoryStore(100, 10**9, policy_name, clock=clock)
    store.set("k", 1, 1, 10.0)
    clock.advance(5)
    store.set("k", 2, 1, 10.0)  # same TTL, later: no new pair, the queued one stays at 1010
    clock.advance(6)  # 1011: the pair is due, the entry is not (1015)
    assert store.cleanup() == 0
    assert store.get("k") == 2
    store.check_invariants()
    clock.advance(4)
    assert store.cleanup() == 1
    assert len(store) == 0
    store.check_invariants()


def test_eviction_takes_expired_entries_of_a_queue_first(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(10, 10**9, policy_name, clock=clock)
    for i in range(5):
        store.set(f"short{i}", i, 1, 5.0)
    for i in range(5):
        store.set(f"long{i}", i, 1, 500.0)
    clock.advance(5)
    for i in range(5):
        store.set(f"new{i}", i, 1, 500.0)
    stats = store.stats()
    assert (stats.expirations, stats.evictions, stats.rejected) == (5, 0, 0)
    assert sorted(store.keys()) == sorted([f"long{i}" for i in range(5)] + [f"new{i}" for i in range(5)])
    store.check_invariants()


def test_equal_sizes_share_one_int_and_the_accounting_stays_exact(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(10_000, 10**9, policy_name, clock=clock)
    size = 1 << 20  # far above the ints CPython shares itself
    for i in range(100):
        store.set(f"k{i}", i, int(str(size)), None)  # a distinct int object each time
    first, last = named(store.get_entry("k0")), named(store.get_entry("k99"))
    assert first is not None and last is not None
    assert first.size == last.size == size and first.size is last.size
    for i in range(_SHARED_SIZES + 10):  # more distinct sizes than are remembered
        store.set(f"d{i}", i, 1000 + i, None)
    assert store.total_bytes == 100 * size + sum(1000 + i for i in range(_SHARED_SIZES + 10))
    store.set("k0", 0, 300, None)  # an overwrite that shrinks
    assert store.total_bytes == 99 * size + 300 + sum(1000 + i for i in range(_SHARED_SIZES + 10))
    store.check_invariants()


def held_per_entry(sizes: list[int], clock: ManualClock) -> float:
    """Bytes traced per entry of a store written with values of ``sizes`` (each size a fresh int)."""
    store = MemoryStore(100_000, 10**12, "LRU", clock=clock)
    keys = [f"k{i}" for i in range(len(sizes))]
    texts = [str(size) for size in sizes]
    gc.collect()
    tracemalloc.start()
    try:
        for key, text in zip(keys, texts, strict=True):
            store.set(key, None, int(text), 60.0)  # a new int object per write, as a caller's len() makes
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == len(sizes)
    return held / len(sizes)


def test_shared_sizes_cost_an_entry_no_int_of_its_own(clock: ManualClock) -> None:
    equal = held_per_entry([123_457] * 10_000, clock)
    distinct = held_per_entry([123_457 + i for i in range(10_000)], clock)
    # Each distinct size keeps an int of 28-32 bytes (and a slot in the bounded table); equal ones share one.
    assert distinct - equal >= 28, (equal, distinct)
    # The entry tuple, its expiry and a queued pair (about 8 bytes, not a 64-byte heap tuple and slot),
    # plus the store's and the policy's index: under 240 bytes (about 290 with a heap tuple and an int each).
    assert equal < 240, equal


def test_an_expiry_queue_keeps_one_time_per_run_of_keys_sharing_it() -> None:
    queue = _ExpiryQueue()
    first, second = 10.0, 20.0
    for key, at in [("a", first), ("b", first), ("c", first), ("d", second), ("e", second), ("f", 30.0)]:
        queue.append(at, key)
    assert [at for _, at in queue.runs] == [10.0, 20.0, 30.0] and len(queue) == 6
    assert list(queue.pairs()) == [(10.0, "a"), (10.0, "b"), (10.0, "c"), (20.0, "d"), (20.0, "e"), (30.0, "f")]
    taken = []
    while queue:
        taken.append((queue.first, queue.popleft()))
        assert list(queue.pairs()) == [(10.0, "a"), (10.0, "b"), (10.0, "c"), (20.0, "d"), (20.0, "e"),
                                       (30.0, "f")][len(taken):]
    assert [key for _, key in taken] == list("abcdef") and [at for at, _ in taken] == [10.0] * 3 + [20.0] * 2 + [30.0]
    # Emptied, it starts a run again for any time, the last one's included.
    assert not queue.runs and queue.last == -float("inf")
    queue.append(30.0, "g")
    assert (queue.first, list(queue.pairs())) == (30.0, [(30.0, "g")])


def test_entries_written_together_cost_their_queue_one_time(clock: ManualClock) -> None:
    """Three bursts of writes of one TTL: three runs in its queue, each expiring whole, exactly on time."""
    store = MemoryStore(10_000, 10**9, "LRU", clock=clock)
    ttl = 60.0
    bursts = []
    for burst in range(3):
        keys = [f"b{burst}-{i}" for i in range(1000)]
        for key in keys:
            store.set(key, 0, 1, ttl)
        bursts.append((clock() + ttl, keys))
        clock.advance(1.0)  # more than a thousandth of the TTL: the next burst gets its own time
    (queue,) = store._queues.values()
    assert len(queue) == 3000 and [at for _, at in queue.runs] == [at for at, _ in bursts]
    store.check_invariants()
    for at, keys in bursts:
        clock.advance(at - clock() - 0.001)
        store.cleanup()
        assert all(key in store for key in keys)
        clock.advance(0.001)
        assert store.cleanup() == len(keys) and not any(key in store for key in keys)
        store.check_invariants()
    assert not store._queues


def test_set_path_is_set_without_the_checks(policy_name: str, clock: ManualClock) -> None:
    store = MemoryStore(3, 10**9, policy_name, clock=clock)
    put = store.set_path()
    assert put("a", 1, 10, 5.0, None, "p") is True
    assert put("b", 2, 10, None, "meta", None) is True
    entry = named(store.get_entry("a"))
    assert entry is not None and entry.partition is not None
    assert (entry.value, entry.size, entry.expires_at, entry.partition.name) == (1, 10, 1005.0, "p")
    assert put("huge", 3, 10**10, None, None, None) is False  # above the byte bound: refused, counted
    for i in range(5):
        put(f"n{i}", i, 1, 1.0, None, None)
    assert len(store) == 3
    clock.advance(1)
    store.cleanup()
    store.check_invariants()


def test_a_subclass_overriding_set_keeps_it_on_the_set_path(clock: ManualClock) -> None:
    calls: list[str] = []

    class Logged(MemoryStore):
        def set(self, key: str, value: Any, size: int, ttl: float | None, meta: Any = None,
                partition: str | None = None) -> bool:
            calls.append(key)
            return super().set(key, value, size, ttl, meta, partition)

    store = Logged(10, 1000, "LRU", clock=clock)
    store.set_path()("k", 1, 1, None, None, None)
    assert calls == ["k"]


def test_entries_are_held_as_plain_tuples_in_the_order_of_stored_entry(clock: ManualClock) -> None:
    """A held entry is a plain tuple (a tuple subclass's instance is a slot larger); get_entry hands it out
    as held, peek as a StoredEntry of the same fields."""
    store = MemoryStore(10, 1000, "LRU", clock=clock)
    store.set("k", "v", 10, 5.0, "meta", "p")
    held = store.hit_path().lookup("k")
    assert type(held) is tuple and store.get_entry("k") is held
    handed = store.peek("k")
    assert type(handed) is StoredEntry and handed == held
    assert handed.partition is held[4] and handed.partition.name == "p"
    assert (handed.value, handed.size, handed.expires_at, handed.meta) == ("v", 10, 1005.0, "meta")
    plain = allocated(lambda: (held[0], held[1], held[2], held[3], held[4]))
    subclass = allocated(lambda: StoredEntry(*held))
    assert plain + 8 <= subclass, (plain, subclass)


def allocated(make: Any) -> float:
    """Bytes allocated per object ``make`` builds (over 1,000 of them)."""
    tracemalloc.start()
    try:
        made = [make() for _ in range(1_000)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(made) == 1_000
    return held / 1_000


def test_new_entries_close_together_share_one_expiry_never_later_and_at_most_a_thousandth_of_the_ttl_early(
    clock: ManualClock,
) -> None:
    store = MemoryStore(10_000, 10**9, "LRU", clock=clock)
    ttl = 60.0  # entries within 60 ms of the last queued one share its time
    asked: dict[str, float] = {}
    for i in range(300):
        store.set(f"k{i}", i, 1, ttl)
        asked[f"k{i}"] = clock() + ttl
        clock.advance(0.001)
    got = {key: store.peek(key).expires_at for key in asked}  # type: ignore[union-attr]
    assert all(asked[key] - ttl * _SHARED_EXPIRY <= at <= asked[key] for key, at in got.items())
    floats = {id(at) for at in got.values()}
    assert len(floats) <= 300 * 0.001 / (ttl * _SHARED_EXPIRY) + 2  # one float per 60 ms of writes
    assert len(floats) < len(got)
    store.check_invariants()
    # Each entry goes once its own (shared) time has come: never later than asked.
    clock.advance(ttl - 0.3 - ttl * _SHARED_EXPIRY - 0.001)
    assert store.cleanup() == 0 and len(store) == 300
    while len(store):
        clock.advance(0.002)
        now = clock()
        store.cleanup()
        assert all((key in store) == (got[key] > now) for key in asked)
        assert not any(key in store for key, at in asked.items() if at <= now)
    store.check_invariants()


def test_an_entry_apart_from_the_last_or_rewritten_keeps_its_own_expiry(clock: ManualClock) -> None:
    store = MemoryStore(100, 10**9, "LRU", clock=clock)
    ttl = 10.0
    store.set("a", 1, 1, ttl)
    clock.advance(ttl * _SHARED_EXPIRY * 1.5)
    store.set("b", 2, 1, ttl)  # further from the last queued time than the margin: a time of its own
    a, b = store.peek("a"), store.peek("b")
    assert a is not None and b is not None
    assert b.expires_at == clock() + ttl and b.expires_at is not a.expires_at
    clock.advance(0.0001)
    store.set("a", 3, 1, ttl)  # an overwrite takes exactly what it asked for
    rewritten = store.peek("a")
    assert rewritten is not None and rewritten.expires_at == clock() + ttl
    clock.advance(0.0001)
    store.set("c", 4, 1, 2 * ttl)  # another TTL: its own queue, its own time
    c = store.peek("c")
    assert c is not None and c.expires_at == clock() + 2 * ttl
    store.check_invariants()
