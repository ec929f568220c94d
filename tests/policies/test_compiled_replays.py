"""ARC's and S3-FIFO's compiled replays: hit for hit and state for state the pure loops and the hooks.

The comparisons are exact: one hit more or less, one key in another list or
place, ARC's ``p`` or an S3-FIFO hit count off, and the test fails. The kernel is forced
(``compiled=True``) or refused (``compiled=False``) whatever the size
thresholds say; the tests that need the kernel skip where numba is absent
(the ``kernel`` fixture), the others run everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pytest

from qcache.memory.policies import arc, s3fifo
from qcache.memory.policies.arc import ARCPolicy
from qcache.memory.policies.kernels import LazyKernel
from qcache.memory.policies.s3fifo import S3FIFOPolicy
from qcache.sim import Loop, Phases, RecentReuse, ShiftingWorkingSet, WithScans, Zipf, run_policy

from .support import by_hooks


def arc_state(policy: ARCPolicy) -> dict[str, Any]:
    """Everything a later request depends on, orders included."""
    return {
        "t1": list(policy._t1), "t2": list(policy._t2), "b1": list(policy._b1), "b2": list(policy._b2),
        "resident": list(policy._resident.items()), "p": policy.target, "held": policy._pending,
    }


def s3fifo_state(policy: S3FIFOPolicy) -> dict[str, Any]:
    """Everything a later request depends on, orders included."""
    return {
        "small": list(policy._small), "main": list(policy._main), "ghost": list(policy._ghost),
        "counts": list(policy._freq.items()), "evicted": policy._has_evicted, "held": policy._pending,
    }


@dataclass(frozen=True)
class Compiled:
    """A policy with a compiled replay, its kernel, and how to read its state."""

    policy: Callable[[int], Any]
    module: str
    kernel: LazyKernel
    read_state: Callable[[Any], dict[str, Any]]


COMPILED = {
    "ARC": Compiled(ARCPolicy, "qcache.memory.policies.arc_kernel", arc.KERNEL, arc_state),
    "S3_FIFO": Compiled(
        S3FIFOPolicy, "qcache.memory.policies.s3fifo_kernel", s3fifo.KERNEL, s3fifo_state,
    ),
}


@pytest.fixture(params=sorted(COMPILED))
def case(request: pytest.FixtureRequest) -> Compiled:
    return COMPILED[request.param]


@pytest.fixture
def kernel(case: Compiled) -> Any:
    """The kernel module; the test skips without numba."""
    return pytest.importorskip(case.module, reason="numba is not installed")



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


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_kernel_makes_the_pure_loops_decisions(case: Compiled, workload: str, size: int, kernel: Any) -> None:
    """In pieces, as ADAPTIVE's periods call it: each piece starts from the state the last one left."""
    keys = WORKLOADS[workload]()
    compiled, pure = case.policy(size), case.policy(size)
    for start in range(0, len(keys), 7001):
        piece = keys[start : start + 7001]
        assert compiled.replay(piece, compiled=True) == pure.replay(piece, compiled=False), start
        assert case.read_state(compiled) == case.read_state(pure), start


@pytest.mark.parametrize("size", (3, 100))
def test_the_kernel_takes_over_from_the_hooks_and_hands_back_to_them(case: Compiled, size: int, kernel: Any) -> None:
    """Hooks, then the kernel, then hooks again: the same hits and state as hooks throughout."""
    keys = WORKLOADS["reuse"]()
    mixed, hooks = case.policy(size), case.policy(size)
    third = len(keys) // 3
    hits = by_hooks(mixed, keys[:third])
    hits += mixed.replay(keys[third : 2 * third], compiled=True)
    hits += by_hooks(mixed, keys[2 * third :])
    assert hits == by_hooks(hooks, keys) == run_policy(case.policy(size), keys)
    assert case.read_state(mixed) == case.read_state(hooks)


def test_progress_is_reported_per_chunk(case: Compiled, kernel: Any) -> None:
    seen: list[int] = []
    case.policy(50).replay(list(range(2500)), seen.append, 1000, compiled=True)
    assert seen == [1000, 1000, 500]


