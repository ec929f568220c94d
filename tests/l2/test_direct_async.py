"""The asyncio tier's direct commands: the bytes redis-py would store, its errors, its recovery, its deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from qcache.errors import BackendError
from qcache.l2 import AsyncRedisTier, CircuitBreaker, escape_glob
from qcache.l2.direct import AsyncDirectCommands

from .support import config_for, frozen

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

SMALL = b"s" * 100
LARGE = bytes(range(256)) * 400  # over the size sent as its own buffer


def test_the_async_tier_uses_the_direct_commands(redis_endpoint: Any) -> None:
    tier = AsyncRedisTier.from_config(config_for(redis_endpoint), namespace="direct:")
    assert isinstance(tier._commands, AsyncDirectCommands)


@pytest.mark.parametrize("parser", ["hiredis", "python"])
async def test_what_is_written_directly_is_what_redis_py_reads_and_the_reverse(
    redis_endpoint: Any, redis_client: redis.Redis, key_prefix: str, parser: str
) -> None:
    """Both reply readers: hiredis' reader taken in one pass, and redis-py's pure-Python parser."""
    options: dict[str, Any] = {"parser_class": _AsyncRESP2Parser} if parser == "python" else {}
    client = aredis.Redis.from_pool(aredis.ConnectionPool(**redis_endpoint.client_kwargs(), **options))
    tier = AsyncRedisTier(client, namespace=key_prefix, batch_size=2, owns_client=True)
    keys = [f"{key_prefix}plain", f"{key_prefix}clé ☃", f"{key_prefix}large"]
    assert tier.hiredis_in_use is (parser == "hiredis")
    try:
        await tier.set(keys[0], SMALL, 60)
        await tier.set_many([(keys[1], b""), (keys[2], LARGE)], ttl=60)
        assert [redis_client.get(k) for k in keys] == [SMALL, b"", LARGE]
        assert all(59_000 < redis_client.pttl(k) <= 60_000 for k in keys)
        redis_client.set(keys[0], b"from redis-py")
        assert await tier.get(keys[0]) == b"from redis-py"
        # Over batch_size: chunks in parallel on the pool's connections.
        assert await tier.get_many([*keys, f"{key_prefix}missing"]) == [b"from redis-py", b"", LARGE, None]
        assert await tier.get(f"{key_prefix}missing") is None
        await tier.set_many({f"{key_prefix}{i}": bytes([i]) * i for i in range(5)}, ttl=60)
        assert redis_client.mget([f"{key_prefix}{i}" for i in range(5)]) == [bytes([i]) * i for i in range(5)]
    finally:
        await tier.delete_pattern(escape_glob(key_prefix) + "*")
        await tier.close()


async def test_an_error_reply_is_raised_as_before(redis_endpoint: Any, redis_client: redis.Redis,
                                                  key_prefix: str) -> None:
    tier = AsyncRedisTier.from_config(config_for(redis_endpoint), namespace=key_prefix)
    try:
        redis_client.rpush(f"{key_prefix}list", b"x")
        with pytest.raises(BackendError, match="WRONGTYPE"):
            await tier.get(f"{key_prefix}list")
        await tier.set(f"{key_prefix}after", b"v", 60)  # the connection stayed in step
        assert await tier.get(f"{key_prefix}after") == b"v"
        assert await tier.get_many([f"{key_prefix}after", f"{key_prefix}list"]) == [b"v", None]  # MGET: nil
    finally:
        await tier.delete_pattern(escape_glob(key_prefix) + "*")
        await tier.close()


async def test_a_full_server_refuses_single_and_batch_writes_and_nothing_half_written_is_claimed(
    redis_server_factory: Any,
) -> None:
    server = redis_server_factory()
    admin = redis.Redis(**server.endpoint.client_kwargs())
    tier = AsyncRedisTier.from_config(config_for(server.endpoint), namespace="full:")
    try:
        await tier.set("full:before", b"v", 60)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write is over the limit now
        with pytest.raises(BackendError, match="OutOfMemoryError"):
            await tier.set("full:k", b"v", 60)
        with pytest.raises(BackendError, match="OutOfMemoryError"):
            await tier.set_many([(f"full:{i}", b"v") for i in range(5)], ttl=60)
        assert admin.exists(*(f"full:{i}" for i in range(5)), "full:k") == 0
        assert await tier.get("full:before") == b"v"  # reads still work
        admin.config_set("maxmemory", 0)
        await tier.set_many([(f"full:{i}", b"v") for i in range(5)], ttl=60)
        assert await tier.get_many([f"full:{i}" for i in range(5)]) == [b"v"] * 5
    finally:
        await tier.close()
        admin.close()


async def test_a_socket_timeout_shorter_than_the_deadline_bounds_each_attempt(redis_server: Any) -> None:
    """As with redis-py alone: a server frozen past every attempt's socket timeout fails the call before it thaws."""
    config = config_for(redis_server.endpoint, socket_timeout=0.3, max_retries=1, retry_on_timeout=True)
    tier = AsyncRedisTier.from_config(config, namespace="slow:")  # the deadline (10 s) is far longer
    try:
        await tier.set("slow:k", b"v", 60)
        with frozen(redis_server, thaw_after=4.0):
            started = time.monotonic()
            with pytest.raises(BackendError, match="Timeout"):
                await tier.get("slow:k")
            assert time.monotonic() - started < 3.0  # the direct attempt and redis-py's two, 0.3 s each
        assert await tier.get("slow:k") == b"v"
    finally:
        await tier.close()


