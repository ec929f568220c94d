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
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Any

import redis

from qcache.l2.deadline import DeadlineSocket, remaining
from qcache.l2.replies import read_replies

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


def pack_set(parts: list[bytes], key: bytes, data: bytes, px: int) -> None:
    """Append ``SET key data PX px`` to ``parts``; a large value is appended as its own buffer, uncopied."""
    if len(data) < _COPY_BELOW:
        parts.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%d\r\n"
                     % (len(key), key, len(data), data, len(str(px)), px))
    else:
        parts.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(data)))
        parts.append(data)
        parts.append(b"\r\n$2\r\nPX\r\n$%d\r\n%d\r\n" % (len(str(px)), px))


def _retried_by_redis_py(connection: Any, exc: BaseException) -> bool:
    """Whether redis-py would retry after ``exc`` on ``connection`` (its ``Retry``), with deadline time left.

    The direct attempt is then the first of redis-py's attempts: the call is
    made again through redis-py, as its own retry would have. With retries
    off (``REDIS_MAX_RETRIES=0``, or a timeout with ``REDIS_RETRY_ON_TIMEOUT``
    false), a write that timed out is never sent twice.
    """
    left = remaining()
    if left is not None and left <= 0:
        return False
    retry = getattr(connection, "retry", None)
    if retry is None or retry.get_retries() == 0:
        return False
    return isinstance(exc, tuple(getattr(retry, "_supported_errors", ())))


def _only(replies: list[Any]) -> Any:
    """The one reply of a one-command request; an error reply is raised, as redis-py raises it."""
    reply = replies[0]
    if isinstance(reply, Exception):
        raise reply
    return reply


def direct_commands(client: Any) -> DirectCommands | None:
    """:class:`DirectCommands` for ``client`` when it is the plain kind they reproduce exactly, else None.

    That is a ``redis.Redis`` on redis-py's own (blocking) pool of TCP, TLS or
    unix-socket connections that encode keys as strict UTF-8: a Sentinel pool
    (which turns READONLY into a reconnect), another connection class (which
    may override how replies are read) or another key encoding keep
    redis-py's path, so every command of a tier names a key the same way.
    """
    if not isinstance(client, redis.Redis):
        return None
    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return None
    connection_class = pool.connection_class
    plain = (redis.Connection, redis.SSLConnection, redis.UnixDomainSocketConnection)
    if not (connection_class in plain or (issubclass(connection_class, DeadlineSocket)
                                          and connection_class.__bases__[1:] in [(c,) for c in plain])):
        return None
    kwargs = pool.connection_kwargs
    if kwargs.get("decode_responses") or kwargs.get("encoding_errors", "strict") != "strict":
        return None
    if codecs.lookup(kwargs.get("encoding", "utf-8")).name != "utf-8":
        return None
    return DirectCommands(client)


class DirectCommands:
    """GET, MGET, SET, batches of SETs and EVALSHA on a standalone ``redis.Redis``, written to its pool directly.

    Build it with :func:`direct_commands`, which checks that the client is one
    these commands reproduce exactly.
    """

    __slots__ = ("_client", "_pool")

    def __init__(self, client: redis.Redis) -> None:
        self._client: Any = client  # redis-py's typing differs across versions
        self._pool: Any = client.connection_pool

    def _run(self, request: list[bytes] | None, count: int, args: tuple[Any, ...] = ()) -> list[Any] | None:
        """The ``count`` replies to ``request`` (or to ``args`` packed by the connection), or None when
        redis-py must make the call instead (see :func:`_retried_by_redis_py`).

        A failure to get a connection is raised: redis-py's call would meet
        the same pool and the same connect, with the same retries.
        """
        pool = self._pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(request if request is not None else connection.pack_command(*args))
            replies: list[Any] = []
            read_replies(connection, count, replies)
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()  # replies may still be on their way: nobody else may read them
            if _retried_by_redis_py(connection, exc):
                return None
            raise
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return replies

    def get(self, key: str) -> bytes | None:
        if type(key) is not str or not key.isascii():
            value: bytes | None = self._client.get(key)  # other keys: redis-py encodes and checks them
            return value
        replies = self._run([pack_get(key.encode())], 1)
        value = self._client.get(key) if replies is None else _only(replies)
        return value

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        try:
            request = [pack_mget_text(keys)]
        except (UnicodeEncodeError, TypeError, AttributeError):  # not all str: redis-py encodes and checks them
            values: list[bytes | None] = self._client.mget(keys)
            return values
        replies = self._run(request, 1)
        values = self._client.mget(keys) if replies is None else _only(replies)
        return values

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        """``EVALSHA``, its arguments packed by the connection as redis-py packs them; NOSCRIPT is raised."""
        replies = self._run(None, 1, ("EVALSHA", sha, numkeys, *args))
        return self._client.evalsha(sha, numkeys, *args) if replies is None else _only(replies)

    def set(self, key: str, data: bytes, *, px: int) -> None:
        if type(key) is not str or not key.isascii() or type(data) is not bytes:
            self._client.set(key, data, px=px)
            return
        request: list[bytes] = []
        pack_set(request, key.encode(), data, px)
        replies = self._run(request, 1)
        if replies is None:
            self._client.set(key, data, px=px)
        else:
            _only(replies)

    def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` in one round trip; the ones not acknowledged (all of them on a broken connection)."""
        parts: list[bytes] = []
        for key, data, px in entries:
            if type(key) is not str or not key.isascii() or type(data) is not bytes:
                return list(entries)  # redis-py's pipeline encodes and checks them
            pack_set(parts, key.encode(), data, px)
        replies = self._run([b"".join(parts)] if len(parts) == len(entries) else parts, len(entries))
        if replies is None:
            return list(entries)
        # An error reply (OOM...) is a whole reply: the others were written. redis-py's pipeline
        # resends the refused ones, and raises what Redis refuses again.
        return [entry for entry, reply in zip(entries, replies, strict=True) if isinstance(reply, Exception)]
