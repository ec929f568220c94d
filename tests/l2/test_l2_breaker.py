"""CircuitBreaker as a pure state machine, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from qcache.l2 import BreakerState, CircuitBreaker

from .support import FakeClock


def open_breaker(clock: FakeClock, threshold: int = 3, reset: float = 5.0) -> CircuitBreaker:
    """A breaker driven to OPEN by ``threshold`` failures."""
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout=reset, clock=clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_defaults_match_the_documented_contract() -> None:
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == 5
    assert breaker.reset_timeout == 5.0
    assert breaker.state is BreakerState.CLOSED


def test_stays_closed_below_threshold_and_a_success_resets_the_streak() -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    stats = breaker.stats()
    assert (stats.consecutive_failures, stats.failures, stats.successes) == (2, 4, 1)


def test_opens_at_threshold_and_refuses_until_the_cool_down_has_passed() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock, threshold=3, reset=5.0)
    assert not breaker.allow()
    clock.advance(4.999)
    assert not breaker.allow()
    stats = breaker.stats()
    assert stats.rejections == 2
    assert stats.times_opened == 1
    assert stats.retry_in == pytest.approx(0.001)


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.stats().rejections == 2


def test_successful_probe_closes_and_resets_counters() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats().consecutive_failures == 0
    assert breaker.allow() and breaker.allow()


def test_failed_probe_reopens_for_a_full_cool_down() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.stats().times_opened == 2
    clock.advance(4.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_released_probe_frees_the_slot_for_the_next_caller() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release()  # e.g. the probe was cancelled: no verdict on the backend
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_a_lost_probe_is_replaced_after_another_cool_down() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert breaker.allow()  # this probe never reports back
    clock.advance(4.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_release_outside_half_open_changes_nothing() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    breaker.record_failure()
    breaker.release()
    assert breaker.stats().consecutive_failures == 1
    assert breaker.state is BreakerState.CLOSED


def test_late_failure_while_open_restarts_the_cool_down() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(3.0)
    breaker.record_failure()  # a call admitted before the breaker opened failed late
    clock.advance(3.0)
    assert not breaker.allow()
    clock.advance(2.0)
    assert breaker.allow()


def test_reset_forces_closed() -> None:
    breaker = open_breaker(FakeClock())
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"failure_threshold": 0}, ValueError),
        ({"failure_threshold": 2.5}, TypeError),
        ({"failure_threshold": True}, TypeError),
        ({"reset_timeout": 0}, ValueError),
        ({"reset_timeout": float("nan")}, ValueError),
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_only_one_probe_among_concurrent_threads() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.advance(5.0)
    start = threading.Barrier(8)
    admitted: list[bool] = []
    lock = threading.Lock()

    def contend() -> None:
        start.wait()
        allowed = breaker.allow()
        with lock:
            admitted.append(allowed)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 1
    assert breaker.stats().rejections == 7


def test_concurrent_failures_are_all_counted() -> None:
    breaker = CircuitBreaker(failure_threshold=10_000, clock=FakeClock())

    def fail_many() -> None:
        for _ in range(500):
            breaker.record_failure()

    threads = [threading.Thread(target=fail_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.stats().failures == 2000
    assert breaker.stats().consecutive_failures == 2000
