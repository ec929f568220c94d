"""The seed's health rule, as one verdict per measured number.

Latency: healthy under 10 ms, an alert at ``CACHE_LATENCY_THRESHOLD`` (50 ms
by default). Hit rate: an alert under ``CACHE_HIT_RATE_THRESHOLD`` (0.6 by
default), healthy above 0.8 (the seed's health check: ``hit_rate > 0.8``). The numbers themselves live in
:class:`qcache.bench.Thresholds`, so the report, the gate and the notebooks
judge against the same bounds.
"""

from __future__ import annotations

from enum import Enum

from qcache.bench.report import Thresholds

#: The seed's defaults: alert at 50 ms and under a 0.6 hit rate (healthy < 10 ms, > 0.8).
SEED_THRESHOLDS = Thresholds(latency_alert_ms=50.0, hit_rate_alert=0.6)


class Status(str, Enum):
    """Where a number stands against the thresholds (also the color it is drawn in)."""

    HEALTHY = "healthy"
    WARNING = "warning"  # passes the alert threshold but not the healthy bound
    ALERT = "alert"

    @property
    def color(self) -> str:
        """Matplotlib color: green passes, orange is between the bounds, red fails."""
        return {"healthy": "tab:green", "warning": "tab:orange", "alert": "tab:red"}[self.value]

    @property
    def passed(self) -> bool:
        """Whether the number passes the alert threshold."""
        return self is not Status.ALERT


def latency_status(ms: float, thresholds: Thresholds = SEED_THRESHOLDS) -> Status:
    """Healthy under the healthy bound, an alert above the alert threshold."""
    if ms > thresholds.latency_alert_ms:
        return Status.ALERT
    if ms >= thresholds.healthy_latency_ms:
        return Status.WARNING
    return Status.HEALTHY


def hit_rate_status(rate: float, thresholds: Thresholds = SEED_THRESHOLDS) -> Status:
    """An alert under the alert threshold, healthy above the healthy bound (rates are fractions)."""
    if rate < thresholds.hit_rate_alert:
        return Status.ALERT
    if rate <= thresholds.healthy_hit_rate:
        return Status.WARNING
    return Status.HEALTHY
