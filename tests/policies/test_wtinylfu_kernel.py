"""W-TinyLFU's compiled replay: hit for hit and state for state the pure loop and the hooks.

Every comparison is exact: one hit more or less, one key in another place,
one counter of the sketch off, and the test fails. The kernel is forced
(``compiled=True``) or refused (``compiled=False``) so both run whatever
the size thresholds say; the kernel's tests skip where numba is absent,
the fallback's run everywhere.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import pytest

from qcache.memory.policies import wtinylfu
from qcache.memory.policies.adaptive import FREQUENCY_SIDE
from qcache.memory.policies.climber import HillClimber
from qcache.memory.policies.kernels import LazyKernel
from qcache.memory.policies.sketch import FrequencySketch
from qcache.memory.policies.wtinylfu import WTinyLFUPolicy
from qcache.sim import (
    Loop,
    Phases,
    RecentReuse,
    ShiftingWorkingSet,
    TraceFile,
    WithScans,
    Zipf,
    run_policy,
    shared_traces_dir,
)

from .support import by_hooks

kernel = pytest.importorskip("qcache.memory.policies.wtinylfu_kernel", reason="numba is not installed")
kernel_lists = pytest.importorskip("qcache.memory.policies.kernel_lists", reason="numba is not installed")

#: The ``failing_kernel`` fixture (tests/conftest.py).
FailingKernel = Callable[[LazyKernel, str, BaseException], None]


def _phases() -> list[Hashable]:
    parts = (
        Zipf(keys=4000, requests=12000, exponent=1.0, seed=8),
        ShiftingWorkingSet(requests=12000, width=300, rate=3, seed=9),
        Loop(keys=700, requests=8000),
        Zipf(keys=20000, requests=10000, exponent=0.7, seed=10),
    )
    return list(Phases(parts).load().keys)


def _wide_ints() -> list[Hashable]:
    return [key * 0x9E3779B97F4A7C15 % (2**63) - 2**62 for key in Zipf(keys=6000, requests=25000, seed=7)]


WORKLOADS: dict[str, Callable[[], list[Hashable]]] = {
    "zipf": lambda: list(Zipf(keys=20000, requests=40000, exponent=0.9, seed=3)),
    "scans": lambda: list(WithScans(Zipf(keys=5000, requests=30000, exponent=0.9, seed=1), 1000, 400)),
    "loop": lambda: list(Loop(keys=1800, requests=30000)),
    "shifting": lambda: list(ShiftingWorkingSet(requests=30000, width=800, rate=4, seed=4)),
    "reuse": lambda: list(RecentReuse(requests=30000, seed=5)),
    "phases": _phases,
    "strings": lambda: [f"user:{key}" for key in Zipf(keys=3000, requests=25000, exponent=0.8, seed=5)],
    # ints, strs, bytes and tuples together, and ints at the edges of int64 (the dict pass).
    "mixed": lambda: [
        (key, "x") if key % 5 == 0 else f"k{key}" if key % 5 == 1 else key.to_bytes(4, "big") if key % 5 == 2
        else key - 2**62 * (key % 3)
        for key in Zipf(keys=6000, requests=25000, exponent=0.8, seed=6)
    ],
    "wide ints": lambda: _wide_ints(),
    # -(2**63) is the one int64 whose slots numpy does not compute: every key is then hashed by itself.
    "int64 edges": lambda: [-(2**63), 2**63 - 1, *_wide_ints()[:20000], -(2**63), 2**63 - 1],
}
SIZES = (1, 2, 3, 7, 100, 1500)
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "fixed window": {"adaptive": False},
    "no doorkeeper": {"doorkeeper": False},
    "fixed, no doorkeeper": {"adaptive": False, "doorkeeper": False, "window_fraction": 0.01},
    "as ADAPTIVE builds it": dict(FREQUENCY_SIDE),
    "ungated, short gate period": {"gate_ratio": 0.0, "gate_factor": 0.5},
    "strict gate": {"gate_ratio": 2.0},
    "eager boost": {"boost_ratio": 0.5, "boost_cap": 64.0},
    "no boost": {"boost_cap": 1.0},
    "quick to shrink, quick to flood": {"shrink_ratio": 1.0, "flood_ratio": 1.0},
    "no flood guard": {"flood_ratio": float("inf")},
    "rotating probation": {"rotate_probation": True},
    "far returns": {"far_ratio": 1.0},
    "far returns that fade": {"far_ratio": 1.0, "far_fade": True},
}


def state(policy: WTinyLFUPolicy) -> dict[str, Any]:
    """Everything a later request depends on, in comparable form (orders included)."""
    sketch, climber = policy._sketch, policy._climber
    return {
        "window": list(policy._window),
        "probation": list(policy._probation),
        "protected": list(policy._protected),
        "where": dict(policy._where),  # its order does not matter, the segments' does
        "slots": dict(policy._slots),
        "window ghosts": list(policy._window_ghost),
        "main ghosts": list(policy._main_ghost),
        "table": bytes(sketch._table),
        "door": bytes(sketch._door),
        "additions": sketch._additions,
        "window max": policy._window_max,
        "protected max": policy._protected_max,
        "window target": policy._window_target,
        "sample": (policy._sample_hits, policy._sample_count),
        "gate": (policy._window_hits, policy._main_hits, policy._gate_left),
        "boost": (policy._window_ghost_hits, policy._main_ghost_hits),
        "far returns": (policy._far_returns, policy._period_window_start, policy._period_main_start),
        "climber": None if climber is None else [getattr(climber, name) for name in HillClimber.__slots__],
        "last missed": policy._last_missed is wtinylfu._NONE,
    }


def assert_same(ours: WTinyLFUPolicy, theirs: WTinyLFUPolicy) -> None:
    mine, other = state(ours), state(theirs)
    for field in mine:
        assert mine[field] == other[field], field


def hooked(keys: Sequence[Hashable], size: int, **options: Any) -> tuple[int, WTinyLFUPolicy]:
    policy = WTinyLFUPolicy(size, **options)
    hits = run_policy(policy, keys)
    policy._last_missed = wtinylfu._NONE  # the hooks' driver leaves it set only between miss and insert
    return hits, policy


def replayed(keys: Sequence[Hashable], size: int, compiled: bool, **options: Any) -> tuple[int, WTinyLFUPolicy]:
    policy = WTinyLFUPolicy(size, **options)
    return policy.replay(keys, compiled=compiled), policy


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_kernel_pure_loop_and_hooks_agree(workload: str, size: int) -> None:
    keys = WORKLOADS[workload]()
    ours, compiled = replayed(keys, size, True)
    loop, pure = replayed(keys, size, False)
    hooks, driven = hooked(keys, size)
    assert ours == loop == hooks
    assert_same(compiled, pure)
    assert_same(compiled, driven)


@pytest.mark.parametrize("size", [2, 3, 100, 1500])
@pytest.mark.parametrize("workload", ["zipf", "scans", "phases", "strings"])
@pytest.mark.parametrize("option", sorted(OPTIONS)[1:])
def test_kernel_agrees_with_other_settings(option: str, workload: str, size: int) -> None:
    keys = WORKLOADS[workload]()
    ours, compiled = replayed(keys, size, True, **OPTIONS[option])
    loop, pure = replayed(keys, size, False, **OPTIONS[option])
    assert ours == loop
    assert_same(compiled, pure)


@pytest.mark.parametrize("size", [7, 100, 1500])  # (at 3 entries probation holds one key: nothing to rotate)
@pytest.mark.parametrize("workload", ["zipf", "scans", "phases"])
def test_the_hooks_rotate_duel_winners_as_the_replays_do(workload: str, size: int) -> None:
    keys = WORKLOADS[workload]()
    ours, compiled = replayed(keys, size, True, rotate_probation=True)
    loop, pure = replayed(keys, size, False, rotate_probation=True)
    hooks, driven = hooked(keys, size, rotate_probation=True)
    assert ours == loop == hooks
    assert_same(compiled, pure)
    assert_same(compiled, driven)
    assert state(compiled) != state(replayed(keys, size, True)[1])  # the premise: rotation changed decisions


def _shift_then_loop() -> list[Hashable]:
    """A shifting set, then a loop 1.4x a cache of 1,000: far returns move its window."""
    parts = (ShiftingWorkingSet(requests=15000, width=600, rate=3, seed=5), Loop(keys=1400, requests=15000))
    return list(Phases(parts).load().keys)


def _reuse_then_loop() -> list[Hashable]:
    """Recent reuse, then a loop 1.1x a cache of 1,000: far returns end the window's shrink with a fade."""
    parts = (RecentReuse(requests=15000, new_fraction=0.3, mean_gap=200, seed=136), Loop(keys=1100, requests=20000))
    return list(Phases(parts).load().keys)


