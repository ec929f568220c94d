"""The asyncio L2 tier: the same contract as :class:`RedisTier`, on ``redis.asyncio``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import ModuleType, TracebackType
from typing import Any, ClassVar, TypeVar, cast

import redis.asyncio as aredis
from redis.asyncio.connection import DefaultParser
from redis.asyncio.retry import Retry
from redis.exceptions import NoScriptError

from qcache.l2.batching import (
    Entry,
    SetManyItems,
    check_data,
    chunked,
    first_error,
    flatten,
    key_list,
    normalize_items,
    ttl_to_px,
)
from qcache.l2.core import TierCore
from qcache.l2.direct import async_direct_commands
from qcache.l2.guard import unjudged
from qcache.l2.patterns import SCAN_COUNT, UnlinkBatcher
from qcache.l2.responses import ServerInfo, pttl_from, server_info_from
from qcache.l2.tagging import (
    SET_TAGGED_SCRIPT,
    Membership,
    merge_members,
    queue_member_reads,
    queue_tag_updates,
    script_call,
    tag_updates,
)

C = TypeVar("C")
R = TypeVar("R")


class AsyncRedisTier(TierCore):
    """The L2 cache tier on a ``redis.asyncio`` client; every method of :class:`RedisTier` as a coroutine.

    Same semantics as the sync tier (bytes only, namespace-confined pattern
    deletion, :class:`BackendError` / :class:`CircuitOpenError`, chunked
    batches); chunks of one batch call run concurrently with
    ``asyncio.gather``, at most ``parallel_operations`` at once. Each round
    trip runs under ``asyncio.timeout(timeout)``, which bounds the pool wait,
    the connect, redis-py's retries and their back-off together. GET, MGET,
    SET and batches of SETs are written to the pool's connections directly
    (:class:`qcache.l2.direct.AsyncDirectCommands`), redis-py making the call only when that
    attempt fails on the connection.
    """

    _flavour: ClassVar[ModuleType] = aredis
    _retry_cls = Retry
    _default_parser = DefaultParser

    def _init_flavour(self) -> None:
        # The hot commands, written to the pool directly (a cluster client brings its own, by primary).
        self._commands: Any = async_direct_commands(self._client, self._timeout) or self._client

    # -- single keys -------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` when absent."""
        with self._guards["GET"]:
            async with asyncio.timeout(self._timeout):
                value: bytes | None = await self._commands.get(key)
        return value

    async def set(self, key: str, data: bytes, ttl: float) -> None:
        """Store ``data`` for ``ttl`` seconds (PX milliseconds, rounded up, at least 1 ms)."""
        px = ttl_to_px(ttl)
        check_data(key, data)
        with self._guards["SET"]:
            async with asyncio.timeout(self._timeout):
                await self._commands.set(key, data, px=px)

    async def pttl(self, key: str) -> int | None:
        """Remaining lifetime in ms; :data:`NO_EXPIRY` (-1) without expiry; ``None`` if absent."""
        with self._guards["PTTL"]:
            async with asyncio.timeout(self._timeout):
                reply = await self._client.pttl(key)
        return pttl_from(reply)

    # -- batches -----------------------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for ``keys`` in the same order, ``None`` for each missing key (MGET per chunk)."""
        keys = key_list(keys)
        if not keys:
            return []
        with self._guards["MGET"]:
            if len(keys) <= self._batch_size:
                async with asyncio.timeout(self._timeout):
                    values: list[bytes | None] = await self._commands.mget(keys)
                return values
            parts = await self._run_chunks(self._commands.mget, chunked(keys, self._batch_size))
        return flatten(parts)

    async def set_many(self, items: SetManyItems, ttl: float | None = None) -> None:
        """Pipelined ``SET key data PX ms`` per chunk; inputs as :meth:`RedisTier.set_many`."""
        entries = normalize_items(items, ttl)
        if not entries:
            return
        with self._guards["PIPELINE SET"]:
            if len(entries) <= self._batch_size:
                async with asyncio.timeout(self._timeout):
                    await self._set_chunk(entries)
            else:
                await self._run_chunks(self._set_chunk, chunked(entries, self._batch_size))

    async def delete(self, *keys: str) -> int:
        """UNLINK ``keys``; returns how many existed."""
        if not keys:
            return 0
        with self._guards["UNLINK"]:
            if len(keys) <= self._batch_size:
                async with asyncio.timeout(self._timeout):
                    count: int = await self._client.unlink(*keys)
                return count
            counts = await self._run_chunks(self._unlink_chunk, chunked(keys, self._batch_size))
        return sum(counts)

    async def delete_pattern(self, pattern: str) -> int:
        """SCAN + batched UNLINK inside the namespace; see :meth:`RedisTier.delete_pattern`."""
        self.check_pattern(pattern)
        batcher = UnlinkBatcher(self._batch_size)
        removed = cursor = 0
        with self._guards["SCAN+UNLINK"]:
            while True:
                async with asyncio.timeout(self._timeout):  # one deadline per round trip
                    cursor, found = await self._client.scan(cursor, match=pattern, count=SCAN_COUNT)
                due = batcher.take(found, finished=cursor == 0)
                if due:
                    async with asyncio.timeout(self._timeout):
                        removed += await self._client.unlink(*due)
                if cursor == 0:
                    return removed

    async def scan_keys(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` inside the namespace; see :meth:`RedisTier.scan_keys`."""
        self.check_pattern(pattern)
        keys: list[str] = []
        cursor = 0
        with self._guards["SCAN"]:
            while True:
                async with asyncio.timeout(self._timeout):
                    cursor, found = await self._client.scan(cursor, match=pattern, count=SCAN_COUNT)
                keys.extend(k.decode("utf-8", "surrogateescape") for k in found)
                if cursor == 0:
                    return keys

    # -- tags (see qcache.l2.tagging) ----------------------------------------

    async def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """Write entries and their tag memberships in one pipeline round trip (no transaction)."""
        if isinstance(items, list) and len(items) == 1 and len(items[0]) == 3:
            # One entry (a tagged ``set``): one command, the script (see qcache.l2.tagging).
            key, data, ttl = items[0]
            keys, args = script_call(key, check_data(key, data), ttl_to_px(ttl), memberships, now_ms)
            with self._guards["SET+TAGS"]:
                async with asyncio.timeout(self._timeout):
                    try:
                        await self._client.evalsha(self._set_tagged_sha, len(keys), *keys, *args)
                    except NoScriptError:  # a restarted or new server: load it once, then as before
                        await self._client.script_load(SET_TAGGED_SCRIPT)
                        await self._client.evalsha(self._set_tagged_sha, len(keys), *keys, *args)
            return
        entries = normalize_items(items, None)
        updates = tag_updates(memberships)
        with self._guards["SET+TAGS"]:
            async with asyncio.timeout(self._timeout), self._client.pipeline(transaction=False) as pipe:
                queue_tag_updates(pipe, updates, now_ms)
                for key, data, px in entries:
                    pipe.set(key, data, px=px)
                await pipe.execute()

    async def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]:
        """The storage keys written with any of ``tag_keys`` whose entries may still be alive."""
        if not tag_keys:
            return []
        with self._guards["TAG MEMBERS"]:
            async with asyncio.timeout(self._timeout), self._client.pipeline(transaction=False) as pipe:
                queue_member_reads(pipe, tag_keys, now_ms)
                replies = await pipe.execute()
        return merge_members(replies)

    # -- server ------------------------------------------------------------

    async def ping(self) -> float:
        """Round-trip time of a PING, in seconds."""
        with self._guards["PING"]:
            start = time.perf_counter()
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
            return time.perf_counter() - start

    async def server_info(self) -> ServerInfo:
        """Version and memory facts of the server (one INFO call)."""
        with self._guards["INFO"]:
            async with asyncio.timeout(self._timeout):
                raw = await self._client.info()
        return server_info_from(raw)

    async def warm_up(self) -> int:
        """Open the configured number of pooled connections now; returns how many were opened."""
        if not self._warm_connections:
            return 0
        pool = self._client.connection_pool
        held: list[Any] = []
        with unjudged("CONNECT"):
            try:
                for _ in range(self._warm_connections):
                    async with asyncio.timeout(self._timeout):
                        held.append(await pool.get_connection())
            finally:
                for connection in held:
                    await pool.release(connection)
        return len(held)

    async def close(self) -> None:
        """Close the client and its pool if the tier owns it. Idempotent."""
        if self._mark_closed() and self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncRedisTier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- internals -----------------------------------------------------------

    async def _set_chunk(self, entries: Sequence[Entry]) -> None:
        """One round trip of SET ... PX for a chunk; what was not acknowledged goes through redis-py.

        Once the deadline has passed, the direct attempt raised (its cancellation) instead of returning.
        """
        set_direct = getattr(self._commands, "set_direct", None)  # a plain redis-py client has none
        missed = entries if set_direct is None else await set_direct(entries)
        if missed:
            await self._pipeline_set(missed)

    async def _pipeline_set(self, entries: Sequence[Entry]) -> None:
        """redis-py's pipeline of SET ... PX: its redirects, retries and errors."""
        async with self._client.pipeline(transaction=False) as pipe:
            for key, data, px in entries:
                pipe.set(key, data, px=px)
            await pipe.execute()

    async def _unlink_chunk(self, keys: Sequence[str]) -> int:
        """UNLINK one chunk of keys."""
        count: int = await self._client.unlink(*keys)
        return count

    async def _run_chunks(self, fn: Callable[[C], Awaitable[R]], chunks: Iterable[C]) -> list[R]:
        """Run ``fn`` on every chunk, at most ``parallel_operations`` at once; results in chunk order.

        Waits for every chunk before raising the first error, like the sync tier.
        """
        limit = asyncio.Semaphore(self._parallel)

        async def bounded(chunk: C) -> R:
            async with limit:
                async with asyncio.timeout(self._timeout):  # each chunk is a round trip with its own deadline
                    return await fn(chunk)

        results = await asyncio.gather(*(bounded(c) for c in chunks), return_exceptions=True)
        error = first_error(results)
        if error is not None:
            raise error
        return cast(list[R], results)  # first_error() found no exception among them
