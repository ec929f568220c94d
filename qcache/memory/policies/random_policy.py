"""Random eviction, seeded so that runs are reproducible."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import replay_chunks
from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomer
from qcache.memory.policies.registry import register_policy


@register_policy("RANDOM")
class RandomPolicy(HoldsNewcomer):
    """Evict a key chosen uniformly at random among those present.

    The baseline every other policy must beat: it keeps no history at all.
    ``seed`` makes a simulation or a test repeatable. Keys live in a list
    plus a position index so that removal is a swap with the last slot, O(1).
    As with LFU, a key inserted while full is not a candidate for the eviction
    that makes room for it.
    """

    def __init__(self, capacity: int, seed: int | None = 0) -> None:
        super().__init__(capacity)
        self._rng = random.Random(seed)
        self._keys: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        self._members = self._keys

    def _place(self, key: Hashable) -> None:
        """Track a new key."""
        self._index[key] = len(self._keys)
        self._keys.append(key)

    def _drop_at(self, pos: int) -> Hashable:
        """Forget the key at ``pos`` by moving the last key into its slot."""
        keys = self._keys
        key = keys[pos]
        last = keys.pop()
        if pos < len(keys):
            keys[pos] = last
            self._index[last] = pos
        del self._index[key]
        return key

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        self._drop_at(self._index[key])

    def victim(self) -> Hashable:
        if not self._keys:
            return self._held_victim()
        key = self._drop_at(self._rng.randrange(len(self._keys)))
        self._settle()
        return key

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        The simulator's fast path: ``victim`` and ``_place`` inlined into one
        loop that draws the victim before placing the missed key, as the held
        newcomer does, from the same generator in the same order (the tests
        compare the two hit for hit). Starts from, and leaves, this policy's
        state; ``progress`` gets the number of requests done every ``chunk``
        requests.
        """
        self._settle()
        capacity, members, index = self.capacity, self._keys, self._index
        draw, append, pop = self._rng.randrange, members.append, members.pop
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                if key in index:
                    hits += 1
                    continue
                size = len(members)
                if size >= capacity:  # victim(): _drop_at a random slot
                    slot = draw(size)
                    gone = members[slot]
                    last = pop()
                    size -= 1
                    if slot < size:
                        members[slot] = last
                        index[last] = slot
                    del index[gone]
                index[key] = size
                append(key)
        return hits

    def clear(self) -> None:
        self._keys.clear()
        self._index.clear()
        self._clear_held()
