"""Shaping of raw redis-py replies into the tier's return types, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qcache.errors import BackendError

#: What :meth:`RedisTier.pttl` returns for a key that exists without an expiry.
NO_EXPIRY = -1


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The facts about the server that health checks and reports need."""

    version: str
    used_memory: int  # bytes
    maxmemory: int  # bytes; 0 means no limit
    maxmemory_policy: str
    mode: str  # standalone, cluster or sentinel
    connected_clients: int = 0
    evicted_keys: int = 0  # since the server started


def _whole(value: object) -> int:
    """An INFO field as an int; ValueError when the server sent something else."""
    if isinstance(value, (int, str, bytes, float)):
        return int(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def server_info_from(raw: Mapping[str, object]) -> ServerInfo:
    """Pick the fields we report from an ``INFO`` reply; a reply without them is a backend error."""
    try:
        return ServerInfo(
            version=str(raw["redis_version"]),
            used_memory=_whole(raw["used_memory"]),
            maxmemory=_whole(raw.get("maxmemory", 0)),
            maxmemory_policy=str(raw.get("maxmemory_policy", "unknown")),
            mode=str(raw.get("redis_mode", "standalone")),
            connected_clients=_whole(raw.get("connected_clients", 0)),
            evicted_keys=_whole(raw.get("evicted_keys", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"Redis INFO reply is missing or has a malformed field ({exc})") from exc


def pttl_from(reply: int) -> int | None:
    """PTTL reply -> remaining milliseconds, :data:`NO_EXPIRY` for a persistent key, ``None`` if missing."""
    if reply == -2:
        return None
    if reply == -1:
        return NO_EXPIRY
    return int(reply)
