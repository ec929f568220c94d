"""``qcache load check``: a load run against the thresholds, each breach named.

Latency is checked per cache user class and operation: a p99 above
``CACHE_LATENCY_THRESHOLD`` is an alert, a p99 above 10 ms is not healthy
(the seed's bounds). A cache user class whose hit rate is below
``CACHE_HIT_RATE_THRESHOLD``, or whose error ratio is above the limit (1% by
default), breaches too. The thresholds are those of the configuration the run
used, as recorded in its summary, unless the caller overrides them. Baseline
users (raw redis-py) are reported by the run but never checked: they are not
the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

HEALTHY_LATENCY_MS = 10.0
DEFAULT_MAX_ERROR_RATIO = 0.01

Severity = Literal["alert", "unhealthy", "breach"]


@dataclass(frozen=True)
class Thresholds:
    """The limits a run is checked against."""

    latency_alert_ms: float
    hit_rate: float
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO
    healthy_latency_ms: float = HEALTHY_LATENCY_MS

    @classmethod
    def of_run(
        cls,
        summary: Mapping[str, Any],
        *,
        latency_alert_ms: float | None = None,
        hit_rate: float | None = None,
        max_error_ratio: float | None = None,
    ) -> Thresholds:
        """The run's recorded thresholds, each overridable."""
        recorded = summary.get("thresholds", {})
        return cls(
            latency_alert_ms=float(latency_alert_ms if latency_alert_ms is not None
                                   else recorded.get("latency_alert_ms", 50.0)),
            hit_rate=float(hit_rate if hit_rate is not None else recorded.get("hit_rate", 0.6)),
            max_error_ratio=float(max_error_ratio if max_error_ratio is not None
                                  else recorded.get("max_error_ratio", DEFAULT_MAX_ERROR_RATIO)),
        )


@dataclass(frozen=True)
class Breach:
    """One figure past its limit."""

    subject: str  # "ReadHeavyUser get" or "ReadHeavyUser"
    figure: str  # "p99", "hit rate", "error ratio"
    value: float
    limit: float
    severity: Severity

    def describe(self) -> str:
        if self.figure == "p99":
            what = "above the alert threshold" if self.severity == "alert" else "above the 10 ms healthy bound"
            return f"{self.subject}: p99 {self.value / 1000:.3f} ms {what} ({self.limit:g} ms)"
        if self.figure == "hit rate":
            return f"{self.subject}: hit rate {self.value:.3f} below CACHE_HIT_RATE_THRESHOLD ({self.limit:g})"
        return f"{self.subject}: error ratio {self.value:.4f} above the limit ({self.limit:g})"


def check_summary(summary: Mapping[str, Any], thresholds: Thresholds) -> list[Breach]:
    """Every breach of a run's cache users, in a stable order."""
    cache_users = {u["user"] for u in summary["users"] if u.get("cache_user")}
    breaches: list[Breach] = []
    for op in summary["operations"]:
        if op["user"] not in cache_users or op.get("p99_us") is None:
            continue
        subject = f"{op['user']} {op['operation']}"
        p99_ms = op["p99_us"] / 1000
        if p99_ms > thresholds.latency_alert_ms:
            breaches.append(Breach(subject, "p99", op["p99_us"], thresholds.latency_alert_ms, "alert"))
        if p99_ms > thresholds.healthy_latency_ms:
            breaches.append(Breach(subject, "p99", op["p99_us"], thresholds.healthy_latency_ms, "unhealthy"))
    for user in summary["users"]:
        if not user.get("cache_user"):
            continue
        if user.get("hit_rate") is not None and user["hit_rate"] < thresholds.hit_rate:
            breaches.append(Breach(user["user"], "hit rate", user["hit_rate"], thresholds.hit_rate, "breach"))
        if user["count"]:
            ratio = user["errors"] / user["count"]
            if ratio > thresholds.max_error_ratio:
                breaches.append(Breach(user["user"], "error ratio", ratio, thresholds.max_error_ratio, "breach"))
    return breaches
