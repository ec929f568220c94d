"""What an L2 failure becomes: a counted, logged miss, or the caller's error in strict mode."""

from __future__ import annotations

import logging
import math
import time

from qcache.cache.metrics import CacheMetrics
from qcache.errors import BackendError, CircuitOpenError, RedisAccessDenied

logger = logging.getLogger("qcache")

_ERROR_LOG_INTERVAL = 5.0


class FailurePolicy:
    """Counts every L2 failure, logs at most one line every few seconds, re-raises when ``strict``."""

    __slots__ = ("_last_log", "metrics", "strict")

    def __init__(self, metrics: CacheMetrics, strict: bool) -> None:
        self.metrics = metrics
        self.strict = strict
        self._last_log = -math.inf

    def l2_failed(self, operation: str, exc: BackendError, outcome: str = "treated as a miss") -> None:
        """Count and log an L2 failure (``outcome``: what became of the operation); in strict mode re-raise it.

        An ACL refusal (:class:`RedisAccessDenied`) is raised in any mode: it is
        not an outage to ride out but a user that may not do this.
        """
        if isinstance(exc, RedisAccessDenied):
            self.metrics.error("l2_access_denied")
            raise exc
        self.note(operation, exc, outcome)
        if self.strict:
            raise exc

    def note(self, operation: str, exc: BackendError, outcome: str = "treated as a miss") -> None:
        """Count an L2 failure and log it (at most one line every few seconds)."""
        circuit_open = isinstance(exc, CircuitOpenError)
        self.metrics.error("l2_circuit_open" if circuit_open else "l2_error")
        now = time.monotonic()
        if not circuit_open and now - self._last_log >= _ERROR_LOG_INTERVAL:
            self._last_log = now
            logger.warning("qcache: L2 %s failed, %s: %s", operation, outcome, exc)
