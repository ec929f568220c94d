"""Many threads on one store: bounds, accounting and policy order stay intact."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.policies import EvictionPolicy, available_policies, create_policy
from qcache.memory.store import DEFAULT_PARTITION, MemoryStore

from .support import named

THREADS = 8
OPS_PER_THREAD = 1500
KEYS_PER_THREAD = 24
MAX_ENTRIES = 64
MAX_BYTES = 2500
#: Partitioned runs: two capped partitions and the default one, within the global bounds.
PARTITIONS: tuple[str | None, ...] = ("a", "b", None)
PARTITION_CAPS = {"a": 12, "b": 30}


class CheckingLock:
    """Stands in for the store's lock and checks every invariant before each release.

    The store only mutates while holding its lock, so checking just before
    the release sees the state every other thread will see next: after
    *every* operation, not after a sample of them.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._lock = threading.Lock()
        self._store = store
        self.checks = 0
        self.problems: list[str] = []

    def acquire(self) -> bool:
        return self._lock.acquire()

    def release(self) -> None:
        self.checks += 1
        problems = self._store._invariant_problems()
        if problems:
            self.problems.extend(problems)
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    """Make the interpreter switch threads far more often than every 5 ms."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def worker(
    store: MemoryStore,
    clock: ManualClock,
    thread_id: int,
    last_written: dict[str, tuple[Any, int, Any, str]],
    failures: list[str],
    partitions: tuple[str | None, ...] = (None,),
) -> None:
    """Random operations; every key this thread writes belongs to it alone (its partition may change)."""
    rng = random.Random(thread_id)
    own = [f"t{thread_id}:k{i}" for i in range(KEYS_PER_THREAD)]
    prefix = f"t{thread_id}:"
    try:
        for step in range(OPS_PER_THREAD):
            key = rng.choice(own)
            op = rng.random()
            if op < 0.40:
                value = (thread_id, step)
                size = rng.randint(1, 120)
                ttl = rng.choice([None, None, 0.5, 30.0])
                partition = rng.choice(partitions)
                stored = store.set(key, value, size, ttl, meta=step, partition=partition)
                last_written[key] = (value, size, step, partition or DEFAULT_PARTITION)
                seen = store.get(key)
                # Nobody else writes this key: it is ours or gone, never foreign.
                if seen is not None and seen != value:
                    failures.append(f"{key}: wrote {value}, read back {seen}")
                if not stored and seen is not None:
                    failures.append(f"{key}: set returned False yet {seen} is readable")
            elif op < 0.75:
                seen = store.get(key)
                if seen is not None and seen != last_written[key][0]:
                    failures.append(f"{key}: read {seen}, last wrote {last_written[key][0]}")
            elif op < 0.85:
                store.delete(key)
                last_written.pop(key, None)
            elif op < 0.90:
                entry = named(store.get_entry(rng.choice(own)))
                if entry is not None and entry.value[0] != thread_id:
                    failures.append(f"foreign entry {entry} under {prefix}")
            elif op < 0.94:
                clock.advance(0.1)
            elif op < 0.97:
                store.cleanup()
            elif op < 0.99:
                mine = rng.sample(own, 3)
                store.delete_where(lambda k: k in mine)
                for k in mine:
                    last_written.pop(k, None)
            else:
                len(store)
                store.keys()
                store.stats()
    except Exception as exc:  # surfaced by the test, not lost in the thread
        failures.append(f"thread {thread_id} raised {exc!r}")


def run_workers(
    store: MemoryStore, clock: ManualClock, partitions: tuple[str | None, ...], also: list[threading.Thread]
) -> tuple[list[dict[str, tuple[Any, int, Any, str]]], list[str]]:
    """Run every worker (and the ``also`` threads) to the end; each thread's last writes and all failures."""
    last_written: list[dict[str, tuple[Any, int, Any, str]]] = [{} for _ in range(THREADS)]
    failures: list[str] = []
    threads = [
        threading.Thread(target=worker, args=(store, clock, t, last_written[t], failures, partitions))
        for t in range(THREADS)
    ]
    for thread in [*also, *threads]:  # the others first: workers that got cheaper can finish before they start
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a worker is stuck: deadlock?"
    return last_written, failures


