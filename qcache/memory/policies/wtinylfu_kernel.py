"""W-TinyLFU's simulator replay compiled with numba: the pure loop's decisions, several times faster.

The pure-Python replay spends some 200 bytecodes per miss on the window,
probation, protected and ghost bookkeeping; compiled, the whole request is a
few dozen machine instructions. The policy's state moves into arrays, the
kernel replays dense key ids, and the state moves back, so a replay still
"starts from, and leaves, this policy's state":

* keys become dense ids (a hash pass on int keys, :func:`kernel_lists.factorize`;
  a dict pass otherwise);
  resident keys that the replay does not request get ids too;
* each id carries its sketch slots (:meth:`FrequencySketch.int_slot_array`
  or :meth:`FrequencySketch.slots`) and the id of its ghost fingerprint:
  ghosts are remembered by fingerprint, so keys sharing one share a ghost;
* the three LRU segments and the two ghost lists are doubly linked lists
  over those ids; the sketch's table and doorkeeper are numpy views of its
  bytearrays, updated in place.

Each piece of the policy's logic has one twin here: the sketch's
``increment_at``, ``frequency_at`` and ``reset`` (``_increment``,
``_frequency``, ``_reset``), ``HillClimber.adjust`` (``climber_adjust``),
``_resize_window`` (``_resize_window`` and ``_shed``), ``_step_down``, ``_fade``, ``_age_gate``
(``_gate_tick``), ``_demote_protected`` (``_demote``), ``victim``
(``_victim``), and ``_consult_ghosts`` and ``_far_return`` (inline in ``_replay``). The tests
compare hits and final state with the pure loop and the hooks, and the
twins piece by piece, so a change made to one side only fails them.
Importing this module imports numba: :class:`CompiledReplay` does, the first
time a replay is worth it (:data:`qcache.memory.policies.wtinylfu.KERNEL`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qcache.memory.policies.climber import HillClimber
from qcache.memory.policies.kernel_lists import (
    NIL,
    append,
    jit,
    key_ids,
    keys_of,
    link,
    pair_ids,
    pop_head,
    unlink,
    walk,
)
from qcache.memory.policies.sketch import MAX_COUNT, Slots
from qcache.memory.policies.wtinylfu import _NONE, FADE_HALVINGS, STALE_WINDOW_HITS, STARVED_WINDOW

if TYPE_CHECKING:
    from qcache.memory.policies.wtinylfu import WTinyLFUPolicy


_MASK64 = (1 << 64) - 1
_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2
_ABSENT = -1
# In a ghost list's ``gprev``: the mark is not in that list.
_OUT = -2

# Integer state (``istate``) and float state (``fstate``) of the policy, by position.
_CAPACITY, _WINDOW_MAX, _PROTECTED_MAX, _SAMPLE_HITS, _SAMPLE_COUNT, _SAMPLE_SIZE = 0, 1, 2, 3, 4, 5
_ADDITIONS, _AGING, _DOORKEEPER, _GHOST_CAPACITY, _CLIMBING, _FULL, _RESIDENT = 6, 7, 8, 9, 10, 11, 12
_GATE_LEFT, _GATE_PERIOD, _ROTATE, _FAR_FADE = 13, 14, 15, 16
_ISTATE = 17
_WINDOW_TARGET, _GHOST_GAIN, _PROTECTED_FRACTION, _WINDOW_HITS, _MAIN_HITS, _GATE_RATIO = 0, 1, 2, 3, 4, 5
_BOOST_RATIO, _BOOST_CAP, _WINDOW_GHOST_HITS, _MAIN_GHOST_HITS, _FLOOD_RATIO, _SHRINK_RATIO = 6, 7, 8, 9, 10, 11
_FAR_RATIO, _FAR_RETURNS, _PERIOD_WINDOW_START, _PERIOD_MAIN_START = 12, 13, 14, 15
_FSTATE = 16

#: HillClimber's fields, in the order of the kernel's climber array (``increase`` as 0.0 / 1.0).
CLIMBER_FIELDS = (
    "_previous",
    "_increase",
    "_step",
    "_initial_step",
    "_step_decay",
    "_restart_threshold",
    "_tolerance",
)
_PREVIOUS, _INCREASE, _STEP, _INITIAL_STEP, _STEP_DECAY, _RESTART_THRESHOLD, _TOLERANCE = range(7)

# -- the sketch (FrequencySketch.increment_at, frequency_at, reset) ------------------


@jit
def _frequency(key: int, slots: Any, table: Any, door: Any, doorkeeper: bool) -> int:
    count = min(table[slots[key, 0]], table[slots[key, 1]], table[slots[key, 2]], table[slots[key, 3]])
    if doorkeeper and door[slots[key, 4]] & slots[key, 5] and door[slots[key, 6]] & slots[key, 7]:
        count += 1
    return int(count)


@jit
def _reset(table: Any, door: Any, additions: int, doorkeeper: bool) -> int:
    """Halve the counters, subtract the odd halves, clear the doorkeeper; the new addition count."""
    odd = 0
    for index in range(table.shape[0]):
        value = table[index]
        odd += value & 1
        table[index] = value >> 1
    if doorkeeper:
        door[:] = 0
    return max(0, (additions - odd // 4) // 2)


@jit
def _fade(key: int, victim: int, slots: Any, table: Any, door: Any, istate: Any) -> None:
    """Halve the sketch until ``victim`` no longer outranks ``key`` (WTinyLFUPolicy._fade)."""
    doorkeeper = istate[_DOORKEEPER] != 0
    for _ in range(FADE_HALVINGS):
        if _frequency(victim, slots, table, door, doorkeeper) <= _frequency(key, slots, table, door, doorkeeper):
            return
        istate[_ADDITIONS] = _reset(table, door, istate[_ADDITIONS], doorkeeper)


@jit
def _increment(key: int, slots: Any, table: Any, door: Any, istate: Any) -> None:
    i, bit_i, j, bit_j = slots[key, 4], slots[key, 5], slots[key, 6], slots[key, 7]
    if istate[_DOORKEEPER] and not (door[i] & bit_i and door[j] & bit_j):
        door[i] |= bit_i
        door[j] |= bit_j
        istate[_ADDITIONS] += 1
    else:
        added = False
        for row in range(4):
            slot = slots[key, row]
            if table[slot] < MAX_COUNT:
                table[slot] += 1
                added = True
        if added:
            istate[_ADDITIONS] += 1
    if istate[_ADDITIONS] >= istate[_AGING]:
        istate[_ADDITIONS] = _reset(table, door, istate[_ADDITIONS], istate[_DOORKEEPER] != 0)


# -- window sizing (HillClimber.adjust, WTinyLFUPolicy._resize_window) ---------------


@jit
def climber_adjust(climber: Any, hit_rate: float) -> float:
    """:meth:`HillClimber.adjust` on the climber's array (CLIMBER_FIELDS); the window change."""
    if hit_rate < climber[_PREVIOUS] + climber[_TOLERANCE]:
        climber[_INCREASE] = 0.0 if climber[_INCREASE] != 0.0 else 1.0
    if abs(hit_rate - climber[_PREVIOUS]) >= climber[_RESTART_THRESHOLD]:
        climber[_STEP] = climber[_INITIAL_STEP]
    amount: float = climber[_STEP] if climber[_INCREASE] != 0.0 else -climber[_STEP]
    climber[_PREVIOUS] = hit_rate
    climber[_STEP] *= climber[_STEP_DECAY]
    return amount


