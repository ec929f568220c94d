"""The classic policies: LRU and FIFO."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from qcache.memory.policies.base import EvictionPolicy, PolicyHooks
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
