"""ARC's compiled replay: hit for hit and state for state the pure loop and the hooks.

The comparisons are exact: one hit more or less, one key in another list or
place, or ``p`` off, and the test fails. The kernel is forced
(``compiled=True``) or refused (``compiled=False``) whatever the size
thresholds say; the tests that need the kernel skip where numba is absent
(the ``kernel`` fixture), the others run everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pytest

from qcache.memory.policies import arc
from qcache.memory.policies.arc import ARCPolicy
from qcache.memory.policies.kernels import LazyKernel
from qcache.sim import Loop, Phases, RecentReuse, ShiftingWorkingSet, WithScans, Zipf, run_policy


@pytest.fixture
def kernel() -> Any:
    """The kernel module; the test skips without numba."""
    return pytest.importorskip("qcache.memory.policies.arc_kernel", reason="numba is not installed")


#: The ``failing_kernel`` fixture (tests/conftest.py).
FailingKernel = Callable[[LazyKernel, str, BaseException], None]

WORKLOADS: dict[str, Callable[[], list[Hashable]]] = {
    "zipf": lambda: list(Zipf(keys=20000, requests=40000, exponent=0.9, seed=3)),
    "zipf+scans": lambda: list(WithScans(Zipf(keys=5000, requests=30000, exponent=0.9, seed=1), 700, 400)),
    "shifting": lambda: list(ShiftingWorkingSet(requests=30000, width=300, rate=3, seed=2)),
    "reuse": lambda: list(RecentReuse(requests=30000, new_fraction=0.3, mean_gap=500, seed=3)),
    "loop": lambda: list(Loop(keys=700, requests=20000)),
    "phases": lambda: list(Phases((
        Zipf(keys=4000, requests=10000, exponent=1.0, seed=8),
        ShiftingWorkingSet(requests=10000, width=300, rate=3, seed=9),
        Loop(keys=700, requests=8000),
    )).load().keys),
    "str keys": lambda: [f"k{key}" for key in Zipf(keys=5000, requests=30000, exponent=0.8, seed=4)],
    "mixed keys": lambda: [key if key % 3 else (key, "t") for key in Zipf(keys=3000, requests=20000, seed=5)],
}
SIZES = (1, 2, 3, 7, 100, 1500)


def state(policy: ARCPolicy) -> dict[str, Any]:
    """Everything a later request depends on, orders included."""
    return {
        "t1": list(policy._t1), "t2": list(policy._t2), "b1": list(policy._b1), "b2": list(policy._b2),
        "resident": list(policy._resident.items()), "p": policy.target, "held": policy._pending,
    }


def by_hooks(policy: ARCPolicy, keys: list[Hashable]) -> int:
    """"Get, insert on miss" through the hooks, from whatever the policy holds (run_policy starts empty)."""
    hits = 0
    for key in keys:
        if key in policy:
            hits += 1
            policy.on_access(key)
        else:
            policy.on_miss(key)
            policy.on_insert(key)
            if len(policy) > policy.capacity:
                policy.victim()
    return hits


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_kernel_makes_the_pure_loops_decisions(workload: str, size: int, kernel: Any) -> None:
    """In pieces, as ADAPTIVE's periods call it: each piece starts from the state the last one left."""
    keys = WORKLOADS[workload]()
    compiled, pure = ARCPolicy(size), ARCPolicy(size)
    for start in range(0, len(keys), 7001):
        piece = keys[start : start + 7001]
        assert compiled.replay(piece, compiled=True) == pure.replay(piece, compiled=False), start
        assert state(compiled) == state(pure), start


@pytest.mark.parametrize("size", (3, 100))
def test_the_kernel_takes_over_from_the_hooks_and_hands_back_to_them(size: int, kernel: Any) -> None:
    """Hooks, then the kernel, then hooks again: the same hits and state as hooks throughout."""
    keys = WORKLOADS["reuse"]()
    mixed, hooks = ARCPolicy(size), ARCPolicy(size)
    third = len(keys) // 3
    hits = by_hooks(mixed, keys[:third])
    hits += mixed.replay(keys[third : 2 * third], compiled=True)
    hits += by_hooks(mixed, keys[2 * third :])
    assert hits == by_hooks(hooks, keys) == run_policy(ARCPolicy(size), keys)
    assert state(mixed) == state(hooks)


def test_progress_is_reported_per_chunk(kernel: Any) -> None:
    seen: list[int] = []
    ARCPolicy(50).replay(list(range(2500)), seen.append, 1000, compiled=True)
    assert seen == [1000, 1000, 500]


