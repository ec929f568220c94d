"""What the cache asks of an L2 backend: typed protocols (sync and async) and the operation enum.

The cache facade talks to L2 only through these protocols: the standalone
Redis tiers implement them, and so do the in-memory backends (tests, demos)
and a later cluster tier. Every failure surfaces as a qcache error
(:class:`qcache.errors.BackendError`, :class:`qcache.errors.CircuitOpenError`
or :class:`qcache.errors.ServerRefusal`), never as a client library's own
exception, so the cache never needs to know which client sits below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from qcache.l2.batching import SetManyItems
from qcache.l2.breaker import BreakerStats
from qcache.l2.responses import ServerInfo
from qcache.l2.tagging import Membership


class L2Op(Enum):
    """The L2 operations a cache plan may request (see :class:`qcache.cache.plans.L2Call`)."""

    GET = "get"
    GET_MANY = "get_many"
    SET = "set"
    SET_QUIET = "set_quiet"  # SET on the given invalidation connection if free; True: it went there (no echo)
    SET_MANY = "set_many"
    DELETE = "delete"
    SCAN_KEYS = "scan_keys"
    SET_TAGGED = "set_tagged"
    SET_TAGGED_QUIET = "set_tagged_quiet"  # one tagged entry, as SET_QUIET: True if it went on the connection
    TAG_MEMBERS = "tag_members"
    SERVER_INFO = "server_info"


@runtime_checkable
class L2Backend(Protocol):
    """A bytes-only L2 store confined to one key namespace (blocking calls).

    Keys passed in are full storage keys starting with :attr:`namespace`;
    pattern operations refuse a pattern that could reach outside it.
    """

    @property
    def namespace(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, data: bytes, ttl: float) -> None: ...

    def pttl(self, key: str) -> int | None: ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set_many(self, items: SetManyItems, ttl: float | None = None) -> None: ...

    def delete(self, *keys: str) -> int: ...

    def delete_pattern(self, pattern: str) -> int: ...

    def scan_keys(self, pattern: str) -> list[str]: ...

    def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None: ...

    def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]: ...

    def ping(self) -> float: ...

    def server_info(self) -> ServerInfo: ...

    def breaker_stats(self) -> BreakerStats: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncL2Backend(Protocol):
    """:class:`L2Backend` for asyncio: the same operations, as coroutines."""

    @property
    def namespace(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, data: bytes, ttl: float) -> None: ...

    async def pttl(self, key: str) -> int | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, items: SetManyItems, ttl: float | None = None) -> None: ...

    async def delete(self, *keys: str) -> int: ...

    async def delete_pattern(self, pattern: str) -> int: ...

    async def scan_keys(self, pattern: str) -> list[str]: ...

    async def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None: ...

    async def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]: ...

    async def ping(self) -> float: ...

    async def server_info(self) -> ServerInfo: ...

    def breaker_stats(self) -> BreakerStats: ...

    async def close(self) -> None: ...


def bind_operations(backend: L2Backend | AsyncL2Backend) -> dict[L2Op, Callable[..., Any]]:
    """The backend's method for each :class:`L2Op`, bound once so that running a plan step is one lookup."""
    return {
        L2Op.GET: backend.get,
        L2Op.GET_MANY: backend.get_many,
        L2Op.SET: backend.set,
        L2Op.SET_QUIET: getattr(backend, "set_quiet", None) or _set_ignoring_writer(backend),
        L2Op.SET_MANY: backend.set_many,
        L2Op.DELETE: backend.delete,
        L2Op.SCAN_KEYS: backend.scan_keys,
        L2Op.SET_TAGGED: backend.set_tagged,
        L2Op.SET_TAGGED_QUIET: getattr(backend, "set_tagged_quiet", None) or _set_tagged_ignoring_writer(backend),
        L2Op.TAG_MEMBERS: backend.tag_members,
        L2Op.SERVER_INFO: backend.server_info,
    }


def _set_ignoring_writer(backend: L2Backend | AsyncL2Backend) -> Callable[..., Any]:
    """``SET_QUIET`` on a backend without ``set_quiet``: its ``set``, whose result (None) asks for the echo."""
    set_ = backend.set

    def set_quiet(key: str, data: bytes, ttl: float, writer: object) -> Any:
        return set_(key, data, ttl)

    return set_quiet


def _set_tagged_ignoring_writer(backend: L2Backend | AsyncL2Backend) -> Callable[..., Any]:
    """``SET_TAGGED_QUIET`` on a backend without ``set_tagged_quiet``: its ``set_tagged`` (None: echo checked)."""
    set_tagged = backend.set_tagged

    def set_tagged_quiet(key: str, data: bytes, ttl: float, memberships: Sequence[Membership], now_ms: int,
                         writer: object) -> Any:
        return set_tagged([(key, data, ttl)], memberships, now_ms)

    return set_tagged_quiet