@jit
def _resize_window(target: float, istate: Any, fstate: Any) -> None:
    capacity = istate[_CAPACITY]
    fstate[_WINDOW_TARGET] = min(max(target, 1.0), float(capacity))
    istate[_WINDOW_MAX] = int(round(fstate[_WINDOW_TARGET]))
    istate[_PROTECTED_MAX] = int((capacity - istate[_WINDOW_MAX]) * fstate[_PROTECTED_FRACTION])


@jit
def _gate_tick(istate: Any, fstate: Any) -> None:
    """One request of the growth gate's period; at its end, clear stale window hits, halve the hit counts and
    start the next period from them (WTinyLFUPolicy._age_gate)."""
    istate[_GATE_LEFT] -= 1
    if not istate[_GATE_LEFT]:
        if (
            fstate[_FAR_RATIO] > 0.0 and fstate[_WINDOW_HITS] == fstate[_PERIOD_WINDOW_START]
            and istate[_WINDOW_MAX] >= STARVED_WINDOW and fstate[_WINDOW_HITS] >= STALE_WINDOW_HITS
        ):
            fstate[_WINDOW_HITS] = 0.0
        fstate[_WINDOW_HITS] *= 0.5
        fstate[_MAIN_HITS] *= 0.5
        fstate[_WINDOW_GHOST_HITS] *= 0.5
        fstate[_MAIN_GHOST_HITS] *= 0.5
        fstate[_FAR_RETURNS] = 0.0
        fstate[_PERIOD_WINDOW_START] = fstate[_WINDOW_HITS]
        fstate[_PERIOD_MAIN_START] = fstate[_MAIN_HITS]
        istate[_GATE_LEFT] = istate[_GATE_PERIOD]


