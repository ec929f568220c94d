"""Doubly linked lists over dense key ids, for the policies' numba-compiled replays.

A compiled replay (:mod:`wtinylfu_kernel`, :mod:`arc_kernel`,
:mod:`s3fifo_kernel`) moves a policy's ordered dicts into arrays: each key
becomes a dense id (:func:`key_ids`), each ordered dict a list over those ids
(``prev``/``nxt`` per id; ``heads``, ``tails`` and ``sizes`` per list,
:func:`link`, or :func:`build_lists` for several), and :func:`walk` reads a
list back in order (:func:`read_lists` into the dicts). Importing this module
imports numba.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping, Sequence
from typing import Any, TypeVar, cast

import numba
import numpy as np

_Function = TypeVar("_Function", bound=Callable[..., Any])

#: The end of a list (no previous or next id), and an empty list's head and tail.
NIL = -1

# Without numba's reference counting (_nrt=False): each helper call would otherwise take and
# release a reference to every array it is handed, atomic operations that made the kernel 5x
# slower. The kernel allocates nothing, so it needs none; cache=True keeps the machine code
# (compiled once in some 6 s) in __pycache__ for the next process.
_KERNEL_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False}


def jit(function: _Function) -> _Function:
    return cast(_Function, numba.njit(**_KERNEL_OPTIONS)(function))


# -- doubly linked lists over ids: heads[l], tails[l], sizes[l] -------------------


@jit
def append(lst: int, node: int, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any) -> None:
    tail = tails[lst]
    prev[node] = tail
    nxt[node] = NIL
    if tail == NIL:
        heads[lst] = node
    else:
        nxt[tail] = node
    tails[lst] = node
    sizes[lst] += 1


@jit
def unlink(lst: int, node: int, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any) -> None:
    before, after = prev[node], nxt[node]
    if before == NIL:
        heads[lst] = after
    else:
        nxt[before] = after
    if after == NIL:
        tails[lst] = before
    else:
        prev[after] = before
    sizes[lst] -= 1


@jit
def pop_head(lst: int, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any) -> int:
    node: int = heads[lst]
    unlink(lst, node, prev, nxt, heads, tails, sizes)
    return node


def allocating_jit(function: _Function) -> _Function:
    return cast(_Function, numba.njit(function, cache=True))


_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing's multiplier (2**64 / the golden ratio)


@allocating_jit
def factorize(first: Any, then: Any) -> tuple[Any, Any, Any]:
    """Dense ids of int64 keys in order of first appearance, ``first`` before ``then``: the ids
    of each, and the key of each id. One pass over an open-addressing table (np.unique's sort
    took half as long as the whole compiled replay)."""
    bits = 10
    while (1 << bits) < 4 * first.shape[0]:
        bits += 1
    capacity = 1 << bits
    shift = np.uint64(64 - bits)
    table_keys = np.empty(capacity, dtype=np.int64)
    table_ids = np.full(capacity, -1, dtype=np.int64)
    distinct = np.empty(max(capacity // 2, 16), dtype=np.int64)
    count = 0
    out = (np.empty(first.shape[0], dtype=np.int64), np.empty(then.shape[0], dtype=np.int64))
    for part in range(2):
        keys = first if part == 0 else then
        ids = out[part]
        for n in range(keys.shape[0]):
            key = keys[n]
            slot = (np.uint64(key) * np.uint64(_MIX)) >> shift
            while table_ids[slot] != -1 and table_keys[slot] != key:
                slot = (slot + np.uint64(1)) & np.uint64(capacity - 1)
            if table_ids[slot] == -1:
                table_keys[slot] = key
                table_ids[slot] = count
                if count == distinct.shape[0]:
                    grown = np.empty(2 * count, dtype=np.int64)
                    grown[:count] = distinct
                    distinct = grown
                distinct[count] = key
                count += 1
                if 2 * count > capacity:  # keep the table at most half full: rebuild it twice as large
                    bits += 1
                    capacity = 1 << bits
                    shift = np.uint64(64 - bits)
                    table_keys = np.empty(capacity, dtype=np.int64)
                    table_ids = np.full(capacity, -1, dtype=np.int64)
                    for known in range(count):
                        spot = (np.uint64(distinct[known]) * np.uint64(_MIX)) >> shift
                        while table_ids[spot] != -1:
                            spot = (spot + np.uint64(1)) & np.uint64(capacity - 1)
                        table_keys[spot] = distinct[known]
                        table_ids[spot] = known
                ids[n] = count - 1
            else:
                ids[n] = table_ids[slot]
    return out[0], out[1], distinct[:count].copy()


@allocating_jit
def pair_ids(high: Any, low: Any) -> tuple[Any, Any]:
    """Dense ids of the (high, low) uint64 pairs in order of first appearance, and the first row
    of each id. One pass over an open-addressing table at most half full (a lexsort of the pairs
    took a fifth of W-TinyLFU's whole compiled replay)."""
    count = high.shape[0]
    bits = 4
    while (1 << bits) < 2 * count:
        bits += 1
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(64 - bits)
    table = np.full(1 << bits, -1, dtype=np.int64)
    ids = np.empty(count, dtype=np.int64)
    rows = np.empty(count, dtype=np.int64)
    distinct = 0
    for n in range(count):
        first, second = high[n], low[n]
        slot = ((second ^ (first * np.uint64(_MIX))) * np.uint64(_MIX)) >> shift
        while table[slot] != -1:
            row = rows[table[slot]]
            if high[row] == first and low[row] == second:
                break
            slot = (slot + np.uint64(1)) & mask
        if table[slot] == -1:
            table[slot] = distinct
            rows[distinct] = n
            distinct += 1
        ids[n] = table[slot]
    return ids, rows[:distinct].copy()


def key_ids(
    keys: Sequence[Hashable] | np.ndarray, resident: list[Hashable]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | list[Hashable]]:
    """Dense ids of ``keys`` and of the ``resident`` keys, and the key of each id: an int64 array
    when every key is a Python int (:func:`factorize`), else a list (a dict pass); either way the
    resident keys first, then the others in order of first appearance."""
    array = np.empty(0, dtype=object)
    if isinstance(keys, np.ndarray):
        array = keys
    elif len(keys) and type(keys[0]) is int:  # noqa: E721  # not a subclass: bool and IntEnum keep their identity
        try:
            array = np.asarray(keys)
        except (ValueError, OverflowError, TypeError):
            pass
    if (
        array.dtype == np.int64
        and array.ndim == 1
        and all(type(key) is int and -(1 << 63) <= key < 1 << 63 for key in resident)  # noqa: E721
    ):
        resident_ids, ids, distinct = factorize(np.asarray(resident, dtype=np.int64), array)
        return ids, resident_ids, distinct
    index: dict[Hashable, int] = {key: n for n, key in enumerate(resident)}
    setdefault = index.setdefault
    ids = np.fromiter((setdefault(key, len(index)) for key in keys), dtype=np.int64, count=len(keys))
    return ids, np.arange(len(resident), dtype=np.int64), list(index)


def keys_of(reps: np.ndarray | list[Hashable], nodes: np.ndarray) -> list[Hashable]:
    """The keys of ids ``nodes``."""
    if isinstance(reps, np.ndarray):
        return reps[nodes].tolist()  # type: ignore[no-any-return]
    return [reps[node] for node in nodes.tolist()]


def link(order: list[int], prev: np.ndarray, nxt: np.ndarray) -> tuple[int, int, int]:
    """Chain ``order`` (ids) into ``prev``/``nxt``; the list's head, tail and size."""
    if not order:
        return NIL, NIL, 0
    nodes = np.asarray(order, dtype=np.int64)
    prev[nodes[1:]] = nodes[:-1]
    prev[nodes[0]] = NIL
    nxt[nodes[:-1]] = nodes[1:]
    nxt[nodes[-1]] = NIL
    return int(nodes[0]), int(nodes[-1]), len(order)


def build_lists(orders: Sequence[list[int]], size: int) -> tuple[np.ndarray, ...]:
    """Lists numbered 0, 1, ... over ``size`` ids, each chained in the order of its entry of
    ``orders``: ``where`` (each id's list number, -1 for none), ``prev``, ``nxt``, and each list's
    ``heads``, ``tails`` and ``sizes``."""
    where = np.full(size, -1, dtype=np.int64)
    prev = np.full(size, NIL, dtype=np.int64)
    nxt = np.full(size, NIL, dtype=np.int64)
    heads, tails, sizes = (np.full(len(orders), NIL, dtype=np.int64) for _ in range(3))
    for number, order in enumerate(orders):
        where[order] = number
        heads[number], tails[number], sizes[number] = link(order, prev, nxt)
    return where, prev, nxt, heads, tails, sizes


def read_lists(
    targets: Sequence[MutableMapping[Hashable, None]], heads: np.ndarray, nxt: np.ndarray,
    reps: np.ndarray | list[Hashable],
) -> list[np.ndarray]:
    """Each list back into its ordered dict in ``targets`` (cleared first), head to tail; each list's ids."""
    nodes = [walk(int(heads[number]), nxt) for number in range(len(targets))]
    for target, listed in zip(targets, nodes, strict=True):
        target.clear()
        target.update(dict.fromkeys(keys_of(reps, listed)))
    return nodes


def replay_pieces(
    ends: Sequence[int], progress: Callable[[int], None] | None, replay: Callable[[int, int], int]
) -> list[int]:
    """``replay(start, end)`` segment by segment, up to each of ``ends``: the hits of each;
    ``progress`` gets the length of each segment that holds requests."""
    hits: list[int] = []
    start = 0
    for end in ends:
        hits.append(replay(start, end))
        if progress is not None and end > start:
            progress(end - start)
        start = end
    return hits


def placement_order(nodes: Sequence[np.ndarray], placed: np.ndarray) -> np.ndarray:
    """The ids of ``nodes`` (lists' ids) by their ``placed`` stamps: the order a policy's map of
    resident keys has when the hooks fill it."""
    residents = np.concatenate(nodes)
    return residents[np.argsort(placed[residents], kind="stable")]


@allocating_jit
def walk(head: int, nxt: Any) -> Any:
    """The ids of a list from head to tail, as an int64 array."""
    count = 0
    node = head
    while node != NIL:
        count += 1
        node = nxt[node]
    out = np.empty(count, dtype=np.int64)
    node = head
    for n in range(count):
        out[n] = node
        node = nxt[node]
    return out
