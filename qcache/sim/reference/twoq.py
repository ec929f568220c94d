"""2Q (Johnson and Shasha, VLDB '94): a FIFO for newcomers, an LRU for keys seen again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import replay_chunks
from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomerWithHistory


class TwoQPolicy(HoldsNewcomerWithHistory):
    """The full 2Q: ``A1in`` (FIFO of new keys), ``A1out`` (their ghosts), ``Am`` (LRU).

    A new key enters A1in; hits there change nothing (a burst of accesses to
    a new key does not make it hot). A key pushed out of A1in is remembered
    in A1out; requested again while remembered, it enters Am, the LRU of
    keys proven to be reused. Eviction drains A1in while it is over its
    share, else Am's LRU key.

    Sizes are libCacheSim's defaults (A1in 25% of the capacity, A1out ghosts
    for 50%, both truncated), and as there the eviction is chosen before the
    missed key is placed.
    """

    def __init__(self, capacity: int, in_ratio: float = 0.25, out_ratio: float = 0.5) -> None:
        super().__init__(capacity)
        if not 0.0 <= in_ratio < 1.0:
            raise ValueError(f"in_ratio must be in [0, 1), got {in_ratio!r}")
        if out_ratio < 0.0:
            raise ValueError(f"out_ratio must be >= 0, got {out_ratio!r}")
        self._in_cap = int(capacity * in_ratio)
        self._out_cap = int(capacity * out_ratio)
        self._a1in: OrderedDict[Hashable, None] = OrderedDict()
        self._a1out: OrderedDict[Hashable, None] = OrderedDict()
        self._am: OrderedDict[Hashable, None] = OrderedDict()
        self._in_am: dict[Hashable, bool] = {}
        self._members = self._in_am

    def _recall(self, key: Hashable) -> int:
        """1 when ``key`` is remembered in A1out (seen before, pushed out of A1in)."""
        if key in self._a1out:
            del self._a1out[key]
            return 1
        return 0

    def _place_as(self, key: Hashable, found: int) -> None:
        seen_before = bool(found)
        if seen_before:
            self._am[key] = None
        else:
            self._a1in[key] = None
        self._in_am[key] = seen_before

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        if self._in_am[key]:
            self._am.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        if self._in_am.pop(key):
            del self._am[key]
        else:
            del self._a1in[key]

    def victim(self) -> Hashable:
        if not self._in_am:
            return self._held_victim()
        if len(self._a1in) > self._in_cap or not self._am:
            key, _ = self._a1in.popitem(last=False)
            if self._out_cap > 0:
                ghosts = self._a1out
                ghosts[key] = None
                if len(ghosts) > self._out_cap:
                    ghosts.popitem(last=False)
        else:
            key, _ = self._am.popitem(last=False)
        del self._in_am[key]
        self._settle()
        return key

    def clear(self) -> None:
        for queue in (self._a1in, self._a1out, self._am):
            queue.clear()
        self._in_am.clear()
        self._clear_held()

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        The simulator's fast path: the hooks' decisions inlined into one loop
        that chooses the eviction before placing the missed key instead of
        holding it aside (the tests compare the two hit for hit). Starts
        from, and leaves, this policy's state; ``progress`` gets the number
        of requests done every ``chunk`` requests.
        """
        self._settle()
        capacity, in_cap, out_cap = self.capacity, self._in_cap, self._out_cap
        a1in, a1out, am, in_am = self._a1in, self._a1out, self._am, self._in_am
        move_am = am.move_to_end
        pop_in, pop_out, pop_am = a1in.popitem, a1out.popitem, am.popitem
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                seen = in_am.get(key)
                if seen is not None:
                    hits += 1
                    if seen:
                        move_am(key)
                    continue
                if key in a1out:
                    del a1out[key]
                    seen = True
                else:
                    seen = False
                if len(in_am) >= capacity:
                    if len(a1in) > in_cap or not am:
                        evicted, _ = pop_in(False)
                        if out_cap > 0:
                            a1out[evicted] = None
                            if len(a1out) > out_cap:
                                pop_out(False)
                    else:
                        evicted, _ = pop_am(False)
                    del in_am[evicted]
                if seen:
                    am[key] = None
                else:
                    a1in[key] = None
                in_am[key] = seen
        self._last_missed = NOTHING_HELD
        return hits
