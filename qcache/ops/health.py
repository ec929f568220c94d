"""``qcache health``: the cache's health as a container probe would ask for it, within a deadline.

The probe builds the cache from the configuration (environment, ``.env``,
``ENVIRONMENT``), runs :meth:`~qcache.QueryCache.health` once and maps its
status to an exit code: 0 healthy, 1 degraded, 2 unhealthy. A probe must
answer in time even when Redis hangs, so the check runs in a worker thread
and a check that outlives ``timeout`` counts as unhealthy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from qcache import CacheConfig, QueryCache

EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(frozen=True)
class ProbeResult:
    status: str
    report: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 2)


def probe(config: CacheConfig, timeout: float) -> ProbeResult:
    """One health check of a cache built from ``config``, bounded by ``timeout`` seconds."""
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    outcome: dict[str, Any] = {}

    def check() -> None:
        try:
            with QueryCache(config) as cache:
                outcome["report"] = cache.health()
        except Exception as exc:  # noqa: BLE001  # any failure to build or check is the probe's answer
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=check, name="qcache-health-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return ProbeResult("unhealthy", {"status": "unhealthy",
                                         "reasons": [f"the health check did not finish within {timeout:g} s"]})
    if "error" in outcome:
        return ProbeResult("unhealthy", {"status": "unhealthy", "reasons": [outcome["error"]]})
    report: dict[str, Any] = outcome["report"]
    return ProbeResult(str(report.get("status", "unhealthy")), report)
