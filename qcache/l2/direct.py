"""The hot commands (GET, MGET, SET PX, a batch of SETs) written straight onto a pooled connection.

Why: redis-py's command path (``execute_command``, the retry wrapper, argument
encoding, response callbacks, ``read_response``) costs several microseconds of
Python per call, more than decoding a small value; on the cache's hot paths
that is most of the gap to a hand-written call. Here a command is packed in
one formatting step, sent on a connection of the client's own pool and its
replies read in one pass (:mod:`qcache.l2.replies`): the same connections,
the same deadline, the same replies.

Failures are left to redis-py: when the direct attempt fails on the
connection (refused, reset, timed out), it is dropped and the call is made
again through redis-py, whose ``Retry`` reconnects and retries as configured
(the deadline of :mod:`qcache.l2.deadline` still bounds it; once it has
passed, the error is raised at once). An error reply (a wrong type, OOM) is
raised as redis-py raises it. The cluster tiers have their own direct paths,
by primary (:mod:`qcache.l2.node_batches`, :mod:`qcache.l2.node_writes`).

:class:`DirectCommands` (sync) and :class:`AsyncDirectCommands` (asyncio)
share everything that is not I/O: the requests (:func:`get_request` and the
others), what the replies mean (:func:`only_reply`, :func:`unacknowledged`)
and when a failed attempt goes to redis-py (:meth:`_Direct._fall_back`);
they differ only in awaiting the connection, the pool and the client. For
asyncio the deadline is the tier's ``asyncio.timeout``: its cancellation is
never taken for a connection failure, and no fallback starts once the task
is being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aredis

from qcache.l2.deadline import remaining
from qcache.l2.replies import read_replies, read_replies_async

Entry = tuple[str, bytes, int]  # key, data, PX milliseconds

#: Values at least this long are sent as their own buffer instead of copied into the command.
_COPY_BELOW = 16 * 1024


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack_get(key: bytes) -> bytes:
    """``GET key`` in the RESP wire format."""
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)


def pack_mget(keys: Sequence[bytes]) -> bytes:
    """``MGET k1 k2 ...`` in the RESP wire format."""
    return b"".join([b"*%d\r\n$4\r\nMGET\r\n" % (len(keys) + 1), *[_bulk(key) for key in keys]])


def pack_set(parts: list[bytes], key: bytes, data: bytes, px: int) -> None:
    """Append ``SET key data PX px`` to ``parts``; a large value is appended as its own buffer, uncopied."""
    if len(data) < _COPY_BELOW:
        parts.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%d\r\n"
                     % (len(key), key, len(data), data, len(str(px)), px))
    else:
        parts.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(data)))
        parts.append(data)
        parts.append(b"\r\n$2\r\nPX\r\n$%d\r\n%d\r\n" % (len(str(px)), px))


#: What a failed attempt on the connection raises (redis-py's errors, socket errors, a socket timeout).
_FAILURES = (redis.RedisError, OSError)


def get_request(key: str) -> list[bytes]:
    """The request of ``GET key``; empty when the key cannot be encoded (redis-py then says why)."""
    try:
        return [pack_get(key.encode())]
    except UnicodeEncodeError:
        return []


def mget_request(keys: Sequence[str]) -> list[bytes]:
    """The request of ``MGET keys``; empty when a key cannot be encoded."""
    try:
        return [pack_mget([key.encode() for key in keys])]
    except UnicodeEncodeError:
        return []


def set_request(key: str, data: bytes, px: int) -> list[bytes]:
    """The request of ``SET key data PX px``; empty when the key cannot be encoded."""
    request: list[bytes] = []
    try:
        pack_set(request, key.encode(), data, px)
    except UnicodeEncodeError:
        return []
    return request


def batch_request(entries: Sequence[Entry]) -> list[bytes]:
    """One request of a ``SET ... PX`` per entry; empty when a key cannot be encoded."""
    parts: list[bytes] = []
    try:
        for key, data, px in entries:
            pack_set(parts, key.encode(), data, px)
    except UnicodeEncodeError:
        return []
    return [b"".join(parts)] if len(parts) == len(entries) else parts  # large values stay uncopied


def only_reply(replies: list[Any]) -> Any:
    """The one reply of a one-command request; an error reply is raised, as redis-py raises it."""
    reply = replies[0]
    if isinstance(reply, Exception):
        raise reply
    return reply


def unacknowledged(entries: Sequence[Entry], replies: list[Any] | None) -> list[Entry]:
    """The entries a batch did not write: all of them without replies, else those refused.

    An error reply (OOM...) is a whole reply: the others were written. redis-py's
    pipeline resends the refused ones, and raises what Redis refuses again.
    """
    if replies is None:
        return list(entries)
    return [entry for entry, reply in zip(entries, replies, strict=True) if isinstance(reply, Exception)]


class _Direct:
    """What both flavours hold and decide: the client, its pool, and whether a failed attempt falls back."""

    __slots__ = ("_client", "_pool")

    def __init__(self, client: Any) -> None:
        self._client: Any = client  # redis-py's typing differs across versions and flavours
        self._pool: Any = client.connection_pool

    @staticmethod
    def _deadline_spent() -> bool:
        """Whether the call's deadline has passed (sync: the armed deadline of :mod:`qcache.l2.deadline`)."""
        left = remaining()
        return left is not None and left <= 0

    def _fall_back(self, exc: BaseException) -> None:
        """Let redis-py make the call (with its retries), unless the deadline is spent: then ``exc`` stands."""
        if self._deadline_spent():
            raise exc


