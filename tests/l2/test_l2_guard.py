"""OperationGuard: breaker admission and error translation, without a server."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_errors

from qcache.errors import BackendError, CircuitOpenError
from qcache.l2 import BreakerState, CircuitBreaker
from qcache.l2.guard import OperationGuard, scrub_command_text

from .support import FakeClock


def half_open_guard() -> tuple[OperationGuard, CircuitBreaker]:
    """A guard whose breaker is open and past its cool-down: the next entry is the probe."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, clock=clock)
    breaker.record_failure()
    clock.advance(1.0)
    return OperationGuard("GET", breaker), breaker


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
        redis_errors.TimeoutError("Timeout reading from socket"),
        redis_errors.AuthenticationError("invalid password"),
        ConnectionResetError("reset by peer"),
    ],
)
def test_connectivity_errors_become_backend_errors_and_count(error: Exception) -> None:
    breaker = CircuitBreaker(failure_threshold=5, clock=FakeClock())
    with pytest.raises(BackendError, match=r"^Redis GET failed \(") as caught:
        with OperationGuard("GET", breaker):
            raise error
    assert caught.value.__cause__ is error
    assert type(error).__name__ in str(caught.value)
    assert breaker.stats().consecutive_failures == 1


def test_server_replies_raise_but_prove_the_server_is_up() -> None:
    guard, breaker = half_open_guard()
    with pytest.raises(BackendError, match="ResponseError: WRONGTYPE"), guard:
        raise redis_errors.ResponseError(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        )
    assert breaker.state is BreakerState.CLOSED


def test_data_errors_are_the_callers_bug() -> None:
    guard, breaker = half_open_guard()
    with pytest.raises(TypeError, match="GET failed"), guard:
        raise redis_errors.DataError("Invalid input of type: 'dict'.")
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe slot was freed, not consumed


@pytest.mark.parametrize("error", [asyncio.CancelledError(), KeyError("bug")])
def test_other_exceptions_pass_through_and_free_the_probe(error: BaseException) -> None:
    guard, breaker = half_open_guard()
    with pytest.raises(type(error)), guard:
        raise error
    assert breaker.allow()


def test_success_is_recorded() -> None:
    guard, breaker = half_open_guard()
    with guard:
        pass
    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_refuses_before_the_body_runs() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    breaker.record_failure()
    ran = False
    with pytest.raises(CircuitOpenError, match="GET skipped"), OperationGuard("GET", breaker):
        ran = True
    assert not ran


def test_closed_guard_refuses() -> None:
    guard = OperationGuard("MGET", CircuitBreaker())
    guard.closed = True
    with pytest.raises(BackendError, match="closed"), guard:
        pass


def test_scrub_removes_the_command_echo_of_pipeline_errors() -> None:
    error = redis_errors.ResponseError(
        "Command # 2 (SET k secret words (with parens) PX 100) of pipeline caused error: OOM no room"
    )
    scrub_command_text(error)
    assert str(error) == "Command # 2 of pipeline caused error: OOM no room"
    plain = redis_errors.ResponseError("WRONGTYPE nope")
    scrub_command_text(plain)
    assert str(plain) == "WRONGTYPE nope"
