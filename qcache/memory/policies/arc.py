"""ARC (Megiddo and Modha, FAST '03): recency and frequency lists balanced by their ghosts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import replay_chunks
from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomerWithHistory
from qcache.memory.policies.kernels import CompiledReplay, LazyKernel
from qcache.memory.policies.registry import register_policy

_NO_GHOST, _IN_B1, _IN_B2 = 0, 1, 2

#: The compiled replay (the ``sim-fast`` extra), loaded and used as W-TinyLFU's is.
KERNEL = LazyKernel("qcache.memory.policies.arc_kernel", first_requests=200_000, loaded_requests=5_000)


@register_policy("ARC")
class ARCPolicy(HoldsNewcomerWithHistory, CompiledReplay):
    """Adaptive Replacement Cache.

    ``T1`` holds keys seen once recently, ``T2`` keys seen at least twice;
    ``B1`` and ``B2`` remember the keys each of them evicted. A miss that
    finds its key in ``B1`` says T1 was too small: the target size ``p`` of
    T1 grows; one found in ``B2`` shrinks it. Eviction takes T1's LRU key
    while T1 is over ``p``, else T2's.

    This is the paper's algorithm as libCacheSim implements it (``p`` a
    float, ghost lists capped so that T1 + B1 <= c and all four <= 2c, the
    eviction chosen before the missed key is placed), so its hits match
    libCacheSim's ARC on the reference traces. As an L1 policy its ghost
    lists keep up to ``capacity`` evicted keys (the keys alone, as S3_FIFO's
    ghost does), outside the byte bound that counts values.
    """

    kernel = KERNEL  # its compiled replay (CompiledReplay)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._t1: OrderedDict[Hashable, None] = OrderedDict()
        self._t2: OrderedDict[Hashable, None] = OrderedDict()
        self._b1: OrderedDict[Hashable, None] = OrderedDict()
        self._b2: OrderedDict[Hashable, None] = OrderedDict()
        self._resident: dict[Hashable, bool] = {}  # key -> in T2
        self._members = self._resident
        self._p = 0.0

    @property
    def target(self) -> float:
        """ARC's ``p``: how many entries T1 (the recency side) aims at."""
        return self._p

    def _recall(self, key: Hashable) -> int:
        """Adapt ``p`` on a ghost hit (B1: recency deserved room; B2: frequency did)."""
        b1, b2 = self._b1, self._b2
        if key in b1:
            self._p = min(self._p + max(len(b2) / len(b1), 1.0), float(self.capacity))
            del b1[key]
            return _IN_B1
        if key in b2:
            self._p = max(self._p - max(len(b1) / len(b2), 1.0), 0.0)
            del b2[key]
            return _IN_B2
        return _NO_GHOST

    def _place_as(self, key: Hashable, ghost: int) -> None:
        """A key that came back from a ghost list goes to T2, a new one to T1."""
        if ghost != _NO_GHOST:
            self._t2[key] = None
            self._resident[key] = True
        else:
            self._t1[key] = None
            self._resident[key] = False

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        if self._resident[key]:
            self._t2.move_to_end(key)
        else:
            del self._t1[key]
            self._t2[key] = None
            self._resident[key] = True

    def access_if_held(self, key: Hashable) -> bool:
        """``on_access(key)`` if it tracks ``key``, and whether it did: a shadow's hit in one call."""
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        resident = self._resident.get(key)
        if resident is None:
            return False
        if resident:
            self._t2.move_to_end(key)
        else:
            del self._t1[key]
            self._t2[key] = None
            self._resident[key] = True
        return True

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        if self._resident.pop(key):
            del self._t2[key]
        else:
            del self._t1[key]

    def victim(self) -> Hashable:
        if not self._resident:
            return self._held_victim()
        newcomer = self._pending
        ghost = self._pending_found if newcomer is not NOTHING_HELD else _NO_GHOST
        if ghost != _NO_GHOST:
            key = self._replace(ghost == _IN_B2)
        else:
            key = self._evict_on_plain_miss()
        del self._resident[key]
        if newcomer is not NOTHING_HELD:  # _settle, inline: place the newcomer this eviction made room for
            self._pending = NOTHING_HELD
            self._pending_found = _NO_GHOST
            self._place_as(newcomer, ghost)
        return key

    def _evict_on_plain_miss(self) -> Hashable:
        """Case IV of the paper: a key in none of the four lists."""
        t1, b1, b2 = self._t1, self._b1, self._b2
        if len(t1) + len(b1) + 1 > self.capacity:
            if b1:
                b1.popitem(last=False)
                return self._replace(False)
            key, _ = t1.popitem(last=False)  # T1 alone fills the cache: no ghost to keep
            return key
        if b2 and len(t1) + len(b1) + len(self._t2) + len(b2) >= 2 * self.capacity:
            b2.popitem(last=False)
        return self._replace(False)

    def _replace(self, hit_in_b2: bool) -> Hashable:
        """The paper's REPLACE: demote T1's or T2's LRU key to its ghost list."""
        t1, t2 = self._t1, self._t2
        size = len(t1)
        if (size and (size > self._p or (size == self._p and hit_in_b2))) or not t2:
            key, _ = t1.popitem(last=False)
            self._b1[key] = None
        else:
            key, _ = t2.popitem(last=False)
            self._b2[key] = None
        return key

    def __contains__(self, key: object) -> bool:
        return key in self._resident or (self._pending is not NOTHING_HELD and key == self._pending)

    def resident_keys(self) -> list[Hashable]:
        """The keys tracked: T1's, then T2's, each oldest first, then a newcomer held aside."""
        held = [] if self._pending is NOTHING_HELD else [self._pending]
        return [*self._t1, *self._t2, *held]

    def frequent_keys(self) -> list[Hashable]:
        """The keys seen at least twice recently: T2's, oldest first."""
        return list(self._t2)

    def clear(self) -> None:
        for queue in (self._t1, self._t2, self._b1, self._b2):
            queue.clear()
        self._resident.clear()
        self._p = 0.0
        self._clear_held()

    def _replay_loop(
        self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int
    ) -> int:
        """The replay in pure Python: the hooks' decisions inlined into one loop over local names."""
        self._settle()
        capacity = self.capacity
        t1, t2, b1, b2 = self._t1, self._t2, self._b1, self._b2
        resident = self._resident
        move_t2 = t2.move_to_end
        pop_t1, pop_t2, pop_b1, pop_b2 = t1.popitem, t2.popitem, b1.popitem, b2.popitem
        p = self._p
        limit = float(capacity)
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                in_t2 = resident.get(key)
                if in_t2 is not None:
                    hits += 1
                    if in_t2:
                        move_t2(key)
                    else:
                        del t1[key]
                        t2[key] = None
                        resident[key] = True
                    continue
                # a miss: _recall, then the eviction (when full), then _place_as
                if key in b1:
                    p = min(p + max(len(b2) / len(b1), 1.0), limit)
                    del b1[key]
                    ghost = _IN_B1
                elif key in b2:
                    p = max(p - max(len(b1) / len(b2), 1.0), 0.0)
                    del b2[key]
                    ghost = _IN_B2
                else:
                    ghost = _NO_GHOST
                if len(resident) >= capacity:
                    replace = True
                    if ghost == _NO_GHOST:  # _evict_on_plain_miss
                        if len(t1) + len(b1) + 1 > capacity:
                            if b1:
                                pop_b1(False)
                            else:
                                evicted, _ = pop_t1(False)
                                replace = False
                        elif b2 and len(t1) + len(b1) + len(t2) + len(b2) >= 2 * capacity:
                            pop_b2(False)
                    if replace:  # _replace
                        size = len(t1)
                        if (size and (size > p or (size == p and ghost == _IN_B2))) or not t2:
                            evicted, _ = pop_t1(False)
                            b1[evicted] = None
                        else:
                            evicted, _ = pop_t2(False)
                            b2[evicted] = None
                    del resident[evicted]
                if ghost == _NO_GHOST:
                    t1[key] = None
                    resident[key] = False
                else:
                    t2[key] = None
                    resident[key] = True
        self._p = p
        self._last_missed = NOTHING_HELD
        return hits