def check_outcome(
    store: MemoryStore, clock: ManualClock, last_written: list[dict[str, tuple[Any, int, Any, str]]]
) -> None:
    """Invariants hold, and whatever survived is exactly each owner's final write."""
    store.check_invariants()
    now = clock()
    for key in store.keys():
        owner = int(key[1 : key.index(":")])
        entry = named(store.get_entry(key))
        assert entry is not None and entry.partition is not None
        value, size, meta, partition = last_written[owner][key]
        assert (entry.value, entry.size, entry.meta, entry.partition.name) == (value, size, meta, partition)
        assert entry.expires_at is None or entry.expires_at > now
    stats = store.stats()
    assert stats.entries <= MAX_ENTRIES and stats.bytes <= MAX_BYTES
    # The workload is sized to exercise eviction and expiry, not just pass by.
    assert stats.evictions + stats.rejected > 0
    assert stats.expirations > 0


@pytest.mark.parametrize("policy_name", available_policies())
def test_concurrent_operations_keep_every_invariant(policy_name: str) -> None:
    clock = ManualClock()
    policy: EvictionPolicy = create_policy(policy_name, MAX_ENTRIES)
    store = MemoryStore(MAX_ENTRIES, MAX_BYTES, policy, clock=clock, cleanup_interval=1.0)
    lock = CheckingLock(store)
    store._lock = lock  # type: ignore[misc]
    last_written, failures = run_workers(store, clock, (None,), [])

    assert failures == []
    assert lock.problems == []
    # Every operation that changes the store was checked (over half of them; a hit takes no lock).
    assert lock.checks >= THREADS * OPS_PER_THREAD // 2
    assert len(store) == len(policy)
    check_outcome(store, clock, last_written)


@pytest.mark.parametrize("policy_name", available_policies())
def test_concurrent_operations_on_partitions_keep_every_invariant(policy_name: str) -> None:
    """Keys hop between capped partitions while another thread keeps changing the caps."""
    clock = ManualClock()
    store = MemoryStore(
        MAX_ENTRIES, MAX_BYTES, policy_name, clock=clock, cleanup_interval=1.0, partition_caps=PARTITION_CAPS
    )
    lock = CheckingLock(store)
    store._lock = lock  # type: ignore[misc]
    done = threading.Event()
    cap_changes: list[int] = []

    def change_caps() -> None:
        rng = random.Random(99)
        while not done.is_set():
            store.set_partition_cap(rng.choice(["a", "b"]), rng.choice([None, 3, 12, 30, 100]))
            cap_changes.append(1)

    changer = threading.Thread(target=change_caps)
    try:
        last_written, failures = run_workers(store, clock, PARTITIONS, [changer])
    finally:
        done.set()
        changer.join(timeout=60)
    assert not changer.is_alive()

    assert failures == []
    assert lock.problems == []
    assert lock.checks >= THREADS * OPS_PER_THREAD // 2 + len(cap_changes)  # a hit takes no lock
    assert len(cap_changes) > 10
    partitions = store.stats().partitions
    assert set(partitions) == {DEFAULT_PARTITION, "a", "b"} and sum(partitions.values()) == len(store)
    check_outcome(store, clock, last_written)


def test_disjoint_writers_lose_no_update() -> None:
    """With room for everything, each thread's final write is what remains."""
    store = MemoryStore(10_000, 10**9, "LRU")
    rounds = 300

    def write(thread_id: int) -> None:
        for r in range(rounds):
            for i in range(10):
                store.set(f"w{thread_id}:{i}", (thread_id, r), r + 1, None)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == THREADS * 10
    for t in range(THREADS):
        for i in range(10):
            assert store.get(f"w{t}:{i}") == (t, rounds - 1)
    assert store.total_bytes == THREADS * 10 * rounds
    store.check_invariants()
