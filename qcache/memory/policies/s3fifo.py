"""S3-FIFO (Yang et al., SOSP '23): a small probationary FIFO, a main FIFO and a ghost FIFO."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from qcache.memory.policies.base import EvictionPolicy, replay_chunks
from qcache.memory.policies.kernels import CompiledReplay, LazyKernel
from qcache.memory.policies.registry import register_policy

_NO_PENDING = object()
#: The compiled replay (the ``sim-fast`` extra): loaded for a replay of 200,000 requests, then used from 5,000.
KERNEL = LazyKernel("qcache.memory.policies.s3fifo_kernel", first_requests=200_000, loaded_requests=5_000)


@register_policy("S3_FIFO")
class S3FIFOPolicy(EvictionPolicy, CompiledReplay):
    """Filter one-hit wonders out quickly, keep everything else in a cheap FIFO.

    New keys enter a small FIFO (10% of the capacity). A key leaving it that
    was hit at least ``move_to_main_threshold`` times moves to the main FIFO;
    the others are evicted and remembered in a ghost FIFO (keys only, 90% of
    the capacity). A key found in the ghost goes straight to main when it
    comes back. Main is a CLOCK with a 2-bit counter: a key with hits is
    reinserted at the head with one hit less instead of being evicted.

    This follows libCacheSim's ``S3FIFO`` (the variant that, before the first
    eviction, sends newcomers to main once the small FIFO is full), so its
    hit counts match that reference on every trace. Like it, the eviction
    that makes room for a key is chosen before the key is queued.
    """

    kernel = KERNEL  # its compiled replay (CompiledReplay)

    def __init__(
        self,
        capacity: int,
        small_ratio: float = 0.10,
        ghost_ratio: float = 0.90,
        move_to_main_threshold: int = 2,
    ) -> None:
        super().__init__(capacity)
        if not 0.0 < small_ratio < 1.0:
            raise ValueError(f"small_ratio must be in (0, 1), got {small_ratio!r}")
        if ghost_ratio < 0.0:
            raise ValueError(f"ghost_ratio must be >= 0, got {ghost_ratio!r}")
        if move_to_main_threshold < 1:
            raise ValueError(f"move_to_main_threshold must be >= 1, got {move_to_main_threshold!r}")
        # Truncation as in the reference; at least one slot so tiny caches still admit keys.
        self._small_cap = max(1, int(capacity * small_ratio)) if capacity > 1 else 1
        self._main_cap = max(capacity - self._small_cap, 0)
        self._ghost_cap = int(capacity * ghost_ratio)
        self._threshold = move_to_main_threshold
        self._freq: dict[Hashable, int] = {}
        self._small: OrderedDict[Hashable, None] = OrderedDict()
        self._main: OrderedDict[Hashable, None] = OrderedDict()
        self._ghost: OrderedDict[Hashable, None] = OrderedDict()
        self._has_evicted = False
        self._pending: object = _NO_PENDING
        self._pending_to_main = False

    def _place(self, key: Hashable, to_main: bool) -> None:
        """Queue a new key in small or main."""
        self._freq[key] = 0
        if to_main or (not self._has_evicted and len(self._small) >= self._small_cap):
            self._main[key] = None
        else:
            self._small[key] = None

    def _settle(self) -> None:
        """Queue the held-aside key now."""
        if self._pending is not _NO_PENDING:
            key, self._pending = self._pending, _NO_PENDING
            self._place(key, self._pending_to_main)

    def on_insert(self, key: Hashable) -> None:
        if self._pending is not _NO_PENDING:
            self._settle()
        ghost = self._ghost
        to_main = key in ghost
        if to_main:
            del ghost[key]
        if len(self._freq) >= self.capacity:
            self._pending = key
            self._pending_to_main = to_main
        else:
            self._place(key, to_main)

    def on_access(self, key: Hashable) -> None:
        if self._pending is not _NO_PENDING and key == self._pending:
            self._settle()
        self._freq[key] += 1

    def access_if_held(self, key: Hashable) -> bool:
        """``on_access(key)`` if it tracks ``key``, and whether it did: a shadow's hit in one call."""
        if self._pending is not _NO_PENDING and key == self._pending:
            self._settle()
        freq = self._freq
        if key in freq:
            freq[key] += 1
            return True
        return False

    def on_remove(self, key: Hashable) -> None:
        if self._pending is not _NO_PENDING and key == self._pending:
            self._pending = _NO_PENDING
            return
        del self._freq[key]
        if key in self._small:
            del self._small[key]
        else:
            del self._main[key]

    def _remember(self, key: Hashable) -> None:
        """Add an evicted key to the ghost FIFO."""
        if self._ghost_cap <= 0 or key in self._ghost:
            return
        ghost = self._ghost
        ghost[key] = None
        if len(ghost) > self._ghost_cap:
            ghost.popitem(last=False)

    def _evict_small(self) -> object:
        """Promote hit keys from the small FIFO until one can be evicted."""
        small, main, freq = self._small, self._main, self._freq
        while small:
            key, _ = small.popitem(last=False)
            if freq[key] >= self._threshold:
                freq[key] = 0
                main[key] = None
            else:
                del freq[key]
                self._remember(key)
                return key
        return _NO_PENDING

    def _evict_main(self) -> object:
        """Run main's CLOCK until a key without hits comes up."""
        main, freq = self._main, self._freq
        while main:
            key, _ = main.popitem(last=False)
            hits = freq[key]
            if hits >= 1:
                freq[key] = min(hits, 3) - 1
                main[key] = None
            else:
                del freq[key]
                return key
        return _NO_PENDING

    def victim(self) -> Hashable:
        if not self._freq:
            if self._pending is _NO_PENDING:
                raise KeyError("victim() on an empty S3_FIFO policy")
            key, self._pending = self._pending, _NO_PENDING
            return key
        self._has_evicted = True
        found: Hashable = _NO_PENDING
        while found is _NO_PENDING:
            if len(self._main) > self._main_cap or not self._small:
                found = self._evict_main()
            else:
                found = self._evict_small()
        if self._pending is not _NO_PENDING:
            self._settle()
        return found

    def _replay_loop(self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int) -> int:
        """The replay in pure Python: the hooks' decisions inlined into one loop over local names.

        ``on_insert``, ``victim`` (both FIFOs' eviction loops), ``_remember``
        and ``_place`` inlined, evicting before queueing the missed key as the
        held newcomer does (the tests compare the two hit for hit).
        """
        self._settle()
        capacity, small_cap, main_cap = self.capacity, self._small_cap, self._main_cap
        ghost_cap, threshold = self._ghost_cap, self._threshold
        freq, small, main, ghost = self._freq, self._small, self._main, self._ghost
        pop_small, pop_main, pop_ghost = small.popitem, main.popitem, ghost.popitem
        has_evicted = self._has_evicted
        hits = 0
        for part in replay_chunks(keys, chunk, progress):
            for key in part:
                if key in freq:
                    hits += 1
                    freq[key] += 1
                    continue
                to_main = key in ghost
                if to_main:
                    del ghost[key]
                if len(freq) >= capacity:  # victim()
                    has_evicted = True
                    while True:
                        if len(main) > main_cap or not small:  # _evict_main
                            evicted = None
                            while main:
                                old, _ = pop_main(False)
                                count = freq[old]
                                if count >= 1:
                                    freq[old] = min(count, 3) - 1
                                    main[old] = None
                                else:
                                    del freq[old]
                                    evicted = old
                                    break
                        else:  # _evict_small
                            evicted = None
                            while small:
                                old, _ = pop_small(False)
                                if freq[old] >= threshold:
                                    freq[old] = 0
                                    main[old] = None
                                else:
                                    del freq[old]
                                    if ghost_cap > 0 and old not in ghost:  # _remember
                                        ghost[old] = None
                                        if len(ghost) > ghost_cap:
                                            pop_ghost(False)
                                    evicted = old
                                    break
                        if evicted is not None:
                            break
                freq[key] = 0  # _place
                if to_main or (not has_evicted and len(small) >= small_cap):
                    main[key] = None
                else:
                    small[key] = None
        self._has_evicted = has_evicted
        return hits

    def __len__(self) -> int:
        return len(self._freq) + (self._pending is not _NO_PENDING)

    def __contains__(self, key: object) -> bool:
        return key in self._freq or (self._pending is not _NO_PENDING and key == self._pending)

    def resident_keys(self) -> list[Hashable]:
        """The keys tracked: small's, then main's, each oldest first, then a newcomer held aside."""
        held = [] if self._pending is _NO_PENDING else [self._pending]
        return [*self._small, *self._main, *held]

    def frequent_keys(self) -> list[Hashable]:
        """The keys hit since they were queued (or last went round main's clock), in the same order."""
        freq = self._freq
        return [key for key in (*self._small, *self._main) if freq[key]]

    def clear(self) -> None:
        self._freq.clear()
        self._small.clear()
        self._main.clear()
        self._ghost.clear()
        self._has_evicted = False
        self._pending = _NO_PENDING
