"""SIEVE (Zhang et al., NSDI '24): a FIFO queue, one visited bit and a moving hand."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomer
from qcache.memory.policies.registry import register_policy


@register_policy("SIEVE")
class SievePolicy(HoldsNewcomer):
    """Lazy promotion, quick demotion: beats LRU on web traces with less work.

    A hit only sets a visited bit (no reordering, so hits are as cheap as in
    FIFO). To evict, a hand walks from the oldest key toward the newest,
    clearing visited bits, and evicts the first key whose bit was clear; it
    remembers where it stopped and wraps around at the newest key.

    The queue is kept as two ordered dicts split at the hand: ``_ahead`` holds
    the keys the hand has yet to reach (oldest first, newcomers appended) and
    ``_behind`` the keys it has passed. When ``_ahead`` runs dry the hand
    wraps: the two swap. This gives the exact SIEVE order with O(1)
    operations and no linked list in Python.

    As in the reference implementation, the eviction that makes room for a
    key is chosen before that key joins the queue, so a newcomer is never its
    own victim.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._visited: dict[Hashable, bool] = {}
        self._ahead: OrderedDict[Hashable, None] = OrderedDict()
        self._behind: OrderedDict[Hashable, None] = OrderedDict()
        self._members = self._visited

    def _place(self, key: Hashable) -> None:
        """Append a new key at the head of the queue (newest end)."""
        self._visited[key] = False
        self._ahead[key] = None

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        self._visited[key] = True

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        del self._visited[key]
        if key in self._ahead:
            del self._ahead[key]
            if not self._ahead:
                self._ahead, self._behind = self._behind, self._ahead
        else:
            del self._behind[key]

    def victim(self) -> Hashable:
        visited = self._visited
        if not visited:
            return self._held_victim()
        ahead, behind = self._ahead, self._behind
        while True:
            key, _ = ahead.popitem(last=False)
            if visited[key]:
                visited[key] = False
                behind[key] = None
            else:
                del visited[key]
                if not ahead:
                    ahead, behind = behind, ahead
                break
            if not ahead:
                ahead, behind = behind, ahead
        self._ahead, self._behind = ahead, behind
        self._settle()
        return key

    def clear(self) -> None:
        self._visited.clear()
        self._ahead.clear()
        self._behind.clear()
        self._clear_held()
