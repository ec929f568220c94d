"""Many replies off one connection in one pass, straight from redis-py's hiredis reader.

Why: a batch on a Redis Cluster is a GET per key (spread keys have a slot
each, and an MGET may not cross slots), so one primary answers a batch of
100 with dozens of replies. redis-py's ``read_response`` spends about 2 us
of Python around each reply (and the deadline's socket check another 1 us)
against a fraction of that for hiredis to parse it: the replies cost more
than the round trip. Where the connection parses with hiredis,
:func:`read_replies` takes them from the parser's ``hiredis.Reader`` in one
loop and reads the socket only when the reader runs dry, each read bounded
by the L2 deadline; any other connection (redis-py's pure-Python parser) is
read reply by reply with ``read_response``. Both give the same replies: an
error reply is kept in place as its exception (as redis-py raises it), a
RESP3 push frame goes to the parser's own handler, and a broken or
timed-out connection raises, with the replies read so far already in
``into``.

The parsing (:func:`_parse`) is sans-IO, shared by the sync and asyncio
readers, which differ only in how they wait for bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from qcache.l2.deadline import read_timeout

try:  # the parser class and sentinel are redis-py internals: without them, every read is read_response
    from redis._parsers.hiredis import _AsyncHiredisParser, _HiredisParser
except ImportError:  # pragma: no cover - redis-py without hiredis support
    _HiredisParser = _AsyncHiredisParser = None  # type: ignore[assignment,misc]
try:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - redis-py before the sentinel: hiredis' own False (never a RESP2 reply)
    _NOT_ENOUGH_DATA = False


def _fast_parser(connection: Any, parser_class: type[Any] | None) -> Any:
    """The connection's hiredis parser when replies can be taken from its reader directly, else None.

    Under RESP3 the server may interleave push frames (invalidations, maintenance notices) with
    replies; the parser then names their type, and they go to its own handler as redis-py does.
    """
    parser = getattr(connection, "_parser", None)
    if (
        parser_class is None
        or type(parser) is not parser_class
        or getattr(parser, "_reader", None) is None
        or getattr(parser, "_connected", True) is False  # the asyncio parser, after a disconnect
    ):
        return None
    if str(getattr(connection, "protocol", 2) or 2) != "2" and not (
        # hiredis before 3.2 has no push type: push frames would read as replies (as in redis-py)
        getattr(parser, "_hiredis_PushNotificationType", None) is not None
        and hasattr(parser, "handle_push_response")
    ):
        return None
    return parser


def _parse(reader: Any, push_type: type[Any] | None, count: int, into: list[Any]) -> Iterator[Any]:
    """Append ``count`` replies from ``reader`` to ``into``.

    Yields ``None`` whenever the reader needs more bytes fed, and each push
    frame (of ``push_type``) met between replies, for the caller's handler.
    """
    gets = reader.gets
    append = into.append
    done = 0
    while done < count:
        reply = gets()
        while reply is _NOT_ENOUGH_DATA:
            yield None
            reply = gets()
        if push_type is not None and isinstance(reply, push_type):
            yield reply
            continue
        if isinstance(reply, redis.ConnectionError):  # as redis-py's parsers: e.g. LOADING, a server going away
            raise reply
        if type(reply) is list and reply and isinstance(reply[0], redis.ConnectionError):  # likewise
            raise reply[0]
        append(reply)
        done += 1


def read_replies(connection: Any, count: int, into: list[Any]) -> None:
    """Read ``count`` replies from a sync connection into ``into`` (see the module's docstring)."""
    parser = _fast_parser(connection, _HiredisParser)
    if parser is None:
        for _ in range(count):
            try:
                into.append(connection.read_response())
            except redis.ResponseError as exc:
                into.append(exc)
        return
    for push in _parse(parser._reader, getattr(parser, "_hiredis_PushNotificationType", None), count, into):
        if push is not None:
            parser.handle_push_response(push)
            continue
        # As DeadlineSocket does per reply: the socket waits no longer than the deadline allows.
        sock = connection._sock
        wanted = read_timeout(connection.socket_timeout, sock.gettimeout() if sock is not None else None)
        if wanted is None:
            parser.read_from_socket()
        else:
            parser.read_from_socket(timeout=wanted)


async def read_replies_async(connection: Any, count: int, into: list[Any]) -> None:
    """Read ``count`` replies from an asyncio connection into ``into`` (the caller's timeout bounds it)."""
    parser = _fast_parser(connection, _AsyncHiredisParser)
    if parser is None:
        for _ in range(count):
            try:
                into.append(await connection.read_response())
            except redis.ResponseError as exc:
                into.append(exc)
        return
    for push in _parse(parser._reader, getattr(parser, "_hiredis_PushNotificationType", None), count, into):
        if push is None:
            await parser.read_from_socket()
        else:
            await parser.handle_push_response(push)
