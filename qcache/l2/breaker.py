"""A thread-safe circuit breaker: a pure state machine, no I/O, injectable clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class BreakerState(str, Enum):
    """Where the breaker stands; the string values are what metrics and health report."""

    CLOSED = "closed"  # calls go through; consecutive failures are counted
    OPEN = "open"  # calls are refused until the cool-down has passed
    HALF_OPEN = "half_open"  # one probe call is let through to test the backend


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A consistent snapshot of the breaker for metrics and health checks."""

    state: BreakerState
    consecutive_failures: int
    failures: int  # every failure recorded since creation
    successes: int  # every success recorded since creation
    rejections: int  # calls refused while open or while a probe was in flight
    times_opened: int
    retry_in: float  # seconds until the next probe is allowed; 0.0 unless open


class CircuitBreaker:
    """Skip a failing backend after repeated failures and probe it again after a cool-down.

    Why: when Redis is down, every cache call would otherwise wait for a
    connect timeout (plus retries) before falling back to the source of truth,
    making the cache slower than no cache at all. After ``failure_threshold``
    consecutive failures the breaker opens and :meth:`allow` answers ``False``
    immediately, without touching the network. Once ``reset_timeout`` seconds
    have passed, exactly one caller is allowed through as a probe (half-open):
    its success closes the breaker, its failure opens it for another
    cool-down. Every other caller is refused while the probe is in flight.

    Protocol: call :meth:`allow` before the operation; if it answered ``True``,
    report the outcome with exactly one of :meth:`record_success`,
    :meth:`record_failure` or :meth:`release` (the operation ended without
    telling anything about the backend, e.g. it was cancelled). A probe whose
    outcome is never reported is considered lost after another
    ``reset_timeout``, so a crashed caller cannot wedge the breaker half-open.

    ``clock`` returns seconds on a monotonic scale; tests inject a fake one.
    The closed-state fast path takes no lock, so a healthy backend pays only an
    attribute read per call.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
            raise TypeError("failure_threshold must be an int")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if not reset_timeout > 0:  # also rejects NaN
            raise ValueError(f"reset_timeout must be > 0 seconds, got {reset_timeout!r}")
        self._threshold = failure_threshold
        self._reset_timeout = float(reset_timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._failures = 0
        self._successes = 0
        self._rejections = 0
        self._times_opened = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker."""
        return self._threshold

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before it lets a probe through."""
        return self._reset_timeout

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down still reads OPEN until probed)."""
        return self._state

    def allow(self) -> bool:
        """Whether the caller may touch the backend now; ``True`` obliges it to report the outcome."""
        if self._state is BreakerState.CLOSED:
            return True
        return self._admit_slow_path()

    def _admit_slow_path(self) -> bool:
        """Admission decision when not closed, under the lock (the state may have moved meanwhile)."""
        with self._lock:
            now = self._clock()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if now - self._opened_at >= self._reset_timeout:
                    self._state = BreakerState.HALF_OPEN
                    self._probe_started_at = now
                    return True
            elif (
                self._probe_started_at is None
                or now - self._probe_started_at >= self._reset_timeout
            ):
                # Half-open with no probe in flight (released or lost): this caller probes.
                self._probe_started_at = now
                return True
            self._rejections += 1
            return False

    def record_success(self) -> None:
        """The backend answered: reset the failure streak and close the breaker."""
        if self._state is BreakerState.CLOSED and self._consecutive == 0:
            # Healthy fast path; the counter is informational, an occasional lost
            # increment under a race is an acceptable price for no lock here.
            self._successes += 1
            return
        with self._lock:
            self._successes += 1
            self._consecutive = 0
            self._state = BreakerState.CLOSED
            self._probe_started_at = None

    def record_failure(self) -> None:
        """The backend failed: count it, and open the breaker at the threshold or on a failed probe."""
        with self._lock:
            self._failures += 1
            self._consecutive += 1
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._consecutive >= self._threshold
            ):
                self._open()
            elif self._state is BreakerState.OPEN:
                # A call admitted before the breaker opened failed late: restart the cool-down.
                self._opened_at = self._clock()

    def release(self) -> None:
        """The admitted call ended without a verdict on the backend; free the probe slot if it held it."""
        if self._state is not BreakerState.HALF_OPEN:
            return
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._probe_started_at = None

    def reset(self) -> None:
        """Force the breaker closed (an operator action, e.g. after fixing the backend)."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._consecutive = 0
            self._probe_started_at = None

    def stats(self) -> BreakerStats:
        """A consistent snapshot of state and counters."""
        with self._lock:
            retry_in = 0.0
            if self._state is BreakerState.OPEN:
                retry_in = max(0.0, self._opened_at + self._reset_timeout - self._clock())
            return BreakerStats(
                state=self._state,
                consecutive_failures=self._consecutive,
                failures=self._failures,
                successes=self._successes,
                rejections=self._rejections,
                times_opened=self._times_opened,
                retry_in=retry_in,
            )

    def _open(self) -> None:
        """Enter OPEN now (caller holds the lock)."""
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_started_at = None
        self._times_opened += 1

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, failures={self._consecutive}"
            f"/{self._threshold}, reset_timeout={self._reset_timeout})"
        )