@jit
def _shed(region: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any, istate: Any) -> None:
    """Protected's keys beyond its bound back to probation (the end of WTinyLFUPolicy._resize_window)."""
    while sizes[_PROTECTED] > istate[_PROTECTED_MAX]:
        _demote(region, prev, nxt, heads, tails, sizes)


@jit
def _step_down(
    gsizes: Any, istate: Any, fstate: Any, region: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any
) -> None:
    """The window down a ghost step (WTinyLFUPolicy._step_down), protected's overflow back to probation."""
    step = fstate[_GHOST_GAIN] * max(gsizes[0] / (gsizes[1] + 1), 1.0)
    _resize_window(fstate[_WINDOW_TARGET] - step, istate, fstate)
    _shed(region, prev, nxt, heads, tails, sizes, istate)


@jit
def _climb(
    climber: Any, istate: Any, fstate: Any, region: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any
) -> None:
    delta = climber_adjust(climber, istate[_SAMPLE_HITS] / istate[_SAMPLE_COUNT])
    istate[_SAMPLE_HITS] = 0
    istate[_SAMPLE_COUNT] = 0
    _resize_window(fstate[_WINDOW_TARGET] + delta, istate, fstate)
    _shed(region, prev, nxt, heads, tails, sizes, istate)


# -- the replay ----------------------------------------------------------------------


