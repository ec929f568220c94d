"""Namespace checks for pattern deletion (SCAN MATCH), no I/O; escaping lives in :mod:`qcache.l2.glob`."""

from __future__ import annotations

#: COUNT hint for SCAN: large enough to keep round trips few, small enough that
#: one SCAN step never blocks the server noticeably.
SCAN_COUNT = 500


def check_namespace(namespace: str) -> str:
    """Validate the tier's key prefix; an empty one would let a pattern reach every key on the server."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be str, got {type(namespace).__name__}")
    if not namespace:
        raise ValueError("namespace must not be empty: it confines pattern deletion")
    return namespace


def check_pattern(pattern: str, escaped_namespace: str) -> None:
    """Refuse a MATCH pattern that could reach keys outside the namespace.

    The pattern must begin with the namespace escaped by :func:`qcache.l2.glob.escape_glob`.
    That check is sound: the escaped prefix is a run of literal tokens (a
    backslash in it always starts a two-character escape), so a glob that
    starts with it can only match keys that start with the namespace itself.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be str, got {type(pattern).__name__}")
    if not pattern.startswith(escaped_namespace):
        raise ValueError(
            f"pattern {pattern!r} is outside this cache's namespace: it must start with "
            f"{escaped_namespace!r} (the namespace with glob characters escaped)"
        )


class UnlinkBatcher:
    """Collects keys found by successive SCAN steps and says when to UNLINK them.

    Sparse matches would otherwise cost one UNLINK per SCAN step; keys are
    held until ``batch_size`` of them are pending or the scan has finished.
    """

    __slots__ = ("_batch_size", "_pending")

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._pending: list[bytes] = []

    def take(self, found: list[bytes], *, finished: bool) -> list[bytes]:
        """Add one SCAN step's keys; returns the keys to UNLINK now (possibly none)."""
        self._pending.extend(found)
        if self._pending and (finished or len(self._pending) >= self._batch_size):
            due, self._pending = self._pending, []
            return due
        return []
