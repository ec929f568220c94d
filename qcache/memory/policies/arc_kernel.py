"""ARC's simulator replay compiled with numba: the pure loop's decisions, several times faster.

ADAPTIVE replays a shadow of ARC beside the cache, so ARC's replay speed is
half of the default policy's. As :mod:`wtinylfu_kernel` does, the policy's
state moves into arrays, the kernel replays dense key ids, and the state
moves back, so a replay still "starts from, and leaves, this policy's
state": the four lists (T1, T2, B1, B2) become doubly linked lists over the
ids (:mod:`kernel_lists`), ``p`` a float, and each resident id carries when
it was placed, so the resident map comes back in the order the hooks leave
it. ``_replay`` is the twin of :meth:`ARCPolicy._replay_loop`, line for
line; the tests compare hits and final state with it and with the hooks.
Importing this module imports numba: :class:`CompiledReplay` does, the
first time a replay is worth it (:data:`qcache.memory.policies.arc.KERNEL`).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qcache.memory.policies.holdback import NOTHING_HELD
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
    from qcache.memory.policies.arc import ARCPolicy

#: The lists, by number (a key's entry in ``where``); _NOWHERE: in none of them.
_T1, _T2, _B1, _B2 = 0, 1, 2, 3
_NOWHERE = -1  # as build_lists marks an id in no list
_NO_GHOST, _IN_B1, _IN_B2 = 0, 1, 2


@jit
def _replay(
    ids: Any, where: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any, placed: Any, state: Any,
    clock: Any, capacity: int,
) -> int:
    """ARCPolicy._replay_loop over ids; ``state[0]`` is ``p``, ``clock[0]`` the next placement's
    number (``placed``: each id's). Returns the hits."""
    p = state[0]
    now = clock[0]
    limit = float(capacity)
    hits = 0
    for n in range(ids.shape[0]):
        key = ids[n]
        found = where[key]
        if found == _T1 or found == _T2:
            hits += 1
            unlink(found, key, prev, nxt, heads, tails, sizes)
            append(_T2, key, prev, nxt, heads, tails, sizes)
            where[key] = _T2
            continue
        # a miss: _recall, then the eviction (when full), then _place_as
        ghost = _NO_GHOST
        if found == _B1:
            p = min(p + max(sizes[_B2] / sizes[_B1], 1.0), limit)
            unlink(_B1, key, prev, nxt, heads, tails, sizes)
            ghost = _IN_B1
        elif found == _B2:
            p = max(p - max(sizes[_B1] / sizes[_B2], 1.0), 0.0)
            unlink(_B2, key, prev, nxt, heads, tails, sizes)
            ghost = _IN_B2
        if sizes[_T1] + sizes[_T2] >= capacity:
            replace = True
            if ghost == _NO_GHOST:  # _evict_on_plain_miss
                if sizes[_T1] + sizes[_B1] + 1 > capacity:
                    if sizes[_B1]:
                        where[pop_head(_B1, prev, nxt, heads, tails, sizes)] = _NOWHERE
                    else:
                        where[pop_head(_T1, prev, nxt, heads, tails, sizes)] = _NOWHERE
                        replace = False
                elif sizes[_B2] and sizes[_T1] + sizes[_B1] + sizes[_T2] + sizes[_B2] >= 2 * capacity:
                    where[pop_head(_B2, prev, nxt, heads, tails, sizes)] = _NOWHERE
            if replace:  # _replace
                size = sizes[_T1]
                if (size and (size > p or (size == p and ghost == _IN_B2))) or not sizes[_T2]:
                    evicted = pop_head(_T1, prev, nxt, heads, tails, sizes)
                    append(_B1, evicted, prev, nxt, heads, tails, sizes)
                    where[evicted] = _B1
                else:
                    evicted = pop_head(_T2, prev, nxt, heads, tails, sizes)
                    append(_B2, evicted, prev, nxt, heads, tails, sizes)
                    where[evicted] = _B2
        into = _T1 if ghost == _NO_GHOST else _T2
        append(into, key, prev, nxt, heads, tails, sizes)
        where[key] = into
        placed[key] = now
        now += 1
    state[0] = p
    clock[0] = now
    return hits


def replay_segments(
    policy: ARCPolicy,
    keys: Sequence[Hashable],
    ends: Sequence[int],
    progress: Callable[[int], None] | None,
) -> list[int]:
    """:meth:`ARCPolicy.replay_segments`, compiled: the same hits per segment and the same state afterwards."""
    policy._settle()
    lists = (policy._t1, policy._t2, policy._b1, policy._b2)
    resident = policy._resident
    # The resident keys first, in the resident map's order (the order they were placed in).
    ids, known_ids, reps = key_ids(keys, [*resident, *policy._b1, *policy._b2])
    count = len(reps)
    id_of = dict(zip(resident, known_ids[: len(resident)].tolist(), strict=True))
    ghost_ids = known_ids[len(resident) :].tolist()
    orders = (
        [id_of[key] for key in policy._t1],
        [id_of[key] for key in policy._t2],
        ghost_ids[: len(policy._b1)],
        ghost_ids[len(policy._b1) :],
    )
    where, prev, nxt, heads, tails, sizes = build_lists(orders, count)
    placed = np.zeros(count, dtype=np.int64)
    placed[known_ids[: len(resident)]] = np.arange(len(resident), dtype=np.int64)
    state = np.array([policy._p], dtype=np.float64)
    clock = np.array([len(resident)], dtype=np.int64)

    walk(NIL, nxt)  # compiled now (if need be), while a failure to compile still leaves the state as it was
    hits = replay_pieces(ends, progress, lambda start, end: _replay(
        ids[start:end], where, prev, nxt, heads, tails, sizes, placed, state, clock, policy.capacity,
    ))

    # The state back into the policy, in the lists' order, and the resident map in placement order.
    nodes = read_lists(lists, heads, nxt, reps)
    residents = placement_order(nodes[:2], placed)
    resident.clear()
    resident.update(zip(keys_of(reps, residents), (where[residents] == _T2).tolist(), strict=True))
    policy._p = float(state[0])
    policy._last_missed = NOTHING_HELD
    return hits

