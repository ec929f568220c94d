"""Background health checks and alerts: every ``CACHE_HEALTH_CHECK_INTERVAL`` seconds, once per state change.

A cache starts its monitor itself when the interval is positive (the sync
facade at construction, the async one when it is entered or
``start_monitoring()`` is awaited) and stops it at ``close()``. Each check
runs the cache's own :meth:`health` probe and compares the traffic since the
previous check with the configured limits:

- ``status``: the probe's status is not healthy (its reasons are the message);
- ``latency``: p99 of the operations since the last check above ``CACHE_LATENCY_THRESHOLD``;
- ``hit_rate``: hit rate since the last check below ``CACHE_HIT_RATE_THRESHOLD``;
- ``error_rate``: errors over operations since the last check above the limit (5%).

Rates need at least :data:`MIN_SAMPLES` operations in the window to count. An
alert fires once when a check enters breach and once when it recovers, never
on every check: it is logged (WARNING on breach, INFO on recovery) and handed
to each registered hook; a hook that raises is logged and never stops the
others. The last report and the open breaches are kept for ``last_health()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from qcache.cache.metrics import Totals, Window, bucket_percentile_ms, histogram_buckets

log = logging.getLogger("qcache.health")

MIN_SAMPLES = 100
DEFAULT_ERROR_RATE_LIMIT = 0.05
AlertState = Literal["breach", "recovered"]


@dataclass(frozen=True)
class Alert:
    """A check entering or leaving breach."""

    check: str  # status, latency, hit_rate, error_rate
    state: AlertState
    value: float | str
    limit: float | str
    message: str


AlertHook = Callable[[Alert], None]


class CacheGone(Exception):
    """The cache a monitor watched was garbage-collected without being closed: the monitor ends."""


def weakly(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` without keeping its object alive, so an unclosed cache can still be collected."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = ref()
        if bound is None:
            raise CacheGone
        return bound(*args, **kwargs)

    return call


class AlertEvaluator:
    """Turns successive (health report, stats) pairs into alerts on state changes only. Pure."""

    def __init__(
        self,
        limits: Callable[[], tuple[float, float]],
        *,
        error_rate: float = DEFAULT_ERROR_RATE_LIMIT,
    ) -> None:
        """``limits()`` gives (latency ms, hit rate), read at every check so live configuration changes apply."""
        self.limits = limits
        self.error_rate = error_rate
        self.breached: dict[str, Alert] = {}
        self._previous: tuple[Totals, dict[str, dict[str, int]]] | None = None

    def _window(self, stats: Mapping[str, Any]) -> Window:
        now = (Totals.of(stats), histogram_buckets(stats))
        before = self._previous
        self._previous = now
        return Window.between(*now, *(before or (None, None)))

    def update(self, report: Mapping[str, Any], stats: Mapping[str, Any]) -> list[Alert]:
        """The alerts this check raises: breaches it enters and breaches it leaves."""
        window = self._window(stats)
        latency_limit, hit_rate_limit = self.limits()
        findings: dict[str, tuple[bool, float | str, float | str, str] | None] = {}
        status = str(report.get("status", "unhealthy"))
        findings["status"] = (status != "healthy", status, "healthy",
                              f"cache {status}: " + "; ".join(report.get("reasons", [])) if status != "healthy"
                              else "cache healthy again")
        p99 = bucket_percentile_ms(window.buckets, 0.99) if sum(window.buckets.values()) >= MIN_SAMPLES else None
        findings["latency"] = None if p99 is None else (
            p99 > latency_limit, p99, latency_limit,
            f"p99 {p99:.2f} ms {'above' if p99 > latency_limit else 'back below'} "
            f"CACHE_LATENCY_THRESHOLD {latency_limit:g} ms")
        rate = window.hits / window.lookups if window.lookups >= MIN_SAMPLES else None
        findings["hit_rate"] = None if rate is None else (
            rate < hit_rate_limit, rate, hit_rate_limit,
            f"hit rate {rate:.3f} {'below' if rate < hit_rate_limit else 'back above'} "
            f"CACHE_HIT_RATE_THRESHOLD {hit_rate_limit:g}")
        errors = window.errors / window.operations if window.operations >= MIN_SAMPLES else None
        findings["error_rate"] = None if errors is None else (
            errors > self.error_rate, errors, self.error_rate,
            f"error rate {errors:.3f} {'above' if errors > self.error_rate else 'back below'} {self.error_rate:g}")
        alerts = []
        for check, finding in findings.items():
            if finding is None:  # too little traffic to judge: the state stays as it was
                continue
            breached, value, limit, message = finding
            if breached and check not in self.breached:
                alert = Alert(check, "breach", value, limit, message)
                self.breached[check] = alert
                alerts.append(alert)
            elif not breached and check in self.breached:
                del self.breached[check]
                alerts.append(Alert(check, "recovered", value, limit, message))
        return alerts


class AlertHooks:
    """The hooks of one cache: registered on any view, before or after its monitor starts."""

    def __init__(self) -> None:
        self.hooks: list[AlertHook] = []

    def add(self, hook: AlertHook) -> Callable[[], None]:
        if not callable(hook):
            raise TypeError(f"an alert hook must be callable, got {type(hook).__name__}")
        self.hooks.append(hook)

        def remove() -> None:
            if hook in self.hooks:
                self.hooks.remove(hook)

        return remove


class _MonitorState:
    """What the last check found, shared by the sync and async monitors."""

    def __init__(self, evaluator: AlertEvaluator, hooks: AlertHooks) -> None:
        self.evaluator = evaluator
        self.hooks = hooks
        self.last: dict[str, Any] | None = None

    def record(self, report: dict[str, Any], stats: Mapping[str, Any]) -> None:
        alerts = self.evaluator.update(report, stats)
        report = dict(report)
        report["breaches"] = [alert.message for alert in self.evaluator.breached.values()]
        self.last = report
        for alert in alerts:
            if alert.state == "breach":
                log.warning("qcache alert: %s", alert.message)
            else:
                log.info("qcache alert cleared: %s", alert.message)
            for hook in list(self.hooks.hooks):
                try:
                    hook(alert)
                except Exception:  # a failing hook never stops the others, nor the monitor
                    log.exception("qcache: alert hook %r failed", hook)

    def failed(self, exc: BaseException) -> None:
        self.last = {"status": "unhealthy", "reasons": [f"health check raised {type(exc).__name__}: {exc}"]}
        log.warning("qcache: background health check failed: %s", exc)


class HealthMonitor:
    """Runs ``check()`` (a sync cache's health) every ``interval`` seconds in a daemon thread."""

    def __init__(self, check: Callable[[], dict[str, Any]], stats: Callable[[], Mapping[str, Any]],
                 evaluator: AlertEvaluator, hooks: AlertHooks, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the health check interval must be positive, got {interval!r}")
        self.state = _MonitorState(evaluator, hooks)
        self._check = check
        self._stats = stats
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qcache-health", daemon=True)

    def start(self) -> HealthMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_now()
            except CacheGone:
                return

    def check_now(self) -> dict[str, Any] | None:
        """One check, now (the thread calls this; tests and tools may too)."""
        try:
            self.state.record(self._check(), self._stats())
        except CacheGone:
            raise
        except Exception as exc:  # noqa: BLE001  # the monitor outlives any one failed check
            self.state.failed(exc)
        return self.state.last

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)


class AsyncHealthMonitor:
    """The same for an async cache, as a task on its event loop."""

    def __init__(self, check: Callable[[], Awaitable[dict[str, Any]]], stats: Callable[[], Mapping[str, Any]],
                 evaluator: AlertEvaluator, hooks: AlertHooks, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the health check interval must be positive, got {interval!r}")
        self.state = _MonitorState(evaluator, hooks)
        self._check = check
        self._stats = stats
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> AsyncHealthMonitor:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="qcache-health")
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_now()
            except CacheGone:
                return

    async def check_now(self) -> dict[str, Any] | None:
        try:
            self.state.record(await self._check(), self._stats())
        except CacheGone:
            raise
        except Exception as exc:  # noqa: BLE001  # the monitor outlives any one failed check
            self.state.failed(exc)
        return self.state.last

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
