"""The error the tuning logic raises for input it cannot decide on."""

from __future__ import annotations

from qcache.errors import QCacheError


class TuneError(QCacheError, ValueError):
    """A run, a workload or a measurement the tuner cannot use (the message says why)."""