@jit
def _replay(
    ids: Any,
    slots: Any,
    marks: Any,
    region: Any,
    prev: Any,
    nxt: Any,
    heads: Any,
    tails: Any,
    sizes: Any,
    gprev: Any,
    gnext: Any,
    gheads: Any,
    gtails: Any,
    gsizes: Any,
    table: Any,
    door: Any,
    istate: Any,
    fstate: Any,
    climber: Any,
) -> int:
    """Replay ``ids`` from the state in the other arrays (updated in place); the hit count.

    ``region[id]`` is -1 for an absent key; ghost list ``g`` holds mark ``m``
    when ``gprev[g, m]`` is not -2. The steps follow ``WTinyLFUPolicy.replay``.
    """
    capacity = istate[_CAPACITY]
    doorkeeper = istate[_DOORKEEPER] != 0
    ghost_capacity = istate[_GHOST_CAPACITY]
    climbing = istate[_CLIMBING] != 0
    sample_size = istate[_SAMPLE_SIZE]
    wprev, wnext = gprev[0], gnext[0]
    mprev, mnext = gprev[1], gnext[1]
    hits = 0
    for n in range(ids.shape[0]):
        key = ids[n]
        where = region[key]
        if where == _ABSENT:
            if ghost_capacity:
                mark = marks[key]
                if wprev[mark] != _OUT:
                    # a window ghost: a larger window would have kept it
                    unlink(0, mark, wprev, wnext, gheads, gtails, gsizes)
                    fstate[_WINDOW_GHOST_HITS] += 1.0
                    ours = fstate[_WINDOW_HITS] * max(sizes[_PROBATION] + sizes[_PROTECTED], 1)
                    theirs = fstate[_MAIN_HITS] * max(sizes[_WINDOW], 1)
                    floods = fstate[_WINDOW_GHOST_HITS] + fstate[_MAIN_GHOST_HITS] > fstate[_FLOOD_RATIO] * (
                        fstate[_WINDOW_HITS] + fstate[_MAIN_HITS]
                    )
                    if ours >= fstate[_GATE_RATIO] * theirs and not floods:
                        step = fstate[_GHOST_GAIN] * max(gsizes[1] / (gsizes[0] + 1), 1.0)
                        boost = fstate[_BOOST_CAP]
                        if theirs > 0.0:
                            boost = min(boost, ours / (fstate[_BOOST_RATIO] * theirs))
                        if fstate[_MAIN_GHOST_HITS] > 0.0:
                            boost = min(boost, fstate[_WINDOW_GHOST_HITS] / fstate[_MAIN_GHOST_HITS])
                        _resize_window(fstate[_WINDOW_TARGET] + step * max(boost, 1.0), istate, fstate)
                        _shed(region, prev, nxt, heads, tails, sizes, istate)
                    elif floods or (
                        fstate[_SHRINK_RATIO] > 0.0 and ours * fstate[_SHRINK_RATIO] < fstate[_GATE_RATIO] * theirs
                    ):
                        _step_down(gsizes, istate, fstate, region, prev, nxt, heads, tails, sizes)
                    wprev[mark] = _OUT
                elif mprev[mark] != _OUT:
                    fstate[_MAIN_GHOST_HITS] += 1.0
                    if sizes[_PROTECTED] and _frequency(heads[_PROTECTED], slots, table, door, doorkeeper) < _frequency(
                        key, slots, table, door, doorkeeper
                    ):
                        _demote(region, prev, nxt, heads, tails, sizes)
                    unlink(1, mark, mprev, mnext, gheads, gtails, gsizes)
                    mprev[mark] = _OUT
                    _step_down(gsizes, istate, fstate, region, prev, nxt, heads, tails, sizes)
                elif (
                    fstate[_FAR_RATIO] > 0.0 and fstate[_WINDOW_HITS] == fstate[_PERIOD_WINDOW_START]
                    and istate[_WINDOW_MAX] >= STARVED_WINDOW and climbing and istate[_FULL]
                    and _frequency(key, slots, table, door, doorkeeper) > 0
                ):
                    # a far return (WTinyLFUPolicy._far_return)
                    fstate[_FAR_RETURNS] += 1.0
                    period_hits = (
                        fstate[_WINDOW_HITS] + fstate[_MAIN_HITS] - fstate[_PERIOD_WINDOW_START]
                        - fstate[_PERIOD_MAIN_START]
                    )
                    if fstate[_FAR_RETURNS] > fstate[_FAR_RATIO] * math.floor(period_hits + 0.5):
                        _step_down(gsizes, istate, fstate, region, prev, nxt, heads, tails, sizes)
                        if istate[_FAR_FADE] and istate[_WINDOW_MAX] < STARVED_WINDOW and sizes[_PROBATION]:
                            _fade(key, heads[_PROBATION], slots, table, door, istate)
        else:
            hits += 1
        _increment(key, slots, table, door, istate)
        if where != _ABSENT:
            if where == _PROTECTED or where == _WINDOW:
                unlink(where, key, prev, nxt, heads, tails, sizes)
                append(where, key, prev, nxt, heads, tails, sizes)
            else:
                unlink(_PROBATION, key, prev, nxt, heads, tails, sizes)
                append(_PROTECTED, key, prev, nxt, heads, tails, sizes)
                region[key] = _PROTECTED
                if sizes[_PROTECTED] > istate[_PROTECTED_MAX]:
                    _demote(region, prev, nxt, heads, tails, sizes)
            if climbing and istate[_FULL]:
                istate[_SAMPLE_HITS] += 1
                if where == _WINDOW:
                    fstate[_WINDOW_HITS] += 1.0
                else:
                    fstate[_MAIN_HITS] += 1.0
                istate[_SAMPLE_COUNT] += 1
                _gate_tick(istate, fstate)
                if istate[_SAMPLE_COUNT] >= sample_size:
                    _climb(climber, istate, fstate, region, prev, nxt, heads, tails, sizes)
            continue
        if climbing and istate[_FULL]:
            istate[_SAMPLE_COUNT] += 1
            _gate_tick(istate, fstate)
            if istate[_SAMPLE_COUNT] >= sample_size:
                _climb(climber, istate, fstate, region, prev, nxt, heads, tails, sizes)
        append(_WINDOW, key, prev, nxt, heads, tails, sizes)
        region[key] = _WINDOW
        istate[_RESIDENT] += 1
        if not istate[_FULL]:
            istate[_FULL] = istate[_RESIDENT] >= capacity
            continue
        _victim(slots, marks, region, prev, nxt, heads, tails, sizes, gprev, gnext, gheads, gtails, gsizes,
                table, door, istate)
    return hits