@pytest.mark.parametrize(
    ("workload", "off"),
    [(_shift_then_loop, ("far_ratio", "far_fade")), (_reuse_then_loop, ("far_fade",))],
    ids=["far returns", "the fade"],
)
def test_the_hooks_count_far_returns_and_fade_as_the_replays_do(
    workload: Callable[[], list[Hashable]], off: tuple[str, ...]
) -> None:
    keys = workload()
    ours, compiled = replayed(keys, 1000, True, **FREQUENCY_SIDE)
    loop, pure = replayed(keys, 1000, False, **FREQUENCY_SIDE)
    hooks, driven = hooked(keys, 1000, **FREQUENCY_SIDE)
    assert ours == loop == hooks
    assert_same(compiled, pure)
    assert_same(compiled, driven)
    without = {name: value for name, value in FREQUENCY_SIDE.items() if name not in off}
    assert ours > replayed(keys, 1000, True, **without)[0]  # the premise: they changed decisions


def test_far_returns_carry_across_a_replay_in_parts() -> None:
    """Cut where a period's far returns are counted and not yet past the ratio, kernel and pure loop in turn."""
    keys = _shift_then_loop()
    whole, one = replayed(keys, 1000, True, **FREQUENCY_SIDE)
    cuts = [0, *range(15_000, 20_001, 250), len(keys)]
    for first_compiled in (True, False):
        parts = WTinyLFUPolicy(1000, **FREQUENCY_SIDE)
        hits, carried = 0, 0
        for number, (start, stop) in enumerate(zip(cuts, cuts[1:])):
            hits += parts.replay(keys[start:stop], compiled=(number % 2 == 0) == first_compiled)
            carried += parts._far_returns > 0.0
        assert hits == whole
        assert_same(parts, one)
        assert carried  # the premise: some cut fell with far returns counted in the period


