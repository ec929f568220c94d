"""The two bounds every policy sits between: Belady's optimum and the cold-miss floor."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from qcache.sim.sources import Key


def next_use_positions(keys: Sequence[Key]) -> list[int]:
    """For each request, the position of the next request for the same key.

    A key never requested again gets ``len(keys) + i``: later than any real
    position, and distinct for every request, so heap entries never tie (and
    never fall back to comparing keys, which may not be orderable).
    """
    n = len(keys)
    following: list[int] = [0] * n
    last_seen: dict[Key, int] = {}
    get = last_seen.get
    for i in range(n - 1, -1, -1):
        key = keys[i]
        following[i] = get(key, n + i)
        last_seen[key] = i
    return following


def belady_hits(keys: Sequence[Key], capacity: int, next_use: Sequence[int] | None = None) -> int:
    """Hits of the offline optimum (MIN): on a miss with a full cache, evict the key used farthest ahead.

    Like the usual simulators, every missed key is inserted (no bypass), so
    this is the ceiling for policies that must admit what they miss. Next
    uses come from the key stream itself, so the result is exact whatever
    the trace format (libCacheSim needs them precomputed in the file). The
    heap uses lazy deletion: an entry is stale unless it matches the key's
    current next use.
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity!r}")
    following = next_use_positions(keys) if next_use is None else next_use
    resident: dict[Key, int] = {}
    heap: list[tuple[int, Key]] = []
    push, pop = heapq.heappush, heapq.heappop
    hits = 0
    for key, nxt in zip(keys, following):
        if key in resident:
            hits += 1
        elif len(resident) >= capacity:
            while True:
                neg_next, candidate = pop(heap)
                if resident.get(candidate) == -neg_next:
                    del resident[candidate]
                    break
        resident[key] = nxt
        push(heap, (-nxt, key))
    return hits


def unbounded_hits(keys: Sequence[Key]) -> int:
    """Hits of a cache that never evicts: every request but the first for each key."""
    return len(keys) - len(set(keys))
