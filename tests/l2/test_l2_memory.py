"""What the in-memory backends add to the L2 contract: expiry on an injected clock, one store for both flavours."""

from __future__ import annotations

from qcache.l2 import AsyncMemoryBackend, MemoryBackend, escape_glob

from .support import FakeClock

NAMESPACE = "mem:ns*:"


def test_entries_expire_on_the_injected_clock() -> None:
    clock = FakeClock()
    backend = MemoryBackend(namespace=NAMESPACE, clock=clock)
    backend.set(NAMESPACE + "k", b"v", 2.0005)  # PX 2001: rounded up, never shorter than asked
    assert backend.pttl(NAMESPACE + "k") == 2001
    clock.advance(2.0)
    assert backend.get(NAMESPACE + "k") == b"v"
    assert backend.pttl(NAMESPACE + "k") == 1
    clock.advance(0.001)
    assert backend.get(NAMESPACE + "k") is None
    assert backend.pttl(NAMESPACE + "k") is None


def test_expired_entries_are_neither_counted_nor_scanned() -> None:
    clock = FakeClock()
    backend = MemoryBackend(namespace=NAMESPACE, clock=clock)
    backend.set_many({NAMESPACE + "old": b"1"}, ttl=1)
    backend.set_many({NAMESPACE + "new": b"2"}, ttl=10)
    clock.advance(5)
    pattern = escape_glob(NAMESPACE) + "*"
    assert backend.scan_keys(pattern) == [NAMESPACE + "new"]
    assert backend.delete(NAMESPACE + "old", NAMESPACE + "new") == 1
    assert backend.delete_pattern(pattern) == 0


async def test_the_async_backend_can_share_the_sync_store() -> None:
    store = MemoryBackend(namespace=NAMESPACE)
    backend = AsyncMemoryBackend(namespace=NAMESPACE, sync=store)
    await backend.set(NAMESPACE + "k", b"v", 60)
    assert store.get(NAMESPACE + "k") == b"v"
    await backend.close()
    assert store.closed and backend.closed
