"""The hot commands (GET, MGET, SET PX, a batch of SETs) written straight onto a pooled connection.

Why: redis-py's command path (``execute_command``, the retry wrapper, argument
encoding, response callbacks, ``read_response``) costs several microseconds of
Python per call, more than decoding a small value; on the cache's hot paths
that is most of the gap to a hand-written call. Here a command is packed in
one formatting step, sent on a connection of the client's own pool and its
replies read in one pass (:mod:`qcache.l2.replies`): the same connections,
the same deadline, the same replies.

Failures are left to redis-py: when the direct attempt fails on the
connection (reset, timed out), it is dropped, and if redis-py's ``Retry``
would retry that error, the call is made again through redis-py, the direct
attempt standing for its first (the deadline of :mod:`qcache.l2.deadline`
still bounds it; once it has passed, the error is raised at once). With
retries off, a write that timed out is never sent twice. A failure to get a
connection is raised as it is: redis-py would meet the same pool and connect.
An error reply (a wrong type, OOM) is raised as redis-py raises it. Only
clients these commands reproduce exactly get them (:func:`direct_commands`),
and keys that are not ASCII text go through redis-py, so every command of a
tier names a key as redis-py does. The cluster tiers have their own direct paths,
by primary (:mod:`qcache.l2.node_batches`, :mod:`qcache.l2.node_writes`).

:class:`DirectCommands` (sync) and :class:`AsyncDirectCommands` (asyncio)
share everything that is not I/O: the requests (:func:`get_request` and the
others), what the replies mean (:func:`only_reply`, :func:`unacknowledged`)
and when a failed attempt goes to redis-py (:meth:`_Direct._falls_back`);
they differ only in awaiting the connection, the pool and the client. For
asyncio the deadline is the tier's ``asyncio.timeout``: its cancellation is
never taken for a connection failure, and no fallback starts once the task
is being cancelled.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Sequence
from typing import Any, Protocol

import redis
import redis.asyncio as aredis

from qcache.l2.batching import Entry
from qcache.l2.deadline import DeadlineSocket, being_cancelled, remaining
from qcache.l2.replies import read_replies, read_replies_async
from qcache.l2.tagging import GRACE_MS, Membership


class QuietWriter(Protocol):
    """A connection taking a request when free (:meth:`qcache.l2.tracking.TrackingListener.write`)."""

    def write(self, request: list[bytes], count: int = 1) -> list[Any] | None: ...


class TransactionAborted(redis.ResponseError):
    """Redis refused a transaction: the caller makes the same change another way.

    A command refused as it was queued (PEXPIRE NX or GT before Redis 7.0)
    aborts it: nothing applied. A MULTI refused (an ACL without it) leaves
    each command to run on its own: all of them ran without an error.
    """


class TransactionCommandFailed(redis.ResponseError):
    """A command of a transaction failed as it ran (a wrong type); Redis ran the others, before and after it.

    Also a command that failed on its own after a refused MULTI.
    """


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


def _pack_mget_text(keys: Sequence[str]) -> bytes:
    """``MGET`` of text keys (UTF-8, strict: UnicodeEncodeError otherwise)."""
    return pack_mget([key.encode() for key in keys])


try:  # hiredis packs a command in C, 2-3x faster than the formatting above for an MGET of 100 keys
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - without the fast extra
    pack_mget_text = _pack_mget_text
else:

    def pack_mget_text(keys: Sequence[str]) -> bytes:
        """``MGET`` of text keys (UTF-8, strict: UnicodeEncodeError otherwise), packed by hiredis."""
        packed: bytes = _hiredis_pack(("MGET", *keys))  # type: ignore[arg-type]  # its stub types a 1-tuple
        return packed


def pack_args(args: tuple[Any, ...]) -> list[bytes] | None:
    """A command of text, bytes and int arguments packed by hiredis as redis-py packs it; None without hiredis
    or for other arguments (the connection then packs them, as redis-py does)."""
    if pack_mget_text is _pack_mget_text or not all(type(arg) in (str, bytes, int) for arg in args):
        return None
    try:
        packed: bytes = _hiredis_pack(args)
    except UnicodeEncodeError:
        return None
    return [packed]


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


def _plain(key: object) -> bool:
    """Whether the direct path takes ``key``: ASCII text (anything else: redis-py encodes and checks it)."""
    return type(key) is str and key.isascii()


def get_request(key: str) -> list[bytes]:
    """The request of ``GET key``; empty when redis-py must encode the key."""
    return [pack_get(key.encode())] if _plain(key) else []


def mget_request(keys: Sequence[str]) -> list[bytes]:
    """The request of ``MGET keys`` (text keys, strict UTF-8); empty when redis-py must encode them."""
    try:
        return [pack_mget_text(keys)]
    except (UnicodeEncodeError, TypeError, AttributeError):
        return []


def set_request(key: str, data: bytes, px: int) -> list[bytes]:
    """The request of ``SET key data PX px``; empty when redis-py must encode them."""
    if not _plain(key) or type(data) is not bytes:
        return []
    request: list[bytes] = []
    pack_set(request, key.encode(), data, px)
    return request


def batch_request(entries: Sequence[Entry]) -> list[bytes]:
    """One request of a ``SET ... PX`` per entry; empty when redis-py must encode any of them."""
    parts: list[bytes] = []
    for key, data, px in entries:
        if not _plain(key) or type(data) is not bytes:
            return []
        pack_set(parts, key.encode(), data, px)
    return [b"".join(parts)] if len(parts) == len(entries) else parts  # large values stay uncopied


#: The four commands of one tag in a tagged write (:func:`qcache.l2.tagging.tag_commands`) as one format:
#: the tag key's bulk string four times, with the score and member, the pruning bound and the expiry twice.
_TAG_COMMANDS = (
    b"*4\r\n$4\r\nZADD\r\n%s%s"
    b"*4\r\n$16\r\nZREMRANGEBYSCORE\r\n%s$4\r\n-inf\r\n%s"
    b"*4\r\n$7\r\nPEXPIRE\r\n%s%s$2\r\nNX\r\n"
    b"*4\r\n$7\r\nPEXPIRE\r\n%s%s$2\r\nGT\r\n"
)


def tagged_set_request(
    key: str, data: bytes, px: int, memberships: Sequence[Membership], now_ms: int
) -> tuple[list[bytes], int]:
    """One tagged write of ``key`` as a transaction, and how many replies it gets; empty for a key redis-py must encode.

    MULTI, :func:`qcache.l2.tagging.tag_commands` of each tag, ``SET key
    data PX px`` and EXEC: what :data:`qcache.l2.tagging.SET_TAGGED_SCRIPT`
    does, for a connection whose own writes Redis must not report back to it
    (Redis reports a script's writes even to the ``NOLOOP`` tracking
    connection that ran it, a transaction's not: see :mod:`qcache.l2.tracking`).
    Needs Redis 7.0 (PEXPIRE NX and GT). Written out here rather than packed
    command by command: a third of the packing's cost.
    """
    if not _plain(key) or type(data) is not bytes:
        return [], 0
    try:
        tags = [_bulk(tag_key.encode()) for tag_key in dict.fromkeys(m.tag_key for m in memberships)]
    except UnicodeEncodeError:
        return [], 0
    expires_at_ms = max(m.expires_at_ms for m in memberships)
    member = key.encode()
    scored = _bulk(b"%d" % expires_at_ms) + _bulk(member)
    bound = _bulk(b"(%d" % (now_ms - GRACE_MS))
    keep = _bulk(b"%d" % max(1, expires_at_ms + GRACE_MS - now_ms))  # relative: the server's clock may differ
    parts = [b"*1\r\n$5\r\nMULTI\r\n"]
    parts += [_TAG_COMMANDS % (tag, scored, tag, bound, tag, keep, tag, keep) for tag in tags]
    written: list[bytes] = []
    pack_set(written, member, data, px)
    written[-1] += b"*1\r\n$4\r\nEXEC\r\n"
    # As few buffers as a connection sends (each on its own): one, or three around a long value, uncopied.
    return [b"".join(parts + written[:1]), *written[1:]], 3 + 4 * len(tags)


def check_transaction(replies: list[Any]) -> None:
    """Raise what a transaction's replies (MULTI's, one a queued command, EXEC's) say went wrong.

    A command refused as it was queued aborts the whole transaction:
    :class:`TransactionAborted`, naming the refusal. An EXEC refused as a
    whole (out of memory) is raised as redis-py raises it: nothing was
    applied either. A command that failed as it ran is
    :class:`TransactionCommandFailed`: unlike a script, which stops at its
    first error, the transaction ran every other command. A refused MULTI
    ran each command on its own: :class:`TransactionCommandFailed` if one
    of them failed, else :class:`TransactionAborted`.
    """
    if isinstance(replies[0], Exception):  # MULTI refused: each command ran on its own, then EXEC failed
        for reply in replies[1:-1]:
            if isinstance(reply, Exception):
                raise TransactionCommandFailed(str(reply)) from reply
        raise TransactionAborted(str(replies[0])) from replies[0]
    for reply in replies[1:-1]:
        if isinstance(reply, Exception):
            raise TransactionAborted(str(reply)) from reply
    result = replies[-1]
    if isinstance(result, Exception):
        raise result
    if not isinstance(result, list):  # EXEC of a transaction that was not aborted is an array
        raise redis.ResponseError(f"EXEC returned {type(result).__name__}, not the replies")
    for reply in result:
        if isinstance(reply, Exception):
            raise TransactionCommandFailed(str(reply)) from reply


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


def _reproducible(client: Any, pools: tuple[type[Any], ...], plain: tuple[type[Any], ...]) -> bool:
    """Whether ``client`` is on one of redis-py's own ``pools`` of ``plain`` connections, with strict UTF-8 keys.

    A Sentinel pool (which turns READONLY into a reconnect), a connection class
    of one's own (which may read replies its own way) or another key encoding
    keep redis-py's path. The sync tier's connections are ``plain`` ones with
    :class:`DeadlineSocket` in front.
    """
    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) not in pools:
        return False
    connection_class = pool.connection_class
    if issubclass(connection_class, DeadlineSocket):
        connection_class = connection_class.__bases__[-1]
    if connection_class not in plain:
        return False
    kwargs = pool.connection_kwargs
    if kwargs.get("decode_responses") or kwargs.get("encoding_errors", "strict") != "strict":
        return False
    return codecs.lookup(kwargs.get("encoding", "utf-8")).name == "utf-8"


def direct_commands(client: Any) -> DirectCommands | None:
    """:class:`DirectCommands` for a sync ``client`` they reproduce exactly (see :func:`_reproducible`), else None."""
    if isinstance(client, redis.Redis) and _reproducible(
        client, (redis.ConnectionPool, redis.BlockingConnectionPool),
        (redis.Connection, redis.SSLConnection, redis.UnixDomainSocketConnection),
    ):
        return DirectCommands(client)
    return None


def async_direct_commands(client: Any, deadline: float | None) -> AsyncDirectCommands | None:
    """:class:`AsyncDirectCommands` for an asyncio ``client`` they reproduce exactly, else None."""
    if isinstance(client, aredis.Redis) and _reproducible(
        client, (aredis.ConnectionPool, aredis.BlockingConnectionPool),
        (aredis.Connection, aredis.SSLConnection, aredis.UnixDomainSocketConnection),
    ):
        return AsyncDirectCommands(client, deadline)
    return None


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

    def _falls_back(self, connection: Any, exc: BaseException) -> bool:
        """Whether redis-py makes the call again after ``exc`` on ``connection``: its ``Retry`` would
        retry that error, and the deadline is not spent. Otherwise ``exc`` stands."""
        if self._deadline_spent():
            return False
        retry = getattr(connection, "retry", None)
        if retry is None or retry.get_retries() == 0:
            return False
        return isinstance(exc, tuple(getattr(retry, "_supported_errors", ())))


class DirectCommands(_Direct):
    """GET, MGET, SET, batches of SETs and EVALSHA on a standalone ``redis.Redis``, written to its pool directly.

    Build it with :func:`direct_commands`, which checks the client is one these commands reproduce exactly.
    """

    __slots__ = ()

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)

    def _run(self, request: list[bytes] | None, count: int, args: tuple[Any, ...] = ()) -> list[Any] | None:
        """The ``count`` replies to ``request`` (or to ``args``, packed by the connection as redis-py
        packs them), or None when redis-py must make the call instead (see :meth:`_falls_back`)."""
        pool = self._pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(request if request is not None else connection.pack_command(*args))
            replies: list[Any] = []
            read_replies(connection, count, replies)
        except _FAILURES as exc:
            connection.disconnect()  # replies may still be on their way: nobody else may read them
            if self._falls_back(connection, exc):
                return None
            raise
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

    def set_on(self, writer: QuietWriter, key: str, data: bytes, *, px: int) -> bool:
        """``SET`` on ``writer``'s connection when it takes it (True), else as :meth:`set` (False).

        A failure there is as on a pooled connection: redis-py makes the call
        again when its ``Retry`` would retry that error (the attempt standing
        for the first), otherwise it is raised.
        """
        request = set_request(key, data, px)
        if request:
            try:
                replies = writer.write(request)
            except _FAILURES as exc:
                if not self._retried(exc):
                    raise
            else:
                if replies is not None:
                    only_reply(replies)
                    return True
        self.set(key, data, px=px)
        return False

    def transaction_on(self, writer: QuietWriter, request: list[bytes], count: int) -> bool:
        """A transaction (MULTI ... EXEC, ``count`` replies) on ``writer``'s connection when it takes it (True).

        False when it is busy (nothing sent), or when a failure there would
        be retried by a pooled connection's ``Retry`` (whether the
        transaction ran is unknown; the caller makes the same change on the
        pool). Other failures and error replies are raised (see
        :func:`check_transaction`).
        """
        try:
            replies = writer.write(request, count)
        except _FAILURES as exc:
            if not self._retried(exc):
                raise
            return False
        if replies is None:
            return False
        check_transaction(replies)
        return True

    def _retried(self, exc: BaseException) -> bool:
        """Whether a pooled connection's ``Retry`` would retry ``exc`` (see :meth:`_falls_back`)."""
        pool = self._pool
        try:
            connection = pool.get_connection()
        except _FAILURES:
            return False
        try:
            return self._falls_back(connection, exc)
        finally:
            pool.release(connection)

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        """``EVALSHA``, its arguments packed by the connection as redis-py packs them; NOSCRIPT is raised."""
        command = ("EVALSHA", sha, numkeys, *args)
        replies = self._run(pack_args(command), 1, command)
        return self._client.evalsha(sha, numkeys, *args) if replies is None else only_reply(replies)


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

    _deadline_spent = staticmethod(being_cancelled)

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
        connection = await pool.get_connection()
        try:
            replies = await self._exchange(connection, request, count)
        except _FAILURES as exc:
            await connection.disconnect(nowait=True)  # replies may still be on their way
            if self._falls_back(connection, exc):
                return None
            raise
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
