"""Least frequently used, in O(1) per operation (frequency buckets)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import replay_chunks
from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomer
from qcache.memory.policies.registry import register_policy


@register_policy("LFU")
class LFUPolicy(HoldsNewcomer):
    """Evict the key with the fewest hits since it entered the cache.

    No aging, and a key's count restarts when it is evicted and comes back.
    Ties go to the key that reached its count longest ago. Keys sit in one
    ordered bucket per count, so every operation is O(1) instead of a heap's
    O(log n).

    A key inserted while the cache is full is held aside until the next
    ``victim()``: the victim is chosen among the keys already present, as a
    cache that evicts *before* inserting would do. Otherwise a newcomer (count
    1) would be evicted at once whenever every resident had been hit, which
    is neither what LFU means nor what other implementations do.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._count: dict[Hashable, int] = {}
        self._buckets: dict[int, OrderedDict[Hashable, None]] = {}
        self._min = 0
        self._members = self._count

    def _place(self, key: Hashable) -> None:
        """Put a new key in the count-1 bucket."""
        self._count[key] = 1
        bucket = self._buckets.get(1)
        if bucket is None:
            bucket = self._buckets[1] = OrderedDict()
        bucket[key] = None
        self._min = 1

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        count = self._count[key]
        bucket = self._buckets[count]
        del bucket[key]
        if not bucket:
            del self._buckets[count]
            if self._min == count:
                self._min = count + 1
        count += 1
        self._count[key] = count
        nxt = self._buckets.get(count)
        if nxt is None:
            nxt = self._buckets[count] = OrderedDict()
        nxt[key] = None

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        count = self._count.pop(key)
        bucket = self._buckets[count]
        del bucket[key]
        if not bucket:
            # A stale _min is repaired lazily by victim().
            del self._buckets[count]

    def victim(self) -> Hashable:
        if not self._count:
            return self._held_victim()
        bucket = self._buckets.get(self._min)
        if bucket is None:
            # The last key of the minimum bucket left through an earlier
            # victim() or on_remove(); rescanning the few buckets is cheap.
            self._min = min(self._buckets)
            bucket = self._buckets[self._min]
        key, _ = bucket.popitem(last=False)
        if not bucket:
            del self._buckets[self._min]
        del self._count[key]
        self._settle()
        return key

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        The simulator's fast path: ``on_access``, ``victim`` and ``_place``
        inlined into one loop that evicts before placing the missed key
        instead of holding it aside (the tests compare the two hit for hit).
        Starts from, and leaves, this policy's state; ``progress`` gets the
        number of requests done every ``chunk`` requests.
        """
        self._settle()
        capacity = self.capacity
        counts, buckets = self._count, self._buckets
        lowest = self._min
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                count = counts.get(key)
                if count is not None:
                    hits += 1
                    bucket = buckets[count]
                    del bucket[key]
                    if not bucket:
                        del buckets[count]
                        if lowest == count:
                            lowest = count + 1
                    count += 1
                    counts[key] = count
                    found = buckets.get(count)
                    if found is None:
                        found = buckets[count] = OrderedDict()
                    found[key] = None
                    continue
                if len(counts) >= capacity:
                    found = buckets.get(lowest)
                    if found is None:
                        lowest = min(buckets)
                        found = buckets[lowest]
                    evicted, _ = found.popitem(last=False)
                    if not found:
                        del buckets[lowest]
                    del counts[evicted]
                counts[key] = 1
                found = buckets.get(1)
                if found is None:
                    found = buckets[1] = OrderedDict()
                found[key] = None
                lowest = 1
        self._min = lowest
        return hits

    def frequency(self, key: Hashable) -> int:
        """Hits counted for ``key`` since it entered (0 when absent)."""
        if self._pending is not NOTHING_HELD and key == self._pending:
            return 1
        return self._count.get(key, 0)

    def clear(self) -> None:
        self._count.clear()
        self._buckets.clear()
        self._min = 0
        self._clear_held()
