"""Injectable time sources for TTL bookkeeping.

Expiry is computed against a clock passed in by the caller rather than read
from :func:`time.monotonic` directly, so that tests, the simulator and
notebooks can move time forward instantly instead of sleeping.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

#: A clock is any zero-argument callable returning seconds as a float. Only
#: differences between two readings matter, so a monotonic clock is the right
#: default: wall-clock jumps (NTP, DST) must not expire or revive entries.
Clock = Callable[[], float]


class ManualClock:
    """A clock that only moves when told to.

    Why: TTL behaviour (expiry, periodic cleanup) must be testable in
    microseconds and deterministically, which a real clock cannot offer.
    Thread-safe, so concurrency tests may advance it while workers read it.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = _finite(start, "start")

    def __call__(self) -> float:
        """The current reading."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backwards) and return the new reading."""
        seconds = _finite(seconds, "seconds")
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards; got {seconds!r} seconds")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


def _finite(value: float, what: str) -> float:
    """``value`` as a float, or ValueError if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)