@jit
def _demote(region: Any, prev: Any, nxt: Any, heads: Any, tails: Any, sizes: Any) -> None:
    """Protected's LRU key to probation's MRU end (WTinyLFUPolicy._demote_protected)."""
    key = pop_head(_PROTECTED, prev, nxt, heads, tails, sizes)
    append(_PROBATION, key, prev, nxt, heads, tails, sizes)
    region[key] = _PROBATION


@jit
def _victim(
    slots: Any,
    marks: Any,
    region: Any,
    prev: Any,
    nxt: Any,
    heads: Any,
    tails: Any,
    sizes: Any,
    gprev: Any,
    gnext: Any,
    gheads: Any,
    gtails: Any,
    gsizes: Any,
    table: Any,
    door: Any,
    istate: Any,
) -> None:
    """WTinyLFUPolicy.victim: the window's overflow to probation, the admission duel, the ghost."""
    doorkeeper = istate[_DOORKEEPER] != 0
    candidate = NIL
    while sizes[_WINDOW] > istate[_WINDOW_MAX]:
        candidate = pop_head(_WINDOW, prev, nxt, heads, tails, sizes)
        append(_PROBATION, candidate, prev, nxt, heads, tails, sizes)
        region[candidate] = _PROBATION
    left_main = True
    if sizes[_PROBATION]:
        evict = heads[_PROBATION]
        if candidate != NIL and candidate != evict:
            if _frequency(candidate, slots, table, door, doorkeeper) <= _frequency(
                evict, slots, table, door, doorkeeper
            ):
                if istate[_ROTATE]:
                    unlink(_PROBATION, evict, prev, nxt, heads, tails, sizes)
                    append(_PROBATION, evict, prev, nxt, heads, tails, sizes)
                evict = candidate
                left_main = False
        unlink(_PROBATION, evict, prev, nxt, heads, tails, sizes)
    elif sizes[_PROTECTED]:
        evict = pop_head(_PROTECTED, prev, nxt, heads, tails, sizes)
    else:
        evict = pop_head(_WINDOW, prev, nxt, heads, tails, sizes)
        left_main = False
    region[evict] = _ABSENT
    istate[_RESIDENT] -= 1
    ghost_capacity = istate[_GHOST_CAPACITY]
    if ghost_capacity:
        ghosts = 1 if left_main else 0
        gp, gn = gprev[ghosts], gnext[ghosts]
        mark = marks[evict]
        if gp[mark] == _OUT:  # an OrderedDict assignment to a present key keeps its place
            append(ghosts, mark, gp, gn, gheads, gtails, gsizes)
            if gsizes[ghosts] > ghost_capacity:
                gp[pop_head(ghosts, gp, gn, gheads, gtails, gsizes)] = _OUT


# -- moving the policy's state in and out ---------------------------------------------


