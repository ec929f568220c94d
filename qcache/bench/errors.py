"""The error raised when benchmark results on disk cannot be read."""

from __future__ import annotations

from qcache.errors import QCacheError


class ResultsError(QCacheError, ValueError):
    """A results folder or file is missing, unreadable or not what a run writes."""
