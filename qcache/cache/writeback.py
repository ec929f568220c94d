"""The write-back queue: pending L2 writes, coalesced per key and bounded. Pure, no I/O.

The sync and async facades each run a small flusher around it; the ordering
rule that keeps a delete from being undone by a late flush lives in the
facades (deletes and flushes share one lock), the bookkeeping lives here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple


class PendingWrite(NamedTuple):
    """One write waiting for L2: the storage key, the record, when it expires (epoch ms), its tag sets.

    A named tuple rather than a frozen dataclass: one is built per write-back
    ``set``, and a frozen dataclass costs several times more to create.
    """

    key: str
    record: bytes
    expires_at_ms: int
    tags: tuple[str, ...] = ()  # the Redis keys of its tags' sets (see qcache.cache.tags)


class WriteBackQueue:
    """Pending writes in arrival order; a second write to a key replaces the first.

    When full, ``put`` drops the oldest pending write to make room and counts
    it in ``dropped`` (its value is still in L1; only its L2 copy is lost).

    A batch handed out by :meth:`take` stays visible to :meth:`get` (and in
    ``len()``) until :meth:`complete` or :meth:`requeue`: while the flusher
    sends it, L1 may evict the value, and a read must then not fall through
    to the older copy L2 still holds.
    """

    def __init__(self, max_pending: int) -> None:
        if max_pending <= 0:
            raise ValueError(f"max_pending must be positive, got {max_pending}")
        self.max_pending = max_pending
        self._pending: OrderedDict[str, PendingWrite] = OrderedDict()
        self._inflight: dict[str, PendingWrite] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, write: PendingWrite) -> None:
        """Queue ``write``, replacing any pending write to the same key."""
        with self._lock:
            pending = self._pending
            if write.key in pending:
                del pending[write.key]
            elif len(pending) >= self.max_pending:
                pending.popitem(last=False)
                self.dropped += 1
            pending[write.key] = write

    def get(self, key: str) -> PendingWrite | None:
        """The write waiting for ``key``, if any (a read must not miss a value still on its way)."""
        # Queue first: a write queued while an older one is being sent is the newer value.
        return self._pending.get(key) or self._inflight.get(key)  # dict lookups: atomic under the GIL

    def take(self, limit: int) -> list[PendingWrite]:
        """Remove and return up to ``limit`` of the oldest pending writes; they stay readable in flight."""
        with self._lock:
            pending = self._pending
            count = min(limit, len(pending))
            batch = [pending.popitem(last=False)[1] for _ in range(count)]
            self._inflight.update((write.key, write) for write in batch)
            return batch

    def complete(self, writes: list[PendingWrite]) -> None:
        """The batch ``writes`` was sent (or given up on): stop serving it from the queue."""
        with self._lock:
            self._forget_inflight(writes)

    def requeue(self, writes: list[PendingWrite]) -> None:
        """Put back writes whose flush failed, ahead of the rest, unless a newer one arrived."""
        with self._lock:
            self._forget_inflight(writes)
            pending = self._pending
            for write in reversed(writes):
                if write.key in pending:
                    continue  # a newer value for this key is already waiting
                if len(pending) >= self.max_pending:
                    self.dropped += 1
                    continue
                pending[write.key] = write
                pending.move_to_end(write.key, last=False)

    def _forget_inflight(self, writes: list[PendingWrite]) -> None:
        inflight = self._inflight
        for write in writes:
            if inflight.get(write.key) is write:
                del inflight[write.key]

    def discard(self, key: str) -> bool:
        """Forget the pending write to ``key``; True if there was one."""
        with self._lock:
            return self._pending.pop(key, None) is not None

    def discard_where(self, predicate: Callable[[PendingWrite], bool]) -> list[str]:
        """Forget every pending write satisfying ``predicate``; return their keys."""
        with self._lock:
            doomed = [key for key, write in self._pending.items() if predicate(write)]
            for key in doomed:
                del self._pending[key]
            return doomed

    @property
    def queued(self) -> int:
        """Writes waiting to be taken (in flight ones excluded)."""
        return len(self._pending)

    def __len__(self) -> int:
        """Writes not yet in L2: queued plus in flight."""
        return len(self._pending) + len(self._inflight)
