"""When the write-back flusher runs and for how long ``flush`` keeps trying: pure, no I/O.

The sync flusher (a thread) and the async one (a task) differ only in how
they wait and how they drain; the schedule they follow is this one object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from qcache.errors import BackendError

logger = logging.getLogger("qcache")

#: How often the write-back flusher wakes up when fewer than a batch of writes is pending.
FLUSH_INTERVAL = 0.05
#: The longest pause between flush attempts while L2 keeps failing: short, so that what waits
#: (writes, and deletes an outage held back) lands soon after Redis is back; an attempt
#: while the breaker is open costs no I/O.
MAX_RETRY_DELAY = 0.5
#: The longest pause between attempts of ``flush(timeout)``.
DRAIN_RETRY_PAUSE = 0.1


class FlushSchedule:
    """The flusher's pause between drains: short while L2 answers, doubling while it fails.

    After a failure, writes do not wake the flusher before :attr:`retry_after`
    (a ``clock`` value): under write load during an outage they would
    otherwise cut every back-off short.
    """

    __slots__ = ("_clock", "_on_backend_error", "delay", "retry_after")

    def __init__(
        self,
        on_backend_error: Callable[[BackendError], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_backend_error = on_backend_error
        self._clock = clock
        self.delay = FLUSH_INTERVAL
        self.retry_after = 0.0

    def may_wake(self) -> bool:
        """Whether a write may wake the flusher now (not while it backs off)."""
        return self._clock() >= self.retry_after

    def drained(self) -> None:
        """A drain succeeded: back to the normal interval."""
        self.delay = FLUSH_INTERVAL
        self.retry_after = 0.0

    def failed(self, exc: Exception) -> None:
        """A drain failed: count or log it, then double the pause (writes stay queued)."""
        if isinstance(exc, BackendError):
            self._on_backend_error(exc)
        else:  # never let the flusher die silently
            logger.error("qcache: write-back flusher failed; retrying", exc_info=exc)
        self.delay = min(MAX_RETRY_DELAY, self.delay * 2)
        self.retry_after = self._clock() + self.delay


class DrainDeadline:
    """How long ``flush(timeout)`` retries a failing drain (``timeout=None``: a single attempt)."""

    __slots__ = ("_clock", "_deadline")

    def __init__(self, timeout: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout

    def expired(self) -> bool:
        """Whether to give up after a failed attempt."""
        return self._deadline is None or self._clock() >= self._deadline

    def pause(self) -> float:
        """Seconds to wait before the next attempt (never past the deadline)."""
        if self._deadline is None:
            return 0.0
        return min(DRAIN_RETRY_PAUSE, max(0.0, self._deadline - self._clock()))
