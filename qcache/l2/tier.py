"""The synchronous L2 tier: bytes in, bytes out, on a redis-py client."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from types import ModuleType, TracebackType
from typing import Any, ClassVar, TypeVar

import redis
from redis.connection import DefaultParser
from redis.exceptions import NoScriptError

from qcache.errors import BackendError
from qcache.l2.batching import (
    Entry,
    SetManyItems,
    check_data,
    chunked,
    flatten,
    key_list,
    normalize_items,
    ttl_to_px,
)
from qcache.l2.core import TierCore
from qcache.l2.deadline import DeadlineExceeded, DeadlineRetry, arm, bounded_connection_class, remaining
from qcache.l2.direct import (
    DirectCommands,
    QuietWriter,
    TransactionAborted,
    TransactionCommandFailed,
    direct_commands,
    tagged_set_request,
)
from qcache.l2.guard import unjudged
from qcache.l2.idle import AVAILABLE as IDLE_QUEUE_AVAILABLE
from qcache.l2.idle import IdleConnections
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

logger = logging.getLogger("qcache")

C = TypeVar("C")
R = TypeVar("R")


class RedisTier(TierCore):
    """The L2 cache tier on a synchronous redis-py client.

    It stores and returns ``bytes`` only (the codec encodes values before),
    under keys the facade has fully built, all starting with ``namespace``.
    Give the namespace with its trailing separator (``"qcache:app:"``):
    pattern deletion is confined by prefix, and ``"qcache:app"`` would also
    cover ``"qcache:app2:..."``.
    Failures raise :class:`qcache.errors.BackendError` naming the operation;
    after repeated connectivity failures the shared :class:`CircuitBreaker`
    opens and calls raise :class:`qcache.errors.CircuitOpenError` at once,
    until a probe after the cool-down succeeds. Whether a failure is a miss
    or an error for the caller is the facade's decision, not the tier's.

    Batch calls split their keys into chunks of ``batch_size`` and run up to
    ``parallel_operations`` chunks at once on a small thread pool owned by
    the tier (created on first need, shut down by :meth:`close`), the calling
    thread running the first chunk. A batch that fits in one chunk runs
    inline, with no pool overhead.

    Thread-safe: redis-py clients are, and the tier keeps no per-call state.
    """

    _flavour: ClassVar[ModuleType] = redis
    _retry_cls = DeadlineRetry
    _default_parser = DefaultParser

    @classmethod
    def _bound_pool(cls, pool: Any) -> None:
        """Sends and reads on the pool's connections wait at most until the deadline (:mod:`qcache.l2.deadline`).

        The pool also keeps its idle connections in :class:`IdleConnections`
        (built before any connection exists: ``reset`` makes the queue anew),
        unless gevent has replaced the standard library's queue.
        """
        pool.connection_class = bounded_connection_class(pool.connection_class)
        if IDLE_QUEUE_AVAILABLE:
            pool.queue_class = IdleConnections
            pool.reset()

    def _init_flavour(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # The hot commands, written to the pool directly (a cluster client brings its own, by primary).
        self._commands: Any = direct_commands(self._client) or self._client
        # Tagged writes go as a transaction on the invalidation connection until a server refuses one.
        self._quiet_tags = isinstance(self._commands, DirectCommands)

    # -- single keys -------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` when absent."""
        with self._guards["GET"]:
            value: bytes | None = self._commands.get(key)
        return value

    def set(self, key: str, data: bytes, ttl: float) -> None:
        """Store ``data`` for ``ttl`` seconds (sent as PX milliseconds, rounded up, at least 1 ms)."""
        px = ttl_to_px(ttl)
        check_data(key, data)
        with self._guards["SET"]:
            self._commands.set(key, data, px=px)

    def set_quiet(self, key: str, data: bytes, ttl: float, writer: QuietWriter) -> bool:
        """:meth:`set`, on ``writer`` (a cache's invalidation connection) when it is free: True if it went there.

        Redis does not echo such a write back to that cache's L1 (see
        :mod:`qcache.l2.tracking`). Failures are as :meth:`set`'s.
        """
        if not isinstance(self._commands, DirectCommands):
            self.set(key, data, ttl)
            return False
        px = ttl_to_px(ttl)
        check_data(key, data)
        with self._guards["SET"]:
            return self._commands.set_on(writer, key, data, px=px)

    def pttl(self, key: str) -> int | None:
        """Remaining lifetime in ms; :data:`NO_EXPIRY` (-1) without expiry; ``None`` if absent."""
        with self._guards["PTTL"]:
            reply = self._client.pttl(key)
        return pttl_from(reply)

    # -- batches -----------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for ``keys`` in the same order, ``None`` for each missing key (MGET per chunk)."""
        keys = key_list(keys)
        if not keys:
            return []
        with self._guards["MGET"]:
            if len(keys) <= self._batch_size:
                values: list[bytes | None] = self._commands.mget(keys)
                return values
            parts = self._run_chunks(self._commands.mget, chunked(keys, self._batch_size))
        return flatten(parts)

    def set_many(self, items: SetManyItems, ttl: float | None = None) -> None:
        """Store many entries with pipelined ``SET key data PX ms`` (no transaction), chunked.

        ``items`` is a mapping ``key -> bytes`` or an iterable of ``(key, bytes)``
        tuples using ``ttl``, or ``(key, bytes, ttl)`` tuples with their own TTL.
        Everything is validated before the first byte is sent. Chunks are not
        atomic: on failure some chunks may have been written.
        """
        entries = normalize_items(items, ttl)
        if not entries:
            return
        with self._guards["PIPELINE SET"]:
            if len(entries) <= self._batch_size:
                self._set_chunk(entries)
            else:
                self._run_chunks(self._set_chunk, chunked(entries, self._batch_size))

    def delete(self, *keys: str) -> int:
        """UNLINK ``keys`` (freed in the background by Redis); returns how many existed."""
        if not keys:
            return 0
        with self._guards["UNLINK"]:
            if len(keys) <= self._batch_size:
                count: int = self._client.unlink(*keys)
                return count
            counts = self._run_chunks(self._unlink_chunk, chunked(keys, self._batch_size))
        return sum(counts)

    def delete_pattern(self, pattern: str) -> int:
        """Delete every key matching the glob ``pattern`` with SCAN + batched UNLINK; returns the count.

        ``pattern`` must start with the namespace escaped by :func:`escape_glob`
        (``ValueError`` otherwise), so no call can reach another cache's keys.
        Not atomic: keys written during the scan may survive, and a failure
        midway leaves the keys already unlinked deleted.
        """
        self.check_pattern(pattern)
        batcher = UnlinkBatcher(self._batch_size)
        removed = cursor = 0
        with self._guards["SCAN+UNLINK"]:
            while True:
                arm(self._timeout)  # one deadline per round trip: a large namespace takes many
                cursor, found = self._client.scan(cursor, match=pattern, count=SCAN_COUNT)
                due = batcher.take(found, finished=cursor == 0)
                if due:
                    arm(self._timeout)
                    removed += self._client.unlink(*due)
                if cursor == 0:
                    return removed

    def scan_keys(self, pattern: str) -> list[str]:
        """Every key matching the glob ``pattern`` (SCAN, never KEYS), inside the namespace.

        For callers that must look at values before deciding what to delete;
        the same namespace check as :meth:`delete_pattern` applies.
        """
        self.check_pattern(pattern)
        keys: list[str] = []
        cursor = 0
        with self._guards["SCAN"]:
            while True:
                arm(self._timeout)
                cursor, found = self._client.scan(cursor, match=pattern, count=SCAN_COUNT)
                keys.extend(k.decode("utf-8", "surrogateescape") for k in found)
                if cursor == 0:
                    return keys

    # -- tags (see qcache.l2.tagging) ----------------------------------------

    def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """Write entries and their tag memberships in one pipeline round trip (no transaction)."""
        if isinstance(items, list) and len(items) == 1 and len(items[0]) == 3:
            # One entry (a tagged ``set``): one command, the script (see qcache.l2.tagging).
            key, data, ttl = items[0]
            keys, args = script_call(key, check_data(key, data), ttl_to_px(ttl), memberships, now_ms)
            with self._guards["SET+TAGS"]:
                self._run_set_tagged(keys, args)
            return
        entries = normalize_items(items, None)
        updates = tag_updates(memberships)
        with self._guards["SET+TAGS"], self._client.pipeline(transaction=False) as pipe:
            queue_tag_updates(pipe, updates, now_ms)
            for key, data, px in entries:
                pipe.set(key, data, px=px)
            pipe.execute()

    def set_tagged_quiet(
        self, key: str, data: bytes, ttl: float, memberships: Sequence[Membership], now_ms: int, writer: QuietWriter
    ) -> bool:
        """One tagged write, on ``writer`` (a cache's invalidation connection) when it is free: True if it went there.

        There it is a transaction (:func:`qcache.l2.direct.tagged_set_request`),
        which Redis does not report back to that connection, as it does a
        script. Otherwise, and from the first server that refuses the
        transaction as it is queued (before Redis 7.0, or an ACL without
        MULTI), it is :meth:`set_tagged`'s script on the pool. Failures are as
        :meth:`set_tagged`'s.
        """
        px = ttl_to_px(ttl)
        check_data(key, data)
        with self._guards["SET+TAGS"]:
            request, count = tagged_set_request(key, data, px, memberships, now_ms) if self._quiet_tags else ([], 0)
            if request:
                try:
                    if self._commands.transaction_on(writer, request, count):
                        return True
                except TransactionAborted as exc:
                    self._quiet_tags = False
                    logger.info("tagged writes go as a script from now on: the server refused a transaction (%s)",
                                exc)
                except TransactionCommandFailed:
                    # A command failed as it ran (a tag's key holding another type): unlike the script,
                    # which stops there, the transaction ran the SET too. Without its membership the
                    # entry would outlive its tag's invalidation: it goes.
                    self._client.delete(key)
                    raise
            self._run_set_tagged(*script_call(key, data, px, memberships, now_ms))
        return False

    def _run_set_tagged(self, keys: list[str], args: list[bytes | int]) -> None:
        """:data:`SET_TAGGED_SCRIPT` by its digest, loaded first on a server that does not have it."""
        try:
            self._commands.evalsha(self._set_tagged_sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or new server: load it once, then as before
            self._client.script_load(SET_TAGGED_SCRIPT)
            self._commands.evalsha(self._set_tagged_sha, len(keys), *keys, *args)

    def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]:
        """The storage keys written with any of ``tag_keys`` whose entries may still be alive."""
        if not tag_keys:
            return []
        with self._guards["TAG MEMBERS"], self._client.pipeline(transaction=False) as pipe:
            queue_member_reads(pipe, tag_keys, now_ms)
            replies = pipe.execute()
        return merge_members(replies)

    # -- server ------------------------------------------------------------

    def ping(self) -> float:
        """Round-trip time of a PING, in seconds."""
        with self._guards["PING"]:
            start = time.perf_counter()
            self._client.ping()
            return time.perf_counter() - start

    def server_info(self) -> ServerInfo:
        """Version and memory facts of the server (one INFO call)."""
        with self._guards["INFO"]:
            raw = self._client.info()
        return server_info_from(raw)

    def warm_up(self) -> int:
        """Open the configured number of pooled connections now; returns how many were opened."""
        if not self._warm_connections:
            return 0
        pool = self._client.connection_pool
        held: list[Any] = []
        with unjudged("CONNECT"):
            try:
                for _ in range(self._warm_connections):
                    arm(self._timeout)
                    held.append(pool.get_connection())
            finally:
                for connection in held:
                    pool.release(connection)
        return len(held)

    def close(self) -> None:
        """Stop the batch threads and, if the tier owns it, close the client and its pool. Idempotent."""
        if not self._mark_closed():
            return
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisTier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    def _set_chunk(self, entries: Sequence[Entry]) -> None:
        """One round trip of SET ... PX for a chunk; what was not acknowledged goes through redis-py."""
        set_direct = getattr(self._commands, "set_direct", None)  # a plain redis-py client has none
        missed = entries if set_direct is None else set_direct(entries)
        if missed:
            left = remaining()
            if left is not None and left <= 0:
                raise DeadlineExceeded("the L2 deadline (CACHE_L2_TIMEOUT_MS) passed before every entry was written")
            self._pipeline_set(missed)

    def _pipeline_set(self, entries: Sequence[Entry]) -> None:
        """redis-py's pipeline of SET ... PX: its redirects, retries and errors."""
        with self._client.pipeline(transaction=False) as pipe:
            for key, data, px in entries:
                pipe.set(key, data, px=px)
            pipe.execute()

    def _unlink_chunk(self, keys: Sequence[str]) -> int:
        """UNLINK one chunk of keys."""
        count: int = self._client.unlink(*keys)
        return count

    def _run_chunks(self, fn: Callable[[C], R], chunks: Iterable[C]) -> list[R]:
        """Run ``fn`` on every chunk, at most ``parallel_operations`` at once (this thread too); results in order.

        Waits for every chunk before raising the first error, so no write is
        still in flight once the caller sees the failure.
        """
        executor = self._get_executor()
        timeout = self._timeout

        def one(chunk: C) -> R:
            arm(timeout)  # each chunk is a round trip with its own deadline
            return fn(chunk)

        if executor is None:
            return [one(chunk) for chunk in chunks]
        pending = list(chunks)
        if not pending:
            return []
        first, *rest = pending
        try:
            # Each chunk in a fresh copy of this context: the pool's threads keep none between calls.
            futures = [executor.submit(contextvars.copy_context().run, one, chunk) for chunk in rest]
        except RuntimeError as exc:  # close() shut the pool down under us
            raise BackendError("the L2 tier is closed") from exc
        # The first chunk runs here while the pool runs the others: one hand-off fewer, and a
        # batch of two chunks takes one pool thread instead of two plus this waiting one.
        try:
            results = [one(first)]
        except BaseException:
            wait(futures)
            raise
        wait(futures)
        results += [future.result() for future in futures]
        return results

    def _get_executor(self) -> ThreadPoolExecutor | None:
        """The batch thread pool, created on first need; ``None`` when parallelism is 1."""
        if self._parallel == 1:
            return None
        executor = self._executor
        if executor is not None:
            return executor
        with self._executor_lock:
            if self._closed:
                raise BackendError("the L2 tier is closed")
            if self._executor is None:
                # The calling thread runs a chunk too (see _run_chunks): one worker fewer.
                self._executor = ThreadPoolExecutor(
                    max_workers=self._parallel - 1, thread_name_prefix="qcache-l2"
                )
            return self._executor
