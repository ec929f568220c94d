"""The standalone tier's direct commands: the bytes redis-py would store, its errors, its recovery."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import redis
from redis.connection import Connection

from qcache.errors import BackendError
from qcache.l2 import RedisTier, escape_glob
from qcache.l2.direct import DirectCommands, _pack_mget_text, pack_mget_text

from .support import config_for

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

SMALL = b"s" * 100
LARGE = bytes(range(256)) * 400  # over the size sent as its own buffer


def test_the_tier_uses_the_direct_commands(redis_endpoint: Any) -> None:
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace="direct:")
    try:
        assert isinstance(tier._commands, DirectCommands)
    finally:
        tier.close()


def test_what_is_written_directly_is_what_redis_py_reads_and_the_reverse(redis_endpoint: Any,
                                                                          redis_client: redis.Redis,
                                                                          key_prefix: str) -> None:
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace=key_prefix)
    keys = [f"{key_prefix}plain", f"{key_prefix}clé ☃", f"{key_prefix}large"]
    try:
        tier.set(keys[0], SMALL, 60)
        tier.set_many([(keys[1], b""), (keys[2], LARGE)], ttl=60)
        assert [redis_client.get(k) for k in keys] == [SMALL, b"", LARGE]
        assert 0 < redis_client.pttl(keys[2]) <= 60_000
        redis_client.set(keys[0], b"from redis-py")
        assert tier.get(keys[0]) == b"from redis-py"
        assert tier.get_many([*keys, f"{key_prefix}missing"]) == [b"from redis-py", b"", LARGE, None]
        assert tier.get(f"{key_prefix}missing") is None
    finally:
        tier.delete_pattern(escape_glob(key_prefix) + "*")
        tier.close()


def test_an_error_reply_is_raised_as_before(redis_endpoint: Any, redis_client: redis.Redis, key_prefix: str) -> None:
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace=key_prefix)
    try:
        redis_client.rpush(f"{key_prefix}list", b"x")
        with pytest.raises(BackendError, match="WRONGTYPE"):
            tier.get(f"{key_prefix}list")
        tier.set(f"{key_prefix}after", b"v", 60)  # the connection stayed in step
        assert tier.get(f"{key_prefix}after") == b"v"
    finally:
        tier.delete_pattern(escape_glob(key_prefix) + "*")
        tier.close()


def test_a_full_server_refuses_single_and_batch_writes_and_nothing_half_written_is_claimed(
    redis_server_factory: Any,
) -> None:
    server = redis_server_factory()
    admin = redis.Redis(**server.endpoint.client_kwargs())
    tier = RedisTier.from_config(config_for(server.endpoint), namespace="full:")
    try:
        tier.set("full:before", b"v", 60)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write is over the limit now
        with pytest.raises(BackendError, match="OutOfMemoryError"):
            tier.set("full:k", b"v", 60)
        with pytest.raises(BackendError, match="OutOfMemoryError"):
            tier.set_many([(f"full:{i}", b"v") for i in range(5)], ttl=60)
        assert admin.exists(*(f"full:{i}" for i in range(5)), "full:k") == 0
        assert tier.get("full:before") == b"v"  # reads still work
        admin.config_set("maxmemory", 0)
        tier.set_many([(f"full:{i}", b"v") for i in range(5)], ttl=60)
        assert tier.get_many([f"full:{i}" for i in range(5)]) == [b"v"] * 5
    finally:
        tier.close()
        admin.close()


def test_a_restarted_server_costs_no_call_a_failure(redis_server: Any) -> None:
    """Pooled connections go stale when the server restarts: the direct attempt fails, redis-py reconnects."""
    tier = RedisTier.from_config(config_for(redis_server.endpoint, max_retries=1), namespace="rs:")
    try:
        tier.warm_up()
        tier.set_many([("rs:a", b"1"), ("rs:b", b"2")], ttl=60)
        assert tier.get_many(["rs:a", "rs:b"]) == [b"1", b"2"]
        for call in (
            lambda: tier.set("rs:k", b"v", 60),
            lambda: tier.get("rs:k"),
            lambda: tier.get_many(["rs:k", "rs:a"]),
            lambda: tier.set_many([("rs:x", b"x"), ("rs:y", b"y")], ttl=60),
        ):
            redis_server.stop()
            redis_server.start()  # same port, empty (no persistence): every pooled connection is stale
            call()
        assert tier.get_many(["rs:x", "rs:y", "rs:a"]) == [b"x", b"y", None]
        assert tier.breaker_stats().failures == 0
    finally:
        tier.close()


def test_a_read_that_times_out_is_made_again_by_redis_py_with_its_retries(redis_server: Any) -> None:
    """The direct attempt times out on a frozen server; redis-py's retry, as configured, gets the reply."""
    config = config_for(redis_server.endpoint, socket_timeout=0.3, max_retries=3, retry_on_timeout=True)
    tier = RedisTier.from_config(config, namespace="slow:")
    pid = redis_server.pid
    assert pid is not None
    try:
        tier.set("slow:k", b"v", 60)
        os.kill(pid, signal.SIGSTOP)
        thaw = threading.Timer(0.5, os.kill, (pid, signal.SIGCONT))
        thaw.start()
        try:
            started = time.monotonic()
            assert tier.get("slow:k") == b"v"
            assert 0.3 <= time.monotonic() - started < 5.0
        finally:
            thaw.join()
            os.kill(pid, signal.SIGCONT)
        assert tier.breaker_stats().failures == 0
    finally:
        tier.close()


@pytest.mark.parametrize("keys", [["a"], ["clé ☃", "", "x" * 70_000], [f"k{i}" for i in range(300)]])
def test_both_mget_packings_give_the_same_bytes(keys: list[str]) -> None:
    assert pack_mget_text(keys) == _pack_mget_text(keys) == b"".join(Connection().pack_command("MGET", *keys))


def test_both_mget_packings_refuse_what_utf8_cannot_encode() -> None:
    for pack in (pack_mget_text, _pack_mget_text):
        with pytest.raises(UnicodeEncodeError):
            pack(["ok", "lone \ud800 surrogate"])