DEADLINE_MS = 350
PAUSE_MS = 500  # longer than the deadline, shorter than two


@pytest.mark.parametrize("timed_out", ["get", "get_many", "set", "set_many"])
async def test_a_call_cut_by_the_deadline_leaves_no_half_read_connection_behind(
    redis_server: Any, timed_out: str
) -> None:
    """The deadline cancels a call whose request the server holds; its reply must reach nobody.

    The next call starts while the server still holds the first request: on
    the same connection, the first reply in line would be the cancelled
    call's. Its own connection gets its own reply once the server resumes.
    The timed-out call raises within the deadline (never swallowed, never
    made again through redis-py).
    """
    config = config_for(redis_server.endpoint, socket_timeout=5.0, max_retries=3, retry_on_timeout=True,
                        l2_timeout_ms=DEADLINE_MS, breaker_threshold=100)
    tier = AsyncRedisTier.from_config(config, namespace="cut:")
    admin = redis.Redis(**redis_server.endpoint.client_kwargs())
    calls = {
        "get": lambda: tier.get("cut:a"),
        "get_many": lambda: tier.get_many(["cut:a", "cut:b"]),
        "set": lambda: tier.set("cut:c", b"C", 60),
        "set_many": lambda: tier.set_many([("cut:c", b"C"), ("cut:d", b"D")], ttl=60),
    }
    try:
        await tier.set_many([("cut:a", b"A"), ("cut:b", b"B")], ttl=60)
        assert await tier.get("cut:b") == b"B"  # one pooled connection, reused by every call (LIFO)
        admin.client_pause(PAUSE_MS, all=True)
        started = time.monotonic()
        with pytest.raises(BackendError, match="Timeout"):
            await calls[timed_out]()
        assert time.monotonic() - started < DEADLINE_MS / 1000 + 0.1
        assert time.monotonic() - started < PAUSE_MS / 1000, "the pause ended before the deadline: retry"
        assert await tier.get("cut:b") == b"B"  # while the first request is still held
        assert await tier.get_many(["cut:b", "cut:a", "cut:none"]) == [b"B", b"A", None]
        await tier.set("cut:e", b"E", 60)
        assert await tier.get("cut:e") == b"E"
        pool = tier.client.connection_pool
        assert not pool._in_use_connections
    finally:
        admin.close()
        await tier.close()


async def test_no_connection_is_read_by_two_tasks_when_calls_are_cancelled_at_random(
    redis_endpoint: Any, key_prefix: str
) -> None:
    """Many concurrent calls, some cancelled mid-flight: every call that completes gets its own value."""
    client = aredis.Redis.from_pool(aredis.BlockingConnectionPool(**redis_endpoint.client_kwargs(), max_connections=4))
    tier = AsyncRedisTier(client, namespace=key_prefix, batch_size=50, owns_client=True,
                          breaker=CircuitBreaker(failure_threshold=10_000))
    keys = [f"{key_prefix}{i}" for i in range(40)]
    try:
        await tier.set_many({key: key.encode() * 50 for key in keys}, ttl=60)

        async def read(i: int) -> None:
            key = keys[i % len(keys)]
            if i % 3:
                assert await tier.get(key) == key.encode() * 50
            else:
                assert await tier.get_many([key, keys[0]]) == [key.encode() * 50, keys[0].encode() * 50]

        for round_ in range(20):
            tasks = [asyncio.ensure_future(read(round_ * 40 + i)) for i in range(40)]
            await asyncio.sleep(0)
            for task in tasks[round_ % 3 :: 3]:
                task.cancel()  # some before their request is sent, some while they wait for the reply
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert not [r for r in results if r is not None and not isinstance(r, asyncio.CancelledError)]
    finally:
        await tier.delete_pattern(escape_glob(key_prefix) + "*")
        await tier.close()


async def test_no_fallback_starts_once_the_task_is_being_cancelled() -> None:
    """A connection error met while the deadline cancels the task stands: redis-py would only wait again."""
    commands = AsyncDirectCommands(aredis.Redis(), deadline=None)  # nothing connects here
    connection = aredis.Connection(retry=Retry(NoBackoff(), 2))  # retries connection errors, never connects here
    failure = redis.ConnectionError("Connection reset by peer")
    assert commands._falls_back(connection, failure)  # a healthy task: redis-py makes the call
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)
    try:
        assert not commands._falls_back(connection, failure)
    finally:
        task.uncancel()
    assert commands._falls_back(connection, failure)
    assert not commands._falls_back(aredis.Connection(retry=Retry(NoBackoff(), 0)), failure)  # retries off
