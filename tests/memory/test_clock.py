"""ManualClock: the deterministic time source TTL tests run on."""

from __future__ import annotations

import math
import threading

import pytest

from qcache.memory.clock import ManualClock


def test_reads_start_and_advances() -> None:
    clock = ManualClock(100.0)
    assert clock() == 100.0
    assert clock.advance(2.5) == 102.5
    assert clock() == 102.5
    clock.advance(0)
    assert clock() == 102.5


@pytest.mark.parametrize("bad", [-0.001, -5])
def test_refuses_to_go_backwards(bad: float) -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(bad)
    assert clock() == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_refuses_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        ManualClock(bad)
    with pytest.raises(ValueError, match="finite"):
        ManualClock().advance(bad)


@pytest.mark.parametrize("bad", ["1", None, True])
def test_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError):
        ManualClock().advance(bad)  # type: ignore[arg-type]


def test_concurrent_advances_are_not_lost() -> None:
    clock = ManualClock()

    def bump() -> None:
        for _ in range(2000):
            clock.advance(1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock() == 8000.0
