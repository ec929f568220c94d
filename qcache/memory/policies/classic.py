"""The classic policies: LRU and FIFO."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import EvictionPolicy, PolicyHooks, replay_chunks
from qcache.memory.policies.registry import register_policy


@register_policy("LRU")
class LRUPolicy(EvictionPolicy):
    """Least recently used: evict the key untouched for the longest time."""

    last_access_only = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def on_insert(self, key: Hashable) -> None:
        self._order[key] = None

    def on_access(self, key: Hashable) -> None:
        self._order.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        del self._order[key]

    def hooks(self) -> PolicyHooks:
        """The order's own C methods (``setdefault`` inserts an absent key at the end), unless overridden."""
        if type(self) is not LRUPolicy:  # a subclass may override the notifications: keep its methods
            return super().hooks()
        order = self._order
        return PolicyHooks(order.setdefault, order.move_to_end, self.on_miss, order.__delitem__)

    def victim(self) -> Hashable:
        return self._order.popitem(last=False)[0]

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        self._order.clear()

    # -- as ADAPTIVE's candidate (its ``Candidate`` protocol) ----------------

    def __contains__(self, key: object) -> bool:
        return key in self._order

    def access_if_held(self, key: Hashable) -> bool:
        """``on_access(key)`` if it tracks ``key``, and whether it did: a shadow's hit in one call."""
        if key in self._order:
            self._order.move_to_end(key)
            return True
        return False

    def resident_keys(self) -> list[Hashable]:
        """The keys tracked, least recently used first."""
        return list(self._order)

    def frequent_keys(self) -> list[Hashable]:
        """None: LRU does not tell reused keys from new ones, so after a switch every key enters as a newcomer."""
        return []

    def replay(
        self, keys: Sequence[Hashable], progress: Callable[[int], None] | None = None, chunk: int = 1 << 16, *,
        job: int | None = None,
    ) -> int:
        """Hits of ``keys`` replayed as "get, insert on miss", from and into this policy's state.

        The hooks inlined into one loop (ADAPTIVE's replay of an LRU candidate;
        the simulator's own LRU has a loop of its own). ``job`` is accepted
        for the candidate protocol: there is no kernel to load.
        """
        order = self._order
        capacity = self.capacity
        move, pop = order.move_to_end, order.popitem
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                if key in order:
                    hits += 1
                    move(key)
                else:
                    order[key] = None
                    if len(order) > capacity:
                        pop(False)
        return hits

    def replay_segments(self, keys: Sequence[Hashable], ends: Sequence[int], *, job: int | None = None) -> list[int]:
        """:meth:`replay` cut at ``ends`` (ascending, the last ``len(keys)``): the hits of each segment."""
        descending = any(end < start for start, end in zip([0, *ends], ends, strict=False))
        if descending or (ends[-1] if ends else 0) != len(keys):
            raise ValueError(f"segment ends must ascend from 0 to len(keys) = {len(keys)}")
        hits = []
        start = 0
        for end in ends:
            hits.append(self.replay(keys[start:end], job=job))
            start = end
        return hits


@register_policy("FIFO")
class FIFOPolicy(EvictionPolicy):
    """First in, first out: evict the key inserted longest ago; hits change nothing."""

    last_access_only = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # OrderedDict, not dict: popping the oldest of a plain dict rescans
        # the deleted slots at its front, which turns eviction quadratic.
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def on_insert(self, key: Hashable) -> None:
        self._order[key] = None

    def on_access(self, key: Hashable) -> None:
        pass

    def on_remove(self, key: Hashable) -> None:
        del self._order[key]

    def victim(self) -> Hashable:
        return self._order.popitem(last=False)[0]

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        self._order.clear()
