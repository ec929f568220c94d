"""What one cache keeps for access control: the policy, the audit trail, denial counting and alerts.

Denials are counted per role in a sliding window; ``FAILED_ACCESS_THRESHOLD``
denials within ``FAILED_ACCESS_WINDOW`` seconds raise one alert (a WARNING on
``qcache.access``, a call of the cache's alert hooks, and the
``access_alert`` error counter), and the next only after the window has
emptied. Every denial is also counted (``access_denied``) and audited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from qcache.access.audit import AuditTrail
from qcache.access.policy import AccessPolicy
from qcache.cache.monitor import Alert, AlertHooks

log = logging.getLogger("qcache.access")


class FailedAccess:
    """Denials per principal in a sliding window; says when one reaches the threshold."""

    def __init__(self, threshold: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}
        self._alerted: set[str] = set()

    def denied(self, principal: str) -> int | None:
        """Count a denial; the count when it makes ``principal`` cross the threshold, else None."""
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(principal, deque())
            times.append(now)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.threshold:
                self._alerted.discard(principal)  # quiet again: the next burst alerts anew
                return None
            if principal in self._alerted:
                return None
            self._alerted.add(principal)
            return len(times)


class AccessGuard:
    """One per cache: shared by every role-bound view of it."""

    def __init__(
        self,
        *,
        policy: AccessPolicy,
        audit: AuditTrail | None,
        access_logging: bool,
        failed_access: FailedAccess,
        session_timeout: float,
        hooks: AlertHooks,
        count_error: Callable[[str], None],
    ) -> None:
        self.policy = policy
        self.audit = audit if audit is not None and audit.enabled else None
        self.access_logging = access_logging and self.audit is not None
        self.failed_access = failed_access
        self.session_timeout = session_timeout
        self.hooks = hooks
        self._count_error = count_error

    @classmethod
    def from_config(cls, config: Any, *, policy: AccessPolicy, hooks: AlertHooks,
                    count_error: Callable[[str], None]) -> AccessGuard:
        security = config.security
        audit = (AuditTrail(security.audit_log_path, include_keys=security.audit_include_keys)
                 if security.audit_enabled else None)
        return cls(
            policy=policy, audit=audit, access_logging=security.access_logging,
            failed_access=FailedAccess(security.failed_access_threshold, security.failed_access_window),
            session_timeout=float(security.session_timeout), hooks=hooks, count_error=count_error,
        )

    def allowed(self, role: str, project: str, operation: str, key: str | None) -> None:
        """An access that went through (audited when CACHE_ACCESS_LOGGING is on)."""
        if self.access_logging and self.audit is not None:
            self.audit.record(role=role, project=project, operation=operation, key=key, outcome="allowed")

    def denied(self, role: str, project: str, operation: str, key: str | None, why: str) -> None:
        """Audit and count a denial, alert when the role crossed the threshold."""
        if self.audit is not None:
            self.audit.record(role=role, project=project, operation=operation, key=key, outcome="denied",
                              detail=why)
        self._count_error("access_denied")
        count = self.failed_access.denied(role)
        if count is None:
            return
        message = (f"{count} denied accesses by role {role!r} within {self.failed_access.window:g} s "
                   f"(FAILED_ACCESS_THRESHOLD {self.failed_access.threshold})")
        log.warning("qcache alert: %s", message)
        self._count_error("access_alert")
        alert = Alert("failed_access", "breach", float(count), float(self.failed_access.threshold), message)
        for hook in list(self.hooks.hooks):
            try:
                hook(alert)
            except Exception:  # a failing hook never stops the others
                log.exception("qcache: alert hook %r failed", hook)

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()
