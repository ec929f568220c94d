"""S3-FIFO's simulator replay compiled with numba: the pure loop's decisions, several times faster.

S3-FIFO is among the reference policies of every report, and often the best
of them; its pure loop ran at a sixth of ARC's compiled speed. As
:mod:`arc_kernel` does, the policy's state moves into arrays, the kernel
replays dense key ids, and the state moves back, so a replay still "starts
from, and leaves, this policy's state": the three FIFOs (small, main, ghost) become doubly linked lists over
the ids (:mod:`kernel_lists`), each resident id carries its hit count and
when it was placed, so the count map comes back in the order the hooks leave
it. ``_replay`` is the twin of :meth:`S3FIFOPolicy._replay_loop`, line for
line; the tests compare hits and final state with it and with the hooks.
Importing this module imports numba: :class:`CompiledReplay` does, the first
time a replay is worth it (:data:`qcache.memory.policies.s3fifo.KERNEL`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qcache.memory.policies.kernel_lists import (
    NIL,
    append,
    build_lists,
    jit,
    key_ids,
    keys_of,
    placement_order,
    pop_head,
    read_lists,
    replay_pieces,
    unlink,
    walk,
)

if TYPE_CHECKING:
    from qcache.memory.policies.s3fifo import S3FIFOPolicy

#: The FIFOs, by number (a key's entry in ``where``); _NOWHERE: in none of them.
_SMALL, _MAIN, _GHOST = 0, 1, 2
_NOWHERE = -1  # as build_lists marks an id in no list


@jit
def _replay(
    ids: Any, where: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any, freq: Any, placed: Any,
    state: Any, capacity: int, small_cap: int, main_cap: int, ghost_cap: int, threshold: int,
) -> int:
    """S3FIFOPolicy._replay_loop over ids; ``state`` holds whether an eviction happened yet, and the
    next placement's number (``placed``: each resident id's). Returns the hits."""
    has_evicted = state[0] != 0
    now = state[1]
    hits = 0
    for n in range(ids.shape[0]):
        key = ids[n]
        found = where[key]
        if found == _SMALL or found == _MAIN:
            hits += 1
            freq[key] += 1
            continue
        to_main = found == _GHOST
        if to_main:
            unlink(_GHOST, key, prev, nxt, heads, tails, sizes)
            where[key] = _NOWHERE
        if sizes[_SMALL] + sizes[_MAIN] >= capacity:  # victim()
            has_evicted = True
            evicted = NIL
            while evicted == NIL:
                if sizes[_MAIN] > main_cap or not sizes[_SMALL]:  # _evict_main
                    while sizes[_MAIN]:
                        old = pop_head(_MAIN, prev, nxt, heads, tails, sizes)
                        count = freq[old]
                        if count >= 1:
                            freq[old] = min(count, 3) - 1
                            append(_MAIN, old, prev, nxt, heads, tails, sizes)
                        else:
                            where[old] = _NOWHERE
                            evicted = old
                            break
                else:  # _evict_small
                    while sizes[_SMALL]:
                        old = pop_head(_SMALL, prev, nxt, heads, tails, sizes)
                        if freq[old] >= threshold:
                            freq[old] = 0
                            append(_MAIN, old, prev, nxt, heads, tails, sizes)
                            where[old] = _MAIN
                        else:
                            where[old] = _NOWHERE
                            if ghost_cap > 0:  # _remember (a resident key is never in the ghost FIFO)
                                append(_GHOST, old, prev, nxt, heads, tails, sizes)
                                where[old] = _GHOST
                                if sizes[_GHOST] > ghost_cap:
                                    where[pop_head(_GHOST, prev, nxt, heads, tails, sizes)] = _NOWHERE
                            evicted = old
                            break
        freq[key] = 0  # _place
        placed[key] = now
        now += 1
        into = _MAIN if to_main or (not has_evicted and sizes[_SMALL] >= small_cap) else _SMALL
        append(into, key, prev, nxt, heads, tails, sizes)
        where[key] = into
    state[0] = 1 if has_evicted else 0
    state[1] = now
    return hits


def replay_segments(
    policy: S3FIFOPolicy,
    keys: Sequence[Hashable],
    ends: Sequence[int],
    progress: Callable[[int], None] | None,
) -> list[int]:
    """:meth:`S3FIFOPolicy.replay_segments`, compiled: the same hits per segment and the same state afterwards."""
    policy._settle()
    fifos = (policy._small, policy._main, policy._ghost)
    counts = policy._freq
    # The resident keys first, in the count map's order (the order they were placed in).
    ids, known_ids, reps = key_ids(keys, [*counts, *policy._ghost])
    size = len(reps)
    id_of = dict(zip(counts, known_ids[: len(counts)].tolist(), strict=True))
    orders = (
        [id_of[key] for key in policy._small],
        [id_of[key] for key in policy._main],
        known_ids[len(counts) :].tolist(),
    )
    where, prev, nxt, heads, tails, sizes = build_lists(orders, size)
    freq = np.zeros(size, dtype=np.int64)
    freq[known_ids[: len(counts)]] = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    placed = np.zeros(size, dtype=np.int64)
    placed[known_ids[: len(counts)]] = np.arange(len(counts), dtype=np.int64)
    state = np.array([int(policy._has_evicted), len(counts)], dtype=np.int64)

    walk(NIL, nxt)  # compiled now (if need be), while a failure to compile still leaves the state as it was
    hits = replay_pieces(ends, progress, lambda start, end: _replay(
        ids[start:end], where, prev, nxt, heads, tails, sizes, freq, placed, state,
        policy.capacity, policy._small_cap, policy._main_cap, policy._ghost_cap, policy._threshold,
    ))

    # The state back into the policy, in the FIFOs' order, and the count map in placement order.
    nodes = read_lists(fifos, heads, nxt, reps)
    residents = placement_order(nodes[:2], placed)
    counts.clear()
    counts.update(zip(keys_of(reps, residents), freq[residents].tolist(), strict=True))
    policy._has_evicted = bool(state[0])
    return hits