@pytest.mark.parametrize("size", [1, 3, 100, 1500])
@pytest.mark.parametrize("workload", ["zipf", "shifting", "mixed"])
def test_a_replay_in_parts_is_one_replay(workload: str, size: int) -> None:
    keys = WORKLOADS[workload]()
    whole, one = replayed(keys, size, True)
    cuts = [0, 1, 2, len(keys) // 3, len(keys) // 2, len(keys) - 1, len(keys)]
    for first_compiled in (True, False):
        parts = WTinyLFUPolicy(size)
        hits = 0
        for number, (start, stop) in enumerate(zip(cuts, cuts[1:])):
            # Alternate the kernel and the pure loop: each starts from the other's state.
            hits += parts.replay(keys[start:stop], compiled=(number % 2 == 0) == first_compiled)
        assert hits == whole
        assert_same(parts, one)
    progress: list[int] = []
    chunked = WTinyLFUPolicy(size)
    assert chunked.replay(keys, progress.append, 777, compiled=True) == whole
    assert progress == [777] * (len(keys) // 777) + [len(keys) % 777]
    assert_same(chunked, one)


@pytest.mark.parametrize("size", [2, 100, 1500])
def test_the_hooks_carry_on_after_a_compiled_replay(size: int) -> None:
    keys = WORKLOADS["phases"]()
    half = len(keys) // 2
    compiled, pure = WTinyLFUPolicy(size), WTinyLFUPolicy(size)
    assert compiled.replay(keys[:half], compiled=True) == pure.replay(keys[:half], compiled=False)
    assert by_hooks(compiled, keys[half:]) == by_hooks(pure, keys[half:])
    whole, driven = hooked(keys, size)
    assert by_hooks(WTinyLFUPolicy(size), keys) == whole
    assert_same(compiled, pure)
    assert [compiled.victim() for _ in range(len(compiled))] == [pure.victim() for _ in range(len(pure))]


def test_an_empty_replay_changes_nothing() -> None:
    keys = WORKLOADS["strings"]()
    compiled, pure = replayed(keys, 50, True)[1], replayed(keys, 50, False)[1]
    assert compiled.replay([], compiled=True) == 0
    assert_same(compiled, pure)


@pytest.mark.parametrize("size", [2, 3, 5])
def test_keys_sharing_a_ghost_fingerprint_share_the_ghost(size: int) -> None:
    """A tiny cache's sketch rows are 64 counters wide, so among 300,000 random keys thousands share all
    four counters -- and so a ghost fingerprint -- without being equal: a trace of only such
    keys makes ghost hits by another key the rule, and they must behave as in the pure loop."""
    sketch = WTinyLFUPolicy(size)._sketch
    candidates = np.unique(np.random.default_rng(size).integers(0, 2**62, 300_000))
    rows = sketch.int_slot_array(candidates)
    assert rows is not None
    groups: dict[tuple[int, ...], list[int]] = {}
    for key, row in zip(candidates.tolist(), rows[:, :4].tolist()):
        groups.setdefault(tuple(row), []).append(key)
    shared = [group for group in groups.values() if len(group) > 1]
    assert len(shared) > 100
    rng = random.Random(size)
    keys = [rng.choice(group) for group in rng.choices(shared[:40], k=30_000)]
    ours, compiled = replayed(keys, size, True)
    loop, pure = replayed(keys, size, False)
    assert ours == loop
    assert_same(compiled, pure)


def test_a_numpy_array_of_keys_replays_as_its_list() -> None:
    keys = WORKLOADS["zipf"]()
    ours, compiled = replayed(np.array(keys, dtype=np.int64), 100, True)  # type: ignore[arg-type]
    loop, pure = replayed(keys, 100, False)
    assert ours == loop
    assert_same(compiled, pure)
    assert replayed(np.array(keys, dtype=np.int32), 100, True)[0] == loop  # type: ignore[arg-type]


def test_int_keys_take_the_numpy_path_and_others_the_dict_pass() -> None:
    resident = [5, 7]
    ids, resident_ids, reps = kernel_lists.key_ids([7, 9, 5, 9, 11], resident)
    assert isinstance(reps, np.ndarray)
    assert [reps[n] for n in ids.tolist()] == [7, 9, 5, 9, 11]
    assert [reps[n] for n in resident_ids.tolist()] == resident
    ids, resident_ids, reps = kernel_lists.key_ids(["a", 1, "a", (1, 2)], ["z"])
    assert reps == ["z", "a", 1, (1, 2)] and ids.tolist() == [1, 2, 1, 3] and resident_ids.tolist() == [0]



@pytest.mark.parametrize("distinct", [0, 1, 3, 5000, 70_000])
def test_int_keys_get_dense_ids_in_order_of_first_appearance(distinct: int) -> None:
    rng = np.random.default_rng(distinct)
    edges = np.array([-1, 0, -(1 << 63), (1 << 63) - 1], dtype=np.int64)
    pool = np.concatenate([edges, rng.integers(-(1 << 63), (1 << 63) - 1, distinct, dtype=np.int64)])
    resident = pool[: len(pool) // 3]
    keys = rng.choice(pool, 3 * len(pool))  # the table is rebuilt several times on the way
    resident_ids, ids, reps = kernel_lists.factorize(resident, keys)
    assert resident_ids.tolist() == list(range(len(resident)))
    assert (reps[ids] == keys).all() and (reps[resident_ids] == resident).all()
    expected = list(dict.fromkeys([*resident.tolist(), *keys.tolist()]))
    assert reps.tolist() == expected


@pytest.mark.parametrize("distinct", [0, 1, 3, 5000, 70_000])
def test_fingerprint_pairs_get_dense_ids_in_order_of_first_appearance(distinct: int) -> None:
    """Ghost fingerprints as (high, low) lanes: pairs sharing either lane alone stay apart."""
    rng = np.random.default_rng(distinct)
    lanes = rng.integers(0, 1 << 63, (distinct, 2), dtype=np.int64).astype(np.uint64)
    edges = np.array([[0, 0], [0, 1], [1, 0], [(1 << 64) - 1, 0], [0, (1 << 64) - 1]], dtype=np.uint64)
    pool = np.concatenate([edges, lanes, lanes[:, ::-1]])
    pairs = pool[rng.integers(0, len(pool), 3 * len(pool))]
    ids, rows = kernel_lists.pair_ids(np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1]))
    expected = list(dict.fromkeys(map(tuple, pairs.tolist())))
    assert [tuple(pairs[row].tolist()) for row in rows.tolist()] == expected  # each id's first row, in order
    assert [expected[n] for n in ids.tolist()] == list(map(tuple, pairs.tolist()))

# -- the pieces: one twin in Python, one in the kernel --------------------------------------------


def test_the_kernels_climber_array_holds_every_field_of_the_climber() -> None:
    # A field added to HillClimber must be carried by the kernel too (CLIMBER_FIELDS, climber_adjust).
    assert set(kernel.CLIMBER_FIELDS) == set(HillClimber.__slots__) - {"sample_size"}


@pytest.mark.parametrize("seed", range(4))
def test_the_kernels_climber_steps_as_the_climber(seed: int) -> None:
    rng = random.Random(seed)
    climber = HillClimber(rng.choice([2, 77, 1000]), step_fraction=rng.random() / 5, step_decay=0.98,
                          restart_threshold=rng.choice([0.0, 0.05, 0.2]), start_increasing=bool(seed % 2))
    array = kernel.climber_array(climber)
    rate = 0.5
    for _ in range(500):
        rate = min(1.0, max(0.0, rate + rng.choice([-0.1, -0.01, 0.0, 0.003, 0.05]) * rng.random()))
        assert kernel.climber_adjust(array, rate) == climber.adjust(rate)
    twin = HillClimber(10)
    kernel.load_climber(twin, array)
    assert [getattr(twin, name) for name in ("_previous", "_increase", "_step")] == [
        getattr(climber, name) for name in ("_previous", "_increase", "_step")
    ]


@pytest.mark.parametrize("capacity", [1, 2, 3, 10, 101, 1000])
def test_the_kernels_window_bounds_round_as_python(capacity: int) -> None:
    policy = WTinyLFUPolicy(capacity)
    istate = np.zeros(kernel._ISTATE, dtype=np.int64)
    istate[kernel._CAPACITY] = capacity
    fstate = np.array([0.0, 2.0, policy._protected_fraction])
    halves = [n + 0.5 for n in range(-2, capacity + 2)]
    for target in [*halves, 0.0, -1e9, 1e18, 2.4999999999999996, 2.5000000000000004, capacity * 0.37]:
        policy._resize_window(target)
        kernel._resize_window(target, istate, fstate)
        assert (istate[kernel._WINDOW_MAX], istate[kernel._PROTECTED_MAX], fstate[kernel._WINDOW_TARGET]) == (
            policy._window_max, policy._protected_max, policy._window_target)


@pytest.mark.parametrize("doorkeeper", [True, False])
def test_the_kernels_aging_is_the_sketchs(doorkeeper: bool) -> None:
    rng = np.random.default_rng(4)
    sketch = FrequencySketch(500, doorkeeper=doorkeeper)
    sketch._table[:] = rng.integers(0, 16, len(sketch._table), dtype=np.uint8).tobytes()
    sketch._door[:] = rng.integers(0, 256, len(sketch._door), dtype=np.uint8).tobytes()
    for additions in (0, 7, 5000, 10**6):
        table = np.frombuffer(bytes(sketch._table), dtype=np.uint8).copy()
        door = np.frombuffer(bytes(sketch._door), dtype=np.uint8).copy()
        sketch._additions = additions
        sketch.reset()
        assert kernel._reset(table, door, additions, doorkeeper) == sketch._additions
        assert table.tobytes() == bytes(sketch._table) and door.tobytes() == bytes(sketch._door)


# -- the fallback ---------------------------------------------------------------------------------


def test_without_numba_replays_run_the_pure_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = WORKLOADS["zipf"]()
    expected, policy = replayed(keys, 100, True)
    monkeypatch.setattr(wtinylfu.KERNEL, "_module", None)
    monkeypatch.setattr(wtinylfu.KERNEL, "state", "missing")
    monkeypatch.setattr(wtinylfu.KERNEL, "first_requests", 1)
    monkeypatch.setattr(kernel, "replay_segments", lambda *args: pytest.fail("the kernel ran"))
    fallback = WTinyLFUPolicy(100)
    assert fallback.replay(keys) == expected
    assert_same(fallback, policy)
    with pytest.raises(ImportError, match="numba"):
        WTinyLFUPolicy(100).replay(keys, compiled=True)


def test_long_replays_take_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = kernel.replay_segments
    monkeypatch.setattr(kernel, "replay_segments", lambda policy, keys, *rest: calls.append(len(keys)) or real(
        policy, keys, *rest))
    monkeypatch.setattr(wtinylfu.KERNEL, "state", "unloaded")
    monkeypatch.setattr(wtinylfu.KERNEL, "first_requests", 30_000)
    loaded = wtinylfu.KERNEL.loaded_requests
    WTinyLFUPolicy(10).replay(list(range(1000)))  # short, not loaded yet: the pure loop
    WTinyLFUPolicy(10).replay(list(range(30_000)))
    WTinyLFUPolicy(10).replay(list(range(loaded)))  # loaded by now
    WTinyLFUPolicy(10).replay(list(range(loaded - 1)))
    assert calls == [30_000, loaded]


NO_NUMBA = """
import sys
sys.modules["numba"] = None  # as if it were not installed: importing it raises ImportError
import qcache
from qcache.memory.policies.wtinylfu import WTinyLFUPolicy, compiled_kernel
from qcache.sim import Zipf, count_hits
keys = list(Zipf(keys=20000, requests=250000, exponent=0.8, seed=7))
assert compiled_kernel() is None
print(WTinyLFUPolicy(100).replay(keys), count_hits("W_TINYLFU", keys, 100))
"""
WITH_NUMBA = NO_NUMBA.replace('sys.modules["numba"] = None', "").replace(
    "assert compiled_kernel() is None", "assert compiled_kernel() is not None")


@pytest.mark.slow
def test_the_same_hits_in_a_process_without_numba() -> None:
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"}).stdout.split()
               for script in (NO_NUMBA, WITH_NUMBA)]
    assert outputs[0] == outputs[1] and len(set(outputs[0])) == 1 and outputs[0][0].isdigit()


