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

from collections.abc import Sequence
from typing import Any

import redis

from qcache.l2.deadline import remaining
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


def _fall_back(exc: BaseException) -> None:
    """Let redis-py make the call (with its retries), unless the deadline is spent: then ``exc`` stands."""
    left = remaining()
    if left is not None and left <= 0:
        raise exc


def _only(replies: list[Any]) -> Any:
    """The one reply of a one-command request; an error reply is raised, as redis-py raises it."""
    reply = replies[0]
    if isinstance(reply, Exception):
        raise reply
    return reply


class DirectCommands:
    """GET, MGET, SET and batches of SETs on a standalone ``redis.Redis``, written to its pool directly."""

    __slots__ = ("_client", "_pool")

    def __init__(self, client: redis.Redis) -> None:
        self._client: Any = client  # redis-py's typing differs across versions
        self._pool: Any = client.connection_pool

    def _run(self, request: list[bytes], count: int) -> list[Any] | None:
        """The ``count`` replies to ``request``, or None when redis-py must make the call instead."""
        pool = self._pool
        try:
            connection = pool.get_connection()
        except (redis.RedisError, OSError) as exc:
            _fall_back(exc)
            return None
        try:
            connection.send_packed_command(request)
            replies: list[Any] = []
            read_replies(connection, count, replies)
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()  # replies may still be on their way: nobody else may read them
            _fall_back(exc)
            return None
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return replies

    def get(self, key: str) -> bytes | None:
        try:
            request = [pack_get(key.encode())]
        except UnicodeEncodeError:
            request = []  # redis-py says why
        replies = self._run(request, 1) if request else None
        value: bytes | None = self._client.get(key) if replies is None else _only(replies)
        return value

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        try:
            request = [pack_mget_text(keys)]
        except UnicodeEncodeError:
            request = []
        replies = self._run(request, 1) if request else None
        values: list[bytes | None] = self._client.mget(keys) if replies is None else _only(replies)
        return values

    def set(self, key: str, data: bytes, *, px: int) -> None:
        request: list[bytes] = []
        try:
            pack_set(request, key.encode(), data, px)
        except UnicodeEncodeError:
            request = []
        replies = self._run(request, 1) if request else None
        if replies is None:
            self._client.set(key, data, px=px)
        else:
            _only(replies)

    def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` in one round trip; the ones not acknowledged (all of them on a broken connection)."""
        parts: list[bytes] = []
        try:
            for key, data, px in entries:
                pack_set(parts, key.encode(), data, px)
        except UnicodeEncodeError:
            return list(entries)
        replies = self._run([b"".join(parts)] if len(parts) == len(entries) else parts, len(entries))
        if replies is None:
            return list(entries)
        # An error reply (OOM...) is a whole reply: the others were written. redis-py's pipeline
        # resends the refused ones, and raises what Redis refuses again.
        return [entry for entry, reply in zip(entries, replies, strict=True) if isinstance(reply, Exception)]
