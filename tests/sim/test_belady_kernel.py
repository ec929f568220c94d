"""Belady's compiled version (numba, the sim-fast extra) against the pure loop: the same hits, exactly."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from qcache.memory.policies.kernels import LazyKernel
from qcache.sim import Loop, Phases, ShiftingWorkingSet, TraceFile, WithScans, Zipf, shared_traces_dir
from qcache.sim import belady as belady_module
from qcache.sim.belady import belady_hits, next_use_positions

pytest.importorskip("qcache.sim.belady_kernel", reason="numba is not installed")

WORKLOADS = {
    "zipf": lambda: list(Zipf(keys=20000, requests=60000, exponent=0.9, seed=3)),
    "scans": lambda: list(WithScans(Zipf(keys=5000, requests=40000, exponent=0.9, seed=1), 1000, 400)),
    "loop": lambda: list(Loop(keys=1800, requests=30000)),
    "phases": lambda: list(Phases((Zipf(keys=3000, requests=10000, seed=2),
                                   ShiftingWorkingSet(requests=10000, width=300, seed=3))).load().keys),
    "strings": lambda: [f"user:{key}" for key in Zipf(keys=3000, requests=25000, exponent=0.8, seed=5)],
}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 1500, 100_000])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_compiled_belady_makes_the_same_choices(workload: str, size: int) -> None:
    keys = WORKLOADS[workload]()
    assert belady_hits(keys, size, compiled=True) == belady_hits(keys, size, compiled=False)


@pytest.mark.parametrize("seed", range(20))
def test_compiled_belady_on_tiny_traces(seed: int) -> None:
    rng = random.Random(seed)
    keys = [rng.randrange(rng.randrange(1, 12)) for _ in range(rng.randrange(1, 60))]
    for size in (1, 2, 3, 5):
        given = next_use_positions(keys)
        assert belady_hits(keys, size, compiled=True) == belady_hits(keys, size, compiled=False)
        assert belady_hits(keys, size, given, compiled=True) == belady_hits(keys, size, given, compiled=False)


def test_without_numba_belady_runs_the_pure_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = WORKLOADS["zipf"]()
    expected = belady_hits(keys, 100, compiled=True)
    monkeypatch.setattr(belady_module.KERNEL, "_module", None)
    monkeypatch.setattr(belady_module.KERNEL, "state", "missing")
    monkeypatch.setattr(belady_module.KERNEL, "first_requests", 1)
    assert belady_hits(keys, 100) == expected
    with pytest.raises(ImportError, match="numba"):
        belady_hits(keys, 100, compiled=True)


@pytest.mark.traces
@pytest.mark.parametrize(("name", "sizes"), [("cache2k_web07.trace.xz", (20, 205, 2048)),
                                             ("arc_OLTP.lis.zst", (187, 1869, 18688))])
def test_compiled_belady_on_the_shared_traces(name: str, sizes: tuple[int, ...]) -> None:
    folder = shared_traces_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"shared trace {name} is not available")
    keys = TraceFile(folder / name).load().keys
    for size in sizes:
        assert belady_hits(keys, size, compiled=True) == belady_hits(keys, size, compiled=False), size


def test_a_cache_far_larger_than_the_trace_allocates_for_the_trace() -> None:
    keys = list(range(10)) * 2
    assert belady_hits(keys, 10**11, compiled=True) == belady_hits(keys, 10**11, compiled=False) == 10


def test_a_kernel_that_cannot_compile_leaves_the_pure_loop_with_the_same_hits(
    failing_kernel: Callable[[LazyKernel, str, BaseException], None], caplog: pytest.LogCaptureFixture
) -> None:
    from numba.core.errors import TypingError

    kernel = belady_module.KERNEL
    failing_kernel(kernel, "belady_hits", TypingError("cannot type this"))
    keys = WORKLOADS["zipf"]()
    assert belady_hits(keys, 500) == belady_hits(keys, 500, compiled=False)
    assert kernel.state == "missing" and "failed (TypingError" in caplog.text
    with pytest.raises(ImportError):
        belady_hits(keys, 500, compiled=True)  # asked for explicitly: no silent substitute
