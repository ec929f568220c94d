"""The write-back flusher's schedule and flush()'s deadline, on a hand-moved clock (no threads, no sleeps)."""

from __future__ import annotations

import logging

import pytest

from qcache.cache.flusher import DRAIN_RETRY_PAUSE, FLUSH_INTERVAL, MAX_RETRY_DELAY, DrainDeadline, FlushSchedule
from qcache.errors import BackendError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failures_double_the_pause_up_to_the_cap_and_a_success_resets_it() -> None:
    noted: list[BackendError] = []
    clock = Clock()
    schedule = FlushSchedule(noted.append, clock)
    assert schedule.delay == FLUSH_INTERVAL and schedule.may_wake()
    delays = []
    for _ in range(10):
        schedule.failed(BackendError("down"))
        delays.append(schedule.delay)
    assert delays[:3] == [FLUSH_INTERVAL * 2, FLUSH_INTERVAL * 4, FLUSH_INTERVAL * 8]
    assert delays[-1] == MAX_RETRY_DELAY and max(delays) == MAX_RETRY_DELAY
    assert len(noted) == 10
    schedule.drained()
    assert schedule.delay == FLUSH_INTERVAL and schedule.may_wake()


def test_writes_do_not_wake_the_flusher_while_it_backs_off() -> None:
    clock = Clock()
    schedule = FlushSchedule(lambda exc: None, clock)
    schedule.failed(BackendError("down"))
    assert not schedule.may_wake()
    clock.now += schedule.delay
    assert schedule.may_wake()


def test_an_unexpected_error_is_logged_not_counted_as_an_l2_failure(caplog: pytest.LogCaptureFixture) -> None:
    noted: list[BackendError] = []
    schedule = FlushSchedule(noted.append, Clock())
    with caplog.at_level(logging.ERROR, logger="qcache"):
        schedule.failed(RuntimeError("bug"))
    assert noted == []
    assert "write-back flusher failed" in caplog.text and "RuntimeError: bug" in caplog.text
    assert schedule.delay == FLUSH_INTERVAL * 2


def test_without_a_timeout_flush_tries_once() -> None:
    deadline = DrainDeadline(None, Clock())
    assert deadline.expired()


def test_a_deadline_pauses_briefly_and_never_past_its_end() -> None:
    clock = Clock()
    deadline = DrainDeadline(0.25, clock)
    assert not deadline.expired()
    assert deadline.pause() == DRAIN_RETRY_PAUSE
    clock.now += 0.2
    assert deadline.pause() == pytest.approx(0.05)
    clock.now += 0.05
    assert deadline.expired() and deadline.pause() == 0.0