def test_importing_qcache_and_the_simulator_leaves_numba_alone() -> None:
    script = "import sys, qcache, qcache.sim, qcache.memory.policies; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- the shared traces ----------------------------------------------------------------------------

TRACES = {"web07": ("cache2k_web07.trace.xz", (20, 205, 2048)), "OLTP": ("arc_OLTP.lis.zst", (187, 1869, 18688))}


@pytest.mark.traces
@pytest.mark.slow
@pytest.mark.parametrize("trace", sorted(TRACES))
def test_kernel_and_pure_loop_agree_on_the_shared_traces(trace: str) -> None:
    folder = shared_traces_dir()
    name, sizes = TRACES[trace]
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"shared trace {name} is not available")
    keys = TraceFile(folder / name).load().keys
    for size in sizes:
        ours, compiled = replayed(keys, size, True)
        loop, pure = replayed(keys, size, False)
        assert ours == loop, size
        assert_same(compiled, pure)


def test_a_kernel_that_cannot_compile_leaves_the_pure_loop_with_the_same_decisions(
    failing_kernel: FailingKernel, caplog: pytest.LogCaptureFixture
) -> None:
    from numba.core.errors import TypingError

    failing_kernel(wtinylfu.KERNEL, "replay_segments", TypingError("cannot type this"))
    keys = list(Zipf(keys=5000, requests=20000, exponent=0.9, seed=11))
    assert WTinyLFUPolicy(300).replay(keys) == WTinyLFUPolicy(300).replay(keys, compiled=False)
    assert wtinylfu.KERNEL.state == "missing" and "failed (TypingError" in caplog.text


def test_an_error_of_the_replay_itself_is_not_taken_for_a_compile_failure(failing_kernel: FailingKernel) -> None:
    failing_kernel(wtinylfu.KERNEL, "replay_segments", ValueError("a progress callback's own error"))
    with pytest.raises(ValueError, match="progress"):
        WTinyLFUPolicy(300).replay(list(range(20000)))
    assert wtinylfu.KERNEL.state == "loaded"
