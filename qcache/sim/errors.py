"""Errors the simulator raises for bad input (all are qcache errors and ValueErrors)."""

from __future__ import annotations

from qcache.errors import QCacheError


class SimulationError(QCacheError, ValueError):
    """The simulator was asked something it cannot do (bad size, unknown policy...)."""


class TraceError(SimulationError):
    """A trace cannot be read: missing, unreadable, malformed or empty."""
