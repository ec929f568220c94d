"""Holding a newcomer aside until the eviction that makes room for it.

libCacheSim (and the papers' reference code) evicts *before* inserting, so the
key being inserted is never a candidate for the eviction that makes room for
it. Our driver protocol inserts first and evicts after; policies that must
match those references hold the newcomer aside in between. This module is
that bookkeeping, written once.
"""

from __future__ import annotations

from collections.abc import Hashable, Sized

from qcache.memory.policies.base import EvictionPolicy

NOTHING_HELD: object = object()


class HoldsNewcomer(EvictionPolicy):
    """Base for policies that choose a victim among the keys present before the newcomer.

    Subclasses set ``self._members`` to the collection whose length is the
    number of keys they track, implement ``_place(key)`` (track a new key)
    and start ``victim()`` with ``if not self._members: return self._held_victim()``
    and ``on_remove()`` with ``if self._forget_held(key): return``. The hot
    paths stay inline in the subclasses; only the rare branches live here.
    """

    _members: Sized

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._pending: object = NOTHING_HELD

    def _place(self, key: Hashable) -> None:
        """Start tracking ``key``."""
        raise NotImplementedError

    def _settle(self) -> None:
        """Track the held-aside key now (an operation other than eviction came first)."""
        if self._pending is not NOTHING_HELD:
            key, self._pending = self._pending, NOTHING_HELD
            self._place(key)

    def on_insert(self, key: Hashable) -> None:
        self._settle()
        if len(self._members) >= self.capacity:
            self._pending = key
        else:
            self._place(key)

    def _forget_held(self, key: Hashable) -> bool:
        """Drop ``key`` if it is the held newcomer; True if it was."""
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._pending = NOTHING_HELD
            return True
        return False

    def _held_victim(self) -> Hashable:
        """The victim when nothing else is tracked: the held newcomer itself."""
        if self._pending is NOTHING_HELD:
            raise KeyError(f"victim() on an empty {self.name or type(self).__name__} policy")
        key, self._pending = self._pending, NOTHING_HELD
        return key

    def __len__(self) -> int:
        return len(self._members) + (self._pending is not NOTHING_HELD)

    def _clear_held(self) -> None:
        self._pending = NOTHING_HELD


class HoldsNewcomerWithHistory(HoldsNewcomer):
    """A :class:`HoldsNewcomer` whose placement of a new key depends on what its miss found.

    ARC and 2Q remember keys they evicted (ghosts): a key found there on a
    miss is placed elsewhere than a brand-new one. Subclasses implement
    ``_recall(key)`` (consult and forget the history, return what was found,
    0 for nothing) and ``_place_as(key, found)``; this class carries the
    finding from ``on_miss`` to the placement, also across a held insert.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._last_missed: object = NOTHING_HELD
        self._found = 0
        self._pending_found = 0

    def _recall(self, key: Hashable) -> int:
        """What the history knows of ``key`` (0: nothing); forget it there."""
        raise NotImplementedError

    def _place_as(self, key: Hashable, found: int) -> None:
        """Start tracking ``key`` given what its miss found."""
        raise NotImplementedError

    def _place(self, key: Hashable) -> None:
        self._place_as(key, self._pending_found)

    def _settle(self) -> None:
        super()._settle()
        self._pending_found = 0

    def on_miss(self, key: Hashable) -> None:
        self._last_missed = key
        self._found = self._recall(key)

    def on_insert(self, key: Hashable) -> None:
        if key != self._last_missed:
            self.on_miss(key)  # inserted without a lookup first (a plain set)
        self._last_missed = NOTHING_HELD
        if self._pending is not NOTHING_HELD:  # seldom: the last insert's eviction placed its newcomer
            self._settle()
        if len(self._members) >= self.capacity:
            self._pending = key
            self._pending_found = self._found
        else:
            self._place_as(key, self._found)
        self._found = 0

    def _clear_held(self) -> None:
        super()._clear_held()
        self._last_missed = NOTHING_HELD
        self._found = self._pending_found = 0
