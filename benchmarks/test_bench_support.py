"""The measuring helpers every gated ratio goes through: alternation and the recorded median."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bench_support import GATE_ROUNDS, SMOKE_ROUNDS, alternating_rounds, record_ratio


class FakeBenchmark:
    """What record_ratio uses of pytest-benchmark's fixture: pedantic() and extra_info."""

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.pedantic_calls: list[tuple[int, int]] = []

    def pedantic(self, target: Callable[..., Any], args: tuple[Any, ...], rounds: int, iterations: int) -> Any:
        self.pedantic_calls.append((rounds, iterations))
        return target(*args)


def side(name: str, times: Iterator[float], log: list[str]) -> Callable[[], float]:
    def round_() -> float:
        log.append(name)
        return next(times)

    return round_


def test_sides_alternate_and_swap_which_goes_first_after_a_warm_up() -> None:
    log: list[str] = []
    ours, theirs = alternating_rounds(side("a", iter([9.0, 1, 2, 3]), log), side("b", iter([9.0, 4, 5, 6]), log), 3)
    assert log == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert (ours, theirs) == ([1, 2, 3], [4, 5, 6])  # the warm-up round is not kept


@pytest.mark.parametrize(("smoke", "rounds"), [(False, GATE_ROUNDS), (True, SMOKE_ROUNDS)])
def test_the_recorded_ratio_is_the_median_of_adjacent_pairs(smoke: bool, rounds: int) -> None:
    top = [100.0] + [30.0] * rounds  # warm-up, then three times the bottom side ...
    top[2] = 3000.0  # ... except one disturbed round, which the median ignores
    bottom = [100.0] + [10.0] * rounds
    benchmark = FakeBenchmark()
    record_ratio(benchmark, side("top", iter(top), []), side("bottom", iter(bottom), []), smoke)
    info = benchmark.extra_info
    assert benchmark.pedantic_calls == [(1, 1)]  # one measurement: the alternation happens inside
    assert info["pairs"] == rounds
    assert info["ratio"] == pytest.approx(3.0)
    assert info["ratio_q1"] == pytest.approx(3.0)
    assert (info["top_ns"], info["bottom_ns"]) == (30.0, 10.0)
