"""The two bounds every policy sits between: Belady's optimum and the cold-miss floor."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from qcache.memory.policies.kernels import LazyKernel
from qcache.sim.sources import Key

#: The compiled version (numba, the ``sim-fast`` extra): same hits, for long traces.
KERNEL = LazyKernel("qcache.sim.belady_kernel", first_requests=200_000, loaded_requests=5_000)


def key_ids(keys: Sequence[Key]) -> np.ndarray:
    """Each request's key as a dense id (0, 1, ... in order of first appearance), as int64."""
    ids: dict[Key, int] = {}
    setdefault = ids.setdefault
    return np.fromiter((setdefault(key, len(ids)) for key in keys), dtype=np.int64, count=len(keys))


def _next_uses(ids: np.ndarray) -> np.ndarray:
    """Next position of each request's id; ``n + i`` when request ``i``'s id never comes back."""
    n = len(ids)
    following = np.arange(n, 2 * n, dtype=np.int64)
    if n > 1:
        order = np.argsort(ids, kind="stable")  # positions grouped by id, ascending within a group
        same = ids[order[:-1]] == ids[order[1:]]
        following[order[:-1][same]] = order[1:][same]
    return following


def next_use_positions(keys: Sequence[Key]) -> list[int]:
    """For each request, the position of the next request for the same key.

    A key never requested again gets ``len(keys) + i``: later than any real
    position, and distinct for every request, so heap entries never tie.
    Computed with numpy (a stable sort by key id), not a Python pass.
    """
    positions: list[int] = _next_uses(key_ids(keys)).tolist()
    return positions


def belady_hits(
    keys: Sequence[Key], capacity: int, next_use: Sequence[int] | None = None, *, compiled: bool | None = None
) -> int:
    """Hits of the offline optimum (MIN): on a miss with a full cache, evict the key used farthest ahead.

    Like the usual simulators, every missed key is inserted (no bypass), so
    this is the ceiling for policies that must admit what they miss. Next
    uses come from the key stream itself, so the result is exact whatever
    the trace format (libCacheSim needs them precomputed in the file).

    Every next-use position is distinct, so the heap holds bare positions
    and finds the key back from the position itself; an entry is stale
    unless it matches the key's current next use (lazy deletion). Keys
    whose request was their last sit on a stack instead, since they are
    the farthest of all: the most recent one goes first, as the heap
    (where request ``i``'s last use counts as ``n + i``) would choose.

    With numba installed, long traces run compiled (:data:`KERNEL`), unless
    ``compiled`` is False; True requires it.
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity!r}")
    id_array = key_ids(keys)
    kernel = KERNEL.for_job(len(keys)) if compiled is None else KERNEL.module() if compiled else None
    if compiled and kernel is None:
        raise ImportError("the compiled Belady needs numba (the sim-fast extra)")
    if kernel is not None:
        uses = _next_uses(id_array) if next_use is None else np.asarray(next_use, dtype=np.int64)
        try:
            compiled_hits: int = kernel.belady_hits(id_array, uses, capacity)
            return compiled_hits
        except Exception as exc:  # it could not compile: the pure loop gives the same hits
            if compiled:
                raise
            KERNEL.failed(exc)
    ids: list[int] = id_array.tolist()
    following: Sequence[int] = _next_uses(id_array).tolist() if next_use is None else next_use
    n = len(ids)
    resident: dict[int, int] = {}
    get = resident.get
    heap: list[int] = []
    finished: list[int] = []  # resident keys never requested again, most recent last
    push, pop = heapq.heappush, heapq.heappop
    finish, take_finished = finished.append, finished.pop
    hits = 0
    for key, nxt in zip(ids, following):
        if key in resident:
            hits += 1
        elif len(resident) >= capacity:
            if finished:
                del resident[take_finished()]
            else:
                while True:
                    position = -pop(heap)
                    candidate = ids[position]
                    if get(candidate) == position:
                        del resident[candidate]
                        break
        resident[key] = nxt
        if nxt >= n:
            finish(key)
        else:
            push(heap, -nxt)
    return hits


def unbounded_hits(keys: Sequence[Key]) -> int:
    """Hits of a cache that never evicts: every request but the first for each key."""
    return len(keys) - len(set(keys))