def test_long_replays_take_the_kernel(monkeypatch: pytest.MonkeyPatch, kernel: Any) -> None:
    calls: list[int] = []
    real = kernel.replay_segments
    monkeypatch.setattr(kernel, "replay_segments", lambda policy, keys, *rest: calls.append(len(keys)) or real(
        policy, keys, *rest))
    monkeypatch.setattr(arc.KERNEL, "state", "unloaded")
    monkeypatch.setattr(arc.KERNEL, "first_requests", 30_000)
    loaded = arc.KERNEL.loaded_requests
    ARCPolicy(10).replay(list(range(1000)))  # short, not loaded yet: the pure loop
    ARCPolicy(10).replay(list(range(30_000)))
    ARCPolicy(10).replay(list(range(loaded)))  # loaded by now
    ARCPolicy(10).replay(list(range(loaded - 1)))
    assert calls == [30_000, loaded]


def test_without_numba_replays_run_the_pure_loop(monkeypatch: pytest.MonkeyPatch, kernel: Any) -> None:
    keys = WORKLOADS["zipf"]()
    compiled = ARCPolicy(100)
    expected = compiled.replay(keys, compiled=True)
    monkeypatch.setattr(arc.KERNEL, "_module", None)
    monkeypatch.setattr(arc.KERNEL, "state", "missing")
    monkeypatch.setattr(arc.KERNEL, "first_requests", 1)
    monkeypatch.setattr(kernel, "replay_segments", lambda *args: pytest.fail("the kernel ran"))
    fallback = ARCPolicy(100)
    assert fallback.replay(keys) == expected
    assert state(fallback) == state(compiled)
    with pytest.raises(ImportError, match="numba"):
        ARCPolicy(100).replay(keys, compiled=True)


def test_a_kernel_that_cannot_compile_leaves_the_pure_loop_with_the_same_decisions(
    failing_kernel: FailingKernel, caplog: pytest.LogCaptureFixture
) -> None:
    errors = pytest.importorskip("numba.core.errors", reason="numba is not installed")
    TypingError = errors.TypingError  # noqa: N806

    failing_kernel(arc.KERNEL, "replay_segments", TypingError("cannot type this"))
    keys = list(Zipf(keys=5000, requests=20000, exponent=0.9, seed=11))
    assert ARCPolicy(300).replay(keys) == ARCPolicy(300).replay(keys, compiled=False)
    assert arc.KERNEL.state == "missing" and "failed (TypingError" in caplog.text


def test_an_error_of_the_replay_itself_is_not_taken_for_a_compile_failure(failing_kernel: FailingKernel) -> None:
    failing_kernel(arc.KERNEL, "replay_segments", ValueError("a progress callback's own error"))
    with pytest.raises(ValueError, match="progress"):
        ARCPolicy(300).replay(list(range(20000)))
    assert arc.KERNEL.state == "loaded"


def test_the_resident_map_comes_back_in_the_order_the_hooks_leave_it(kernel: Any) -> None:
    """Not only the same lists: the whole state prints the same (p, the resident map's order)."""
    keys = WORKLOADS["reuse"]()
    compiled, hooks = ARCPolicy(100), ARCPolicy(100)
    compiled.replay(keys, compiled=True)
    by_hooks(hooks, keys)
    assert list(compiled._resident.items()) == list(hooks._resident.items())
    assert repr(vars(compiled)) == repr(vars(hooks))


@pytest.mark.parametrize("compiled", [False, True])
def test_segments_are_the_replay_cut_where_asked(compiled: bool) -> None:
    if compiled:
        pytest.importorskip("qcache.memory.policies.arc_kernel", reason="numba is not installed")
    keys = WORKLOADS["reuse"]()
    ends = [0, 5, 5, 7001, 20_000, len(keys)]
    segmented, whole = ARCPolicy(100), ARCPolicy(100)
    hits = segmented.replay_segments(keys, ends, compiled=compiled)
    assert len(hits) == len(ends) and hits[0] == 0 and hits[2] == 0
    assert sum(hits) == whole.replay(keys, compiled=compiled)
    assert state(segmented) == state(whole)
    assert hits[3] == ARCPolicy(100).replay_segments(keys[:7001], [5, 7001], compiled=compiled)[1]


@pytest.mark.parametrize("ends", [[10, 5, 20], [5, 10], [5, 25], []])
def test_segment_ends_that_do_not_ascend_to_the_end_are_refused(ends: list[int]) -> None:
    policy = ARCPolicy(10)
    with pytest.raises(ValueError, match="ascend"):
        policy.replay_segments(list(range(20)), ends)
    assert len(policy) == 0  # nothing replayed