class DirectCommands(_Direct):
    """GET, MGET, SET and batches of SETs on a standalone ``redis.Redis``, written to its pool directly."""

    __slots__ = ()

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)

    def _run(self, request: list[bytes], count: int) -> list[Any] | None:
        """The ``count`` replies to ``request``, or None when redis-py must make the call instead."""
        pool = self._pool
        try:
            connection = pool.get_connection()
        except _FAILURES as exc:
            self._fall_back(exc)
            return None
        try:
            connection.send_packed_command(request)
            replies: list[Any] = []
            read_replies(connection, count, replies)
        except _FAILURES as exc:
            connection.disconnect()  # replies may still be on their way: nobody else may read them
            self._fall_back(exc)
            return None
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return replies

    def get(self, key: str) -> bytes | None:
        request = get_request(key)
        replies = self._run(request, 1) if request else None
        value: bytes | None = self._client.get(key) if replies is None else only_reply(replies)
        return value

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        request = mget_request(keys)
        replies = self._run(request, 1) if request else None
        values: list[bytes | None] = self._client.mget(keys) if replies is None else only_reply(replies)
        return values

    def set(self, key: str, data: bytes, *, px: int) -> None:
        request = set_request(key, data, px)
        replies = self._run(request, 1) if request else None
        if replies is None:
            self._client.set(key, data, px=px)
        else:
            only_reply(replies)

    def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` in one round trip; the ones not acknowledged (all of them on a broken connection)."""
        request = batch_request(entries)
        return unacknowledged(entries, self._run(request, len(entries)) if request else None)


async def _send(connection: Any, request: list[bytes]) -> None:
    """``send_packed_command`` on a connection the pool connected, without its ``asyncio.wait_for``.

    That ``wait_for`` runs the write as a task of its own (an event-loop turn
    more per command); here the caller's timeout bounds the write instead.
    """
    send = getattr(connection, "_send_packed_command", None)  # a redis-py internal
    if send is None:
        await connection.send_packed_command(request)
        return
    if connection.health_check_interval:
        await connection.check_health()
    await send(request)


class AsyncDirectCommands(_Direct):
    """:class:`DirectCommands` on a standalone ``redis.asyncio.Redis``, under the tier's ``asyncio.timeout``.

    ``deadline`` is the tier's timeout: a socket timeout shorter than it bounds
    each attempt too (a timed-out read then falls back to redis-py's retries,
    as with the sync connections); otherwise the tier's timeout alone does.
    """

    __slots__ = ("_bound",)

    def __init__(self, client: aredis.Redis, deadline: float | None) -> None:
        super().__init__(client)
        socket_timeout = self._pool.connection_kwargs.get("socket_timeout")
        self._bound: float | None = (
            socket_timeout if socket_timeout and (deadline is None or socket_timeout < deadline) else None
        )

    @staticmethod
    def _deadline_spent() -> bool:
        """Whether the task is being cancelled (by the tier's ``asyncio.timeout``, or its caller)."""
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    async def _exchange(self, connection: Any, request: list[bytes], count: int) -> list[Any]:
        replies: list[Any] = []
        if self._bound is None:
            await _send(connection, request)
            await read_replies_async(connection, count, replies)
        else:
            async with asyncio.timeout(self._bound):  # expiring raises TimeoutError (an OSError): a failure
                await _send(connection, request)
                await read_replies_async(connection, count, replies)
        return replies

    async def _run(self, request: list[bytes], count: int) -> list[Any] | None:
        """The ``count`` replies to ``request``, or None when redis-py must make the call instead."""
        pool = self._pool
        try:
            connection = await pool.get_connection()
        except _FAILURES as exc:
            self._fall_back(exc)
            return None
        try:
            replies = await self._exchange(connection, request, count)
        except _FAILURES as exc:
            await connection.disconnect(nowait=True)  # replies may still be on their way
            self._fall_back(exc)
            return None
        except BaseException:
            # Cancelled (the deadline): disconnected before the release, so no half-read connection is handed on.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)
        return replies

    async def get(self, key: str) -> bytes | None:
        request = get_request(key)
        replies = await self._run(request, 1) if request else None
        value: bytes | None = await self._client.get(key) if replies is None else only_reply(replies)
        return value

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        request = mget_request(keys)
        replies = await self._run(request, 1) if request else None
        values: list[bytes | None] = await self._client.mget(keys) if replies is None else only_reply(replies)
        return values

    async def set(self, key: str, data: bytes, *, px: int) -> None:
        request = set_request(key, data, px)
        replies = await self._run(request, 1) if request else None
        if replies is None:
            await self._client.set(key, data, px=px)
        else:
            only_reply(replies)

    async def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` in one round trip; the ones not acknowledged (all of them on a broken connection)."""
        request = batch_request(entries)
        return unacknowledged(entries, await self._run(request, len(entries)) if request else None)