def test_long_replays_take_the_kernel(case: Compiled, monkeypatch: pytest.MonkeyPatch, kernel: Any) -> None:
    calls: list[int] = []
    real = kernel.replay_segments
    monkeypatch.setattr(kernel, "replay_segments", lambda policy, keys, *rest: calls.append(len(keys)) or real(
        policy, keys, *rest))
    monkeypatch.setattr(case.kernel, "state", "unloaded")
    monkeypatch.setattr(case.kernel, "first_requests", 30_000)
    loaded = case.kernel.loaded_requests
    case.policy(10).replay(list(range(1000)))  # short, not loaded yet: the pure loop
    case.policy(10).replay(list(range(30_000)))
    case.policy(10).replay(list(range(loaded)))  # loaded by now
    case.policy(10).replay(list(range(loaded - 1)))
    assert calls == [30_000, loaded]


def test_without_numba_replays_run_the_pure_loop(
    case: Compiled, monkeypatch: pytest.MonkeyPatch, kernel: Any
) -> None:
    keys = WORKLOADS["zipf"]()
    compiled = case.policy(100)
    expected = compiled.replay(keys, compiled=True)
    monkeypatch.setattr(case.kernel, "_module", None)
    monkeypatch.setattr(case.kernel, "state", "missing")
    monkeypatch.setattr(case.kernel, "first_requests", 1)
    monkeypatch.setattr(kernel, "replay_segments", lambda *args: pytest.fail("the kernel ran"))
    fallback = case.policy(100)
    assert fallback.replay(keys) == expected
    assert case.read_state(fallback) == case.read_state(compiled)
    with pytest.raises(ImportError, match="numba"):
        case.policy(100).replay(keys, compiled=True)


def test_a_kernel_that_cannot_compile_leaves_the_pure_loop_with_the_same_decisions(
    case: Compiled, failing_kernel: FailingKernel, caplog: pytest.LogCaptureFixture
) -> None:
    errors = pytest.importorskip("numba.core.errors", reason="numba is not installed")
    TypingError = errors.TypingError  # noqa: N806

    failing_kernel(case.kernel, "replay_segments", TypingError("cannot type this"))
    keys = list(Zipf(keys=5000, requests=20000, exponent=0.9, seed=11))
    assert case.policy(300).replay(keys) == case.policy(300).replay(keys, compiled=False)
    assert case.kernel.state == "missing" and "failed (TypingError" in caplog.text


def test_an_error_of_the_replay_itself_is_not_taken_for_a_compile_failure(
    case: Compiled, failing_kernel: FailingKernel
) -> None:
    failing_kernel(case.kernel, "replay_segments", ValueError("a progress callback's own error"))
    with pytest.raises(ValueError, match="progress"):
        case.policy(300).replay(list(range(20000)))
    assert case.kernel.state == "loaded"


def test_the_maps_come_back_in_the_order_the_hooks_leave_them(case: Compiled, kernel: Any) -> None:
    """Not only the same lists: the whole state prints the same (ARC's p and resident map, S3-FIFO's counts)."""
    keys = WORKLOADS["reuse"]()
    compiled, hooks = case.policy(100), case.policy(100)
    compiled.replay(keys, compiled=True)
    by_hooks(hooks, keys)
    assert repr(vars(compiled)) == repr(vars(hooks))


@pytest.mark.parametrize("compiled", [False, True])
def test_segments_are_the_replay_cut_where_asked(case: Compiled, compiled: bool) -> None:
    if compiled:
        pytest.importorskip(case.module, reason="numba is not installed")
    keys = WORKLOADS["reuse"]()
    ends = [0, 5, 5, 7001, 20_000, len(keys)]
    segmented, whole = case.policy(100), case.policy(100)
    hits = segmented.replay_segments(keys, ends, compiled=compiled)
    assert len(hits) == len(ends) and hits[0] == 0 and hits[2] == 0
    assert sum(hits) == whole.replay(keys, compiled=compiled)
    assert case.read_state(segmented) == case.read_state(whole)
    assert hits[3] == case.policy(100).replay_segments(keys[:7001], [5, 7001], compiled=compiled)[1]


@pytest.mark.parametrize("ends", [[10, 5, 20], [5, 10], [5, 25], []])
def test_segment_ends_that_do_not_ascend_to_the_end_are_refused(case: Compiled, ends: list[int]) -> None:
    policy = case.policy(10)
    with pytest.raises(ValueError, match="ascend"):
        policy.replay_segments(list(range(20)), ends)
    assert len(policy) == 0  # nothing replayed
