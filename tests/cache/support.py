"""Helpers for the facade tests: one awaitable API over both facades, clocks, Redis peeks.

Every contract test is written once, as a coroutine, against :class:`Handle`.
A handle wraps either a :class:`qcache.QueryCache` (its calls run directly;
they block the test's event loop, which nothing else needs meanwhile) or an
:class:`qcache.AsyncQueryCache` (its calls are awaited), so the same body
checks the same semantics on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from qcache import AsyncQueryCache, QueryCache
from qcache.cache.core import CacheCore
from qcache.cache.record import binding, record_header
from qcache.l2 import escape_glob

Facade = QueryCache | AsyncQueryCache

FLAVOURS = ("sync", "async")
#: The Redis deployments every facade test runs on: a standalone server and a Redis Cluster.
SERVERS = ("redis", "cluster")


async def settle(result: Any) -> Any:
    """``result``, awaited first if it is awaitable."""
    if inspect.isawaitable(result):
        return await result
    return result


class Handle:
    """A facade (or one of its project views) behind coroutine methods of the same names.

    ``await handle.get("k")`` runs ``QueryCache.get`` or awaits
    ``AsyncQueryCache.get``; every public method works the same way, including
    the ones that are plain functions on both facades (``stats``).
    """

    def __init__(self, cache: Facade) -> None:
        self.raw = cache

    @property
    def is_async(self) -> bool:
        """Whether this wraps an AsyncQueryCache."""
        return isinstance(self.raw, AsyncQueryCache)

    @property
    def core(self) -> CacheCore:
        """The facade's shared core (white-box checks: L1, codec, pending writes)."""
        return self.raw._core

    @property
    def namespace(self) -> str:
        """The view's key namespace."""
        return self.raw.namespace

    def for_project(self, project: str) -> Handle:
        """A handle on the project view."""
        return Handle(self.raw.for_project(project))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.raw, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await settle(method(*args, **kwargs))

        return call

    def storage_key(self, key: str, cache_type: str | None = None) -> str:
        """The key ``key`` is stored under in both tiers (for white-box checks)."""
        core = self.core
        return core.storage_key(self.namespace, core.spec(cache_type), key)[0]

    def loader(self, fn: Callable[[], Any], delay: float = 0.0) -> Callable[[], Any]:
        """A loader for ``get_or_set`` that takes ``delay`` seconds the way this flavour would.

        Threads block in ``time.sleep``; coroutines await ``asyncio.sleep`` so
        the other waiters really run meanwhile.
        """
        if self.is_async:

            async def aload() -> Any:
                await asyncio.sleep(delay)
                return fn()

            return aload

        def load() -> Any:
            time.sleep(delay)
            return fn()

        return load

    async def concurrently(self, count: int, fn: Callable[[Facade, int], Any]) -> list[Any]:
        """Run ``fn(facade, i)`` for ``i`` in ``range(count)`` at once; results or raised exceptions.

        Threads released together by a barrier for the sync facade, tasks of
        one ``gather`` for the async one.
        """
        if self.is_async:
            return list(
                await asyncio.gather(*(settle(fn(self.raw, i)) for i in range(count)), return_exceptions=True)
            )
        barrier = threading.Barrier(count)

        def run(index: int) -> Any:
            barrier.wait()
            try:
                return fn(self.raw, index)
            except BaseException as exc:  # handed back for the test to inspect
                return exc

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(run, range(count)))


class Clocks:
    """A wall clock (record expiry, shared through Redis) and a monotonic one (L1), moved together."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._mono = 1_000.0
        self._lock = threading.Lock()

    def wall(self) -> float:
        """Epoch seconds, as ``time.time``."""
        return self._wall

    def mono(self) -> float:
        """Monotonic seconds, as ``time.monotonic``."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._wall += seconds
            self._mono += seconds


def redis_keys(client: redis.Redis, prefix: str) -> set[str]:
    """Every key on the server under ``<prefix>:`` (SCAN, never KEYS)."""
    return {
        k.decode("utf-8", "surrogateescape")
        for k in client.scan_iter(match=escape_glob(prefix + ":") + "*", count=1000)
    }


async def await_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last answer.

    Sleeps with ``asyncio.sleep`` so the event loop (and an async flusher) keeps running.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return predicate()
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def flusher_paused(handle: Handle) -> AsyncIterator[None]:
    """Hold the facade's flush lock, so the background flusher cannot send a batch meanwhile.

    Deletes take the same lock: do not delete inside the block.
    """
    lock = handle.raw._shared.flush_lock
    if handle.is_async:
        await lock.acquire()
    else:
        lock.acquire()  # the sync flusher holds it for one batch at most
    try:
        yield
    finally:
        lock.release()


def forge_record(codec: Any, value: Any, skey: str, expires_at_ms: int, caller_key: str | None = None) -> bytes:
    """An unencrypted record for ``skey`` with a valid CRC: what anyone who can write to Redis can build."""
    header = record_header(expires_at_ms, caller_key)
    return header + codec.encode(value, key=binding(header, skey))