def _fingerprint_lanes(slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ghost fingerprint ``a ^ b << 21 ^ c << 42 ^ d << 63`` of each row, as (high, low) 64-bit lanes."""
    a, b, c, d = (slots[:, row].astype(np.uint64) for row in range(4))
    low = a ^ (b << np.uint64(21)) ^ (c << np.uint64(42)) ^ (d << np.uint64(63))
    high = (b >> np.uint64(43)) ^ (c >> np.uint64(22)) ^ (d >> np.uint64(1))
    return high, low


def _slot_rows(policy: WTinyLFUPolicy, reps: np.ndarray | list[Hashable]) -> np.ndarray:
    """The sketch slots of each id's key: with numpy for int keys, else as the policy would."""
    sketch, resident = policy._sketch, policy._slots
    if isinstance(reps, np.ndarray):
        rows = sketch.int_slot_array(reps)
        if rows is not None:
            return rows
        reps = reps.tolist()
    listed: list[Slots] = [resident.get(key) or sketch.slots(key) for key in reps]
    return np.array(listed, dtype=np.int64).reshape(-1, 8)


def replay_segments(
    policy: WTinyLFUPolicy,
    keys: Sequence[Hashable],
    ends: Sequence[int],
    progress: Callable[[int], None] | None,
) -> list[int]:
    """:meth:`WTinyLFUPolicy.replay_segments`, compiled: the same hits per segment and the same state afterwards."""
    segments = (policy._window, policy._probation, policy._protected)
    resident = [key for segment in segments for key in segment]
    ids, resident_ids, reps = key_ids(keys, resident)
    slots = _slot_rows(policy, reps)
    count = len(reps)
    ghost_marks = [list(policy._window_ghost), list(policy._main_ghost)]
    known = [mark for marks in ghost_marks for mark in marks]
    high, low = _fingerprint_lanes(slots)
    if known:
        high = np.concatenate([high, np.array([mark >> 64 for mark in known], dtype=np.uint64)])
        low = np.concatenate([low, np.array([mark & _MASK64 for mark in known], dtype=np.uint64)])
    mark_ids, mark_rows = pair_ids(high, low)
    marks = mark_ids[:count]

    region = np.full(count, _ABSENT, dtype=np.int64)
    prev = np.full(count, NIL, dtype=np.int64)
    nxt = np.full(count, NIL, dtype=np.int64)
    heads, tails, sizes = (np.full(3, NIL, dtype=np.int64) for _ in range(3))
    begin = 0
    for number, segment in enumerate(segments):
        order = resident_ids[begin : begin + len(segment)].tolist()
        begin += len(segment)
        region[order] = number
        heads[number], tails[number], sizes[number] = link(order, prev, nxt)
    gprev = np.full((2, len(mark_rows)), _OUT, dtype=np.int64)
    gnext = np.full((2, len(mark_rows)), NIL, dtype=np.int64)
    gheads, gtails, gsizes = (np.full(2, NIL, dtype=np.int64) for _ in range(3))
    start = count
    for number, listed in enumerate(ghost_marks):
        order = mark_ids[start : start + len(listed)].tolist()
        start += len(listed)
        gheads[number], gtails[number], gsizes[number] = link(order, gprev[number], gnext[number])

    sketch = policy._sketch
    table = np.frombuffer(sketch._table, dtype=np.uint8)
    door = np.frombuffer(sketch._door, dtype=np.uint8)
    istate = np.zeros(_ISTATE, dtype=np.int64)
    istate[_CAPACITY] = policy.capacity
    istate[_WINDOW_MAX] = policy._window_max
    istate[_PROTECTED_MAX] = policy._protected_max
    istate[_SAMPLE_HITS] = policy._sample_hits
    istate[_SAMPLE_COUNT] = policy._sample_count
    istate[_SAMPLE_SIZE] = policy._sample_size
    istate[_ADDITIONS] = sketch._additions
    istate[_AGING] = sketch._sample_size
    istate[_DOORKEEPER] = sketch._doorkeeper
    istate[_GHOST_CAPACITY] = policy._ghost_capacity
    istate[_CLIMBING] = policy._climber is not None
    istate[_RESIDENT] = len(policy._where)
    istate[_FULL] = istate[_RESIDENT] >= policy.capacity
    istate[_GATE_LEFT] = policy._gate_left
    istate[_GATE_PERIOD] = policy._gate_period
    istate[_ROTATE] = policy._rotate
    istate[_FAR_FADE] = policy._far_fade
    fstate = np.array(
        [
            policy._window_target,
            policy._ghost_gain,
            policy._protected_fraction,
            policy._window_hits,
            policy._main_hits,
            policy._gate_ratio,
            policy._boost_ratio,
            policy._boost_cap,
            policy._window_ghost_hits,
            policy._main_ghost_hits,
            policy._flood_ratio,
            policy._shrink_ratio,
            policy._far_ratio,
            policy._far_returns,
            policy._period_window_start,
            policy._period_main_start,
        ],
        dtype=np.float64,
    )
    climber = climber_array(policy._climber)

    walk(NIL, nxt)  # compiled now (if need be), while a failure to compile still leaves the state as it was
    hits: list[int] = []
    start = 0
    for end in ends:
        hits.append(_replay(ids[start:end], slots, marks, region, prev, nxt, heads, tails, sizes, gprev, gnext,
                            gheads, gtails, gsizes, table, door, istate, fstate, climber))
        if progress is not None and end > start:
            progress(end - start)
        start = end
    del table, door  # the views: the sketch's bytearrays stay resizable

    # The state back into the policy, in the segments' and ghosts' order.
    where, resident_slots = policy._where, policy._slots
    where.clear()
    resident_slots.clear()
    for number, segment in enumerate(segments):
        nodes = walk(int(heads[number]), nxt)
        members = keys_of(reps, nodes)
        segment.clear()
        segment.update(dict.fromkeys(members))
        where.update(dict.fromkeys(members, number))
        resident_slots.update(zip(members, map(tuple, slots[nodes].tolist())))
    for number, ghosts in enumerate((policy._window_ghost, policy._main_ghost)):
        ghosts.clear()
        for mark in walk(int(gheads[number]), gnext[number]).tolist():
            row = int(mark_rows[mark])
            ghosts[int(high[row]) << 64 | int(low[row])] = None
    sketch._additions = int(istate[_ADDITIONS])
    policy._window_max = int(istate[_WINDOW_MAX])
    policy._protected_max = int(istate[_PROTECTED_MAX])
    policy._window_target = float(fstate[_WINDOW_TARGET])
    policy._sample_hits = int(istate[_SAMPLE_HITS])
    policy._sample_count = int(istate[_SAMPLE_COUNT])
    policy._window_hits = float(fstate[_WINDOW_HITS])
    policy._main_hits = float(fstate[_MAIN_HITS])
    policy._window_ghost_hits = float(fstate[_WINDOW_GHOST_HITS])
    policy._main_ghost_hits = float(fstate[_MAIN_GHOST_HITS])
    policy._far_returns = float(fstate[_FAR_RETURNS])
    policy._period_window_start = float(fstate[_PERIOD_WINDOW_START])
    policy._period_main_start = float(fstate[_PERIOD_MAIN_START])
    policy._gate_left = int(istate[_GATE_LEFT])
    load_climber(policy._climber, climber)
    policy._last_missed = _NONE
    return hits


def climber_array(climber: HillClimber | None) -> np.ndarray:
    """The climber's state as the kernel's float64 array (zeros without a climber)."""
    if climber is None:
        return np.zeros(len(CLIMBER_FIELDS), dtype=np.float64)
    return np.array([float(getattr(climber, field)) for field in CLIMBER_FIELDS], dtype=np.float64)


def load_climber(climber: HillClimber | None, state: np.ndarray) -> None:
    """Write what the kernel changes in the climber's array back into ``climber``."""
    if climber is None:
        return
    climber._previous = float(state[_PREVIOUS])
    climber._increase = bool(state[_INCREASE])
    climber._step = float(state[_STEP])

