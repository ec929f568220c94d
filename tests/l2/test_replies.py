"""Many replies off one connection: the hiredis fast path gives exactly what read_response gives."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis._parsers import _AsyncRESP2Parser, _AsyncRESP3Parser, _RESP2Parser, _RESP3Parser
from redis.asyncio.connection import Connection as AsyncConnection
from redis.connection import Connection

from qcache.l2.deadline import arm, bounded_connection_class
from qcache.l2.replies import _AsyncHiredisParser, _fast_parser, _HiredisParser, read_replies, read_replies_async

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

#: Larger than redis-py's 64 KiB socket reads: the reader runs dry mid-reply and is fed again.
BIG = b"b" * 300_000


def _commands(prefix: str) -> list[tuple[Any, ...]]:
    return [
        ("SET", f"{prefix}:a", b"alpha", "PX", 60_000),
        ("GET", f"{prefix}:a"),
        ("GET", f"{prefix}:missing"),
        ("RPUSH", f"{prefix}:list", b"x"),
        ("GET", f"{prefix}:list"),  # WRONGTYPE: an error reply, kept in its place
        ("SET", f"{prefix}:big", BIG, "PX", 60_000),
        ("MGET", f"{prefix}:a", f"{prefix}:missing", f"{prefix}:big"),
        ("INCR", f"{prefix}:n"),
        ("GET", f"{prefix}:big"),
    ]


def _comparable(replies: list[Any]) -> list[Any]:
    return [(type(r).__name__, str(r)) if isinstance(r, Exception) else r for r in replies]


def _expected(prefix: str) -> list[Any]:
    return _comparable([
        b"OK", b"alpha", None, 1,
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        b"OK", [b"alpha", None, BIG], 1, BIG,
    ])


PARSERS = {
    "hiredis-resp2": (None, 2), "hiredis-resp3": (None, 3),
    "python-resp2": (_RESP2Parser, 2), "python-resp3": (_RESP3Parser, 3),
}


def _connection(endpoint: Any, parser: str) -> Connection:
    parser_class, protocol = PARSERS[parser]
    kwargs = {"protocol": protocol, **({"parser_class": parser_class} if parser_class else {})}
    # As the tiers build them: the deadline bounds read_response too (the path without hiredis).
    return bounded_connection_class(Connection)(**endpoint.client_kwargs(), **kwargs)


@pytest.mark.parametrize("parser", list(PARSERS))
def test_sync_replies_match_read_response_whatever_the_parser(redis_endpoint: Any, key_prefix: str,
                                                               parser: str) -> None:
    connection = _connection(redis_endpoint, parser)
    try:
        commands = _commands(key_prefix)
        connection.send_packed_command(connection.pack_commands(commands))  # connected from here on
        assert (_fast_parser(connection, _HiredisParser) is not None) == parser.startswith("hiredis")
        replies: list[Any] = []
        read_replies(connection, len(commands), replies)
        assert _comparable(replies) == _expected(key_prefix)
        # The connection is in step afterwards: the next command gets its own reply.
        connection.send_command("PING")
        assert connection.read_response() in (b"PONG", "PONG", True)
    finally:
        connection.send_command("UNLINK", *(f"{key_prefix}:{k}" for k in ("a", "list", "big", "n")))
        connection.read_response()
        connection.disconnect()


ASYNC_PARSERS = {
    "hiredis-resp2": (None, 2), "hiredis-resp3": (None, 3),
    "python-resp2": (_AsyncRESP2Parser, 2), "python-resp3": (_AsyncRESP3Parser, 3),
}


@pytest.mark.parametrize("parser", list(ASYNC_PARSERS))
async def test_async_replies_match_read_response_whatever_the_parser(redis_endpoint: Any, key_prefix: str,
                                                                      parser: str) -> None:
    parser_class, protocol = ASYNC_PARSERS[parser]
    kwargs = {"protocol": protocol, **({"parser_class": parser_class} if parser_class else {})}
    connection = AsyncConnection(**redis_endpoint.client_kwargs(), **kwargs)
    try:
        commands = _commands(key_prefix)
        await connection.send_packed_command(connection.pack_commands(commands))  # connected from here on
        assert (_fast_parser(connection, _AsyncHiredisParser) is not None) == parser.startswith("hiredis")
        replies: list[Any] = []
        await read_replies_async(connection, len(commands), replies)
        assert _comparable(replies) == _expected(key_prefix)
        await connection.send_command("PING")
        assert await connection.read_response() in (b"PONG", "PONG", True)
    finally:
        await connection.send_command("UNLINK", *(f"{key_prefix}:{k}" for k in ("a", "list", "big", "n")))
        await connection.read_response()
        await connection.disconnect()


@pytest.mark.parametrize("parser", ["hiredis-resp2", "hiredis-resp3", "python-resp2"])
def test_a_hung_server_costs_the_deadline_and_keeps_the_replies_read(redis_endpoint: Any, key_prefix: str,
                                                                     parser: str) -> None:
    connection = _connection(redis_endpoint, parser)
    admin = redis.Redis(**redis_endpoint.client_kwargs())
    try:
        connection.send_packed_command(connection.pack_commands([("PING",), ("PING",)]))
        replies: list[Any] = []
        read_replies(connection, 2, replies)  # the first exchange also finishes the handshake
        paused_until = time.monotonic() + 2.0
        admin.client_pause(2000, all=True)
        try:
            connection.send_packed_command(connection.pack_commands([("GET", f"{key_prefix}:x")] * 3))
            arm(0.15)
            started = time.perf_counter()
            with pytest.raises(redis.TimeoutError):
                read_replies(connection, 3, replies)
            waited = time.perf_counter() - started
            assert waited < 0.15 + 0.25
            assert len(replies) == 2  # nothing arrived from the hung server; what was read stays
        finally:
            arm(None)
            time.sleep(max(0.0, paused_until - time.monotonic()))
    finally:
        connection.disconnect()
        admin.close()


@pytest.mark.parametrize("parser", ["hiredis-resp3", "python-resp3"])
def test_a_push_frame_between_replies_is_handled_not_taken_for_a_reply(redis_endpoint: Any, key_prefix: str,
                                                                       parser: str) -> None:
    connection = _connection(redis_endpoint, parser)
    writer = redis.Redis(**redis_endpoint.client_kwargs())
    key, other = f"{key_prefix}:tracked", f"{key_prefix}:other"
    try:
        writer.set(other, b"o", px=60_000)
        connection.send_packed_command(connection.pack_commands([("CLIENT", "TRACKING", "ON"), ("GET", key)]))
        replies: list[Any] = []
        read_replies(connection, 2, replies)
        writer.set(key, b"changed", px=60_000)  # an invalidation push is now on its way to `connection`
        time.sleep(0.05)
        connection.send_packed_command(connection.pack_commands([("GET", other)] * 3))
        replies.clear()
        read_replies(connection, 3, replies)
        assert replies == [b"o", b"o", b"o"]
    finally:
        writer.unlink(key, other)
        writer.close()
        connection.disconnect()
