"""LIRS (Jiang and Zhang, SIGMETRICS '02): evict by reuse distance, not by recency."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import replay_chunks
from qcache.memory.policies.holdback import NOTHING_HELD, HoldsNewcomer

_LIR, _HIR = True, False


class LIRSPolicy(HoldsNewcomer):
    """Low Inter-reference Recency Set.

    Most of the cache (99%) holds *LIR* keys, those whose last two requests
    were close together; a small list ``Q`` (1%, at least one entry) holds
    resident *HIR* keys, and eviction always takes Q's oldest. The stack
    ``S`` orders keys by recency down to the least recent LIR key (the
    stack is *pruned* so its bottom is always LIR) and remembers evicted HIR
    keys too: an HIR key requested again while still in S has a reuse
    distance shorter than some LIR key's, so it becomes LIR and S's bottom
    LIR key is demoted to Q. A loop larger than the cache, LRU's worst case,
    keeps a stable LIR set and hits.

    The paper's algorithm with libCacheSim's sizes: HIR share 1%, and S
    holds at most twice the capacity (the oldest non-resident entries go
    first). The eviction is chosen before the missed key is placed.
    """

    def __init__(self, capacity: int, hir_ratio: float = 0.01) -> None:
        super().__init__(capacity)
        if not 0.0 < hir_ratio < 1.0:
            raise ValueError(f"hir_ratio must be in (0, 1), got {hir_ratio!r}")
        self._hir_limit = max(1, int(hir_ratio * capacity))
        self._lir_limit = capacity - self._hir_limit
        self._stack_limit = 2 * capacity
        self._stack: OrderedDict[Hashable, None] = OrderedDict()  # S: bottom first
        self._queue: OrderedDict[Hashable, None] = OrderedDict()  # Q: resident HIR, oldest first
        self._nonresident: OrderedDict[Hashable, None] = OrderedDict()  # HIR keys in S, evicted
        self._status: dict[Hashable, bool] = {}  # resident keys: LIR or HIR
        self._members = self._status
        self._lir_count = 0

    def _prune(self) -> None:
        """Drop HIR entries from the bottom of S until an LIR key is there."""
        stack, status, nonresident = self._stack, self._status, self._nonresident
        while stack:
            bottom = next(iter(stack))
            if status.get(bottom) is _LIR:
                return
            del stack[bottom]
            nonresident.pop(bottom, None)

    def _demote_bottom(self) -> None:
        """S's least recent LIR key becomes a resident HIR key at Q's end."""
        self._prune()
        key, _ = self._stack.popitem(last=False)
        self._status[key] = _HIR
        self._queue[key] = None
        self._lir_count -= 1
        self._prune()

    def _place(self, key: Hashable) -> None:
        stack = self._stack
        if key in stack:  # evicted recently enough to still be in S: a short reuse distance
            del self._nonresident[key]
            stack.move_to_end(key)
            self._status[key] = _LIR
            self._lir_count += 1
            if self._lir_count > self._lir_limit:
                self._demote_bottom()
        elif self._lir_count < self._lir_limit:
            stack[key] = None
            self._status[key] = _LIR
            self._lir_count += 1
        else:
            stack[key] = None
            self._queue[key] = None
            self._status[key] = _HIR
        while len(stack) > self._stack_limit and self._nonresident:
            old, _ = self._nonresident.popitem(last=False)
            del stack[old]

    def on_access(self, key: Hashable) -> None:
        if self._pending is not NOTHING_HELD and key == self._pending:
            self._settle()
        stack = self._stack
        if self._status[key] is _LIR:
            at_bottom = next(iter(stack)) == key
            stack.move_to_end(key)
            if at_bottom:
                self._prune()
        elif key in stack:
            stack.move_to_end(key)
            del self._queue[key]
            self._status[key] = _LIR
            self._lir_count += 1
            if self._lir_count > self._lir_limit:
                self._demote_bottom()
        else:
            stack[key] = None
            self._queue.move_to_end(key)
            while len(stack) > self._stack_limit and self._nonresident:
                old, _ = self._nonresident.popitem(last=False)
                del stack[old]

    def on_remove(self, key: Hashable) -> None:
        if self._forget_held(key):
            return
        if self._status.pop(key) is _LIR:
            del self._stack[key]
            self._lir_count -= 1
            self._prune()
        else:
            del self._queue[key]
            self._stack.pop(key, None)

    def victim(self) -> Hashable:
        if not self._status:
            return self._held_victim()
        if self._queue:
            key, _ = self._queue.popitem(last=False)
            del self._status[key]
            if key in self._stack:
                self._nonresident[key] = None
        else:  # every resident key is LIR (tiny caches, or after removals)
            self._prune()
            key, _ = self._stack.popitem(last=False)
            del self._status[key]
            self._lir_count -= 1
            self._prune()
        self._settle()
        return key

    def clear(self) -> None:
        for queue in (self._stack, self._queue, self._nonresident):
            queue.clear()
        self._status.clear()
        self._lir_count = 0
        self._clear_held()

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        The simulator's fast path: hits and evictions inlined into one loop
        that evicts before placing the missed key instead of holding it aside
        (the tests compare the two hit for hit); the rarer steps (pruning,
        demoting) stay the methods above. Starts from, and leaves,
        this policy's state; ``progress`` gets the number of requests done
        every ``chunk`` requests.
        """
        self._settle()
        capacity, stack_limit = self.capacity, self._stack_limit
        stack, queue, nonresident, status = self._stack, self._queue, self._nonresident, self._status
        move_stack, move_queue = stack.move_to_end, queue.move_to_end
        pop_stack, pop_queue, pop_nonresident = stack.popitem, queue.popitem, nonresident.popitem
        prune, demote = self._prune, self._demote_bottom
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                lir = status.get(key)
                if lir is not None:  # on_access
                    hits += 1
                    if lir:
                        if next(iter(stack)) == key:
                            move_stack(key)
                            prune()
                        else:
                            move_stack(key)
                    elif key in stack:
                        move_stack(key)
                        del queue[key]
                        status[key] = _LIR
                        self._lir_count += 1
                        if self._lir_count > self._lir_limit:
                            demote()
                    else:
                        stack[key] = None
                        move_queue(key)
                        while len(stack) > stack_limit and nonresident:
                            old, _ = pop_nonresident(False)
                            del stack[old]
                    continue
                if len(status) >= capacity:  # victim()
                    if queue:
                        evicted, _ = pop_queue(False)
                        del status[evicted]
                        if evicted in stack:
                            nonresident[evicted] = None
                    else:
                        prune()
                        evicted, _ = pop_stack(False)
                        del status[evicted]
                        self._lir_count -= 1
                        prune()
                # _place
                if key in stack:
                    del nonresident[key]
                    move_stack(key)
                    status[key] = _LIR
                    self._lir_count += 1
                    if self._lir_count > self._lir_limit:
                        demote()
                elif self._lir_count < self._lir_limit:
                    stack[key] = None
                    status[key] = _LIR
                    self._lir_count += 1
                else:
                    stack[key] = None
                    queue[key] = None
                    status[key] = _HIR
                while len(stack) > stack_limit and nonresident:
                    old, _ = pop_nonresident(False)
                    del stack[old]
        return hits
