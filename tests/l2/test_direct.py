"""The standalone tier's direct commands: the bytes redis-py would store, its errors, its recovery."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.connection import Connection
from redis.sentinel import Sentinel, SentinelConnectionPool

from qcache.errors import BackendError
from qcache.l2 import RedisTier, escape_glob
from qcache.l2.direct import (
    DirectCommands,
    TransactionAborted,
    TransactionCommandFailed,
    _pack_mget_text,
    direct_commands,
    pack_args,
    pack_mget_text,
    tagged_set_request,
)
from qcache.l2.replies import read_replies
from qcache.l2.tagging import GRACE_MS, Membership, tag_commands, tag_updates

from .support import call, config_for, frozen, make_tier

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

SMALL = b"s" * 100
LARGE = bytes(range(256)) * 400  # over the size sent as its own buffer


class _NoFallback:
    """Stands in for the redis-py client behind the direct commands: any call through it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the call went through redis-py ({name}), not the direct path")


class _CountingFallback:
    """The real client behind the direct commands, counting the calls that went through it."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self.client, name)


def direct_only(tier: RedisTier) -> RedisTier:
    """``tier`` with its redis-py fallback replaced by one that fails: what follows is served directly."""
    assert isinstance(tier._commands, DirectCommands)
    tier._commands._client = _NoFallback()
    return tier


def test_the_tier_uses_the_direct_commands_only_for_clients_they_reproduce(redis_endpoint: Any) -> None:
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace="direct:")
    try:
        assert isinstance(tier._commands, DirectCommands)
    finally:
        tier.close()
    kwargs = redis_endpoint.client_kwargs()
    assert direct_commands(redis.Redis(**kwargs)) is not None
    for other in (redis.Redis(**kwargs, encoding="latin-1"), redis.Redis(**kwargs, encoding_errors="replace"),
                  redis.Redis(connection_pool=SentinelConnectionPool("m", Sentinel([]))),
                  redis.Redis(connection_pool=redis.ConnectionPool(**kwargs, connection_class=_OwnConnection))):
        assert direct_commands(other) is None
        tier = RedisTier(other, namespace="direct:")
        assert tier._commands is other
        tier.close()


class _OwnConnection(redis.Connection):
    """A connection class of the user's own (it may read replies its own way)."""


def test_a_client_with_another_encoding_names_every_key_alike(redis_endpoint: Any, redis_client: redis.Redis,
                                                               key_prefix: str) -> None:
    """A deleted value is never served because SET and UNLINK encoded one key two ways."""
    tier = RedisTier(redis.Redis(**redis_endpoint.client_kwargs(), encoding="latin-1"), namespace=key_prefix,
                     owns_client=True)
    key = f"{key_prefix}clé"
    try:
        tier.set(key, b"v", 60)
        assert tier.get(key) == b"v"
        assert tier.delete(key) == 1
        assert tier.get(key) is None
    finally:
        tier.close()


def test_what_is_written_directly_is_what_redis_py_reads_and_the_reverse(redis_endpoint: Any,
                                                                          redis_client: redis.Redis,
                                                                          key_prefix: str) -> None:
    tier = direct_only(RedisTier.from_config(config_for(redis_endpoint), namespace=key_prefix))
    keys = [f"{key_prefix}plain", f"{key_prefix}clé ☃", f"{key_prefix}large"]
    try:
        tier.set(keys[0], SMALL, 60)
        tier.set_many([(keys[1].replace("é ☃", "e"), b""), (keys[2], LARGE)], ttl=60)
        tier._commands._client = redis_client  # non-ASCII keys take redis-py's path
        tier.set_many([(keys[1], b"")], ttl=60)
        tier._commands._client = _NoFallback()
        assert [redis_client.get(k) for k in keys] == [SMALL, b"", LARGE]
        assert 0 < redis_client.pttl(keys[2]) <= 60_000
        redis_client.set(keys[0], b"from redis-py")
        assert tier.get(keys[0]) == b"from redis-py"
        assert tier.get_many([*keys, f"{key_prefix}missing"]) == [b"from redis-py", b"", LARGE, None]
        assert tier.get_many([keys[1].replace("é ☃", "e")]) == [b""]
        assert tier.get(f"{key_prefix}missing") is None
    finally:
        tier.delete_pattern(escape_glob(key_prefix) + "*")
        tier.close()


def test_an_error_reply_is_raised_as_before(redis_endpoint: Any, redis_client: redis.Redis, key_prefix: str) -> None:
    tier = direct_only(RedisTier.from_config(config_for(redis_endpoint), namespace=key_prefix))
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
    fallback = _CountingFallback(tier._commands._client)
    tier._commands._client = fallback
    try:
        tier.set("full:before", b"v", 60)
        assert fallback.calls == 0
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write is over the limit now
        with pytest.raises(BackendError, match="OutOfMemoryError"):
            tier.set("full:k", b"v", 60)
        assert fallback.calls == 0  # the refusal came back on the direct path
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


async def test_a_restarted_server_costs_no_call_a_failure(flavour: str, redis_server: Any) -> None:
    """Pooled connections go stale when the server restarts: the pool reconnects them, no call fails."""
    tier: Any = make_tier(flavour, config_for(redis_server.endpoint, max_retries=1), "rs:")
    try:
        await call(tier.warm_up())
        await call(tier.set_many([("rs:a", b"1"), ("rs:b", b"2")], ttl=60))
        assert await call(tier.get_many(["rs:a", "rs:b"])) == [b"1", b"2"]
        for operation in (
            lambda: tier.set("rs:k", b"v", 60),
            lambda: tier.get("rs:k"),
            lambda: tier.get_many(["rs:k", "rs:a"]),
            lambda: tier.set_many([("rs:x", b"x"), ("rs:y", b"y")], ttl=60),
        ):
            redis_server.stop()
            redis_server.start()  # same port, empty (no persistence): every pooled connection is stale
            await call(operation())
        assert await call(tier.get_many(["rs:x", "rs:y", "rs:a"])) == [b"x", b"y", None]
        assert tier.breaker_stats().failures == 0
    finally:
        await call(tier.close())


async def test_a_read_that_times_out_is_made_again_by_redis_py_with_its_retries(
    flavour: str, redis_server: Any
) -> None:
    """The direct attempt times out on a frozen server; redis-py's retry, as configured, gets the reply."""
    config = config_for(redis_server.endpoint, socket_timeout=0.3, max_retries=3, retry_on_timeout=True)
    tier: Any = make_tier(flavour, config, "slow:")
    fallback = _CountingFallback(tier._commands._client)
    tier._commands._client = fallback
    try:
        await call(tier.set("slow:k", b"v", 60))
        with frozen(redis_server, thaw_after=0.5):
            started = time.monotonic()
            assert await call(tier.get("slow:k")) == b"v"
            assert 0.3 <= time.monotonic() - started < 5.0
            assert fallback.calls == 1
        assert tier.breaker_stats().failures == 0
    finally:
        await call(tier.close())


@pytest.mark.parametrize("retry_on_timeout", [True, False])
def test_with_retries_off_a_write_that_timed_out_is_sent_once(redis_server: Any, retry_on_timeout: bool) -> None:
    """A SET sent twice could land after a later delete: with retries off, the direct attempt is the only one."""
    retries = 2 if retry_on_timeout is False else 0  # retries, but not after a timeout; or none at all
    config = config_for(redis_server.endpoint, socket_timeout=0.3, max_retries=retries,
                        retry_on_timeout=retry_on_timeout)
    tier = RedisTier.from_config(config, namespace="once:")
    admin = redis.Redis(**redis_server.endpoint.client_kwargs())
    try:
        tier.set("once:warm", b"v", 60)
        admin.config_resetstat()
        with frozen(redis_server, thaw_after=0.45), pytest.raises(BackendError, match="Timeout"):
            tier.set("once:k", b"v", 60)
        time.sleep(0.1)
        sets = admin.info("commandstats").get("cmdstat_set", {}).get("calls", 0)
        assert sets == 1  # applied late by the thawed server, but sent once
    finally:
        admin.close()
        tier.close()


@pytest.mark.parametrize("keys", [["a"], ["clé ☃", "", "x" * 70_000], [f"k{i}" for i in range(300)]])
def test_both_mget_packings_give_the_same_bytes(keys: list[str]) -> None:
    assert pack_mget_text(keys) == _pack_mget_text(keys) == b"".join(Connection().pack_command("MGET", *keys))


def test_both_mget_packings_refuse_what_utf8_cannot_encode() -> None:
    for pack in (pack_mget_text, _pack_mget_text):
        with pytest.raises(UnicodeEncodeError):
            pack(["ok", "lone \ud800 surrogate"])


def test_commands_packed_by_hiredis_are_the_bytes_redis_py_sends() -> None:
    command = ("EVALSHA", "ab" * 20, 3, "k", "clé", "t:☃", b"\x00data", 60_000, -1, 2**62, 0, "")
    packed = pack_args(command)
    if packed is not None:  # hiredis is installed
        assert packed == [b"".join(Connection().pack_command(*command))]
    assert pack_args(("SET", "k", 1.5)) is None  # floats are packed by the connection, as redis-py packs them
    assert pack_args(("GET", "lone \ud800")) is None


class _PoolWriter:
    """A writer on a pooled connection of ``client``, as the invalidation connection writes (busy: None)."""

    def __init__(self, client: redis.Redis, busy: bool = False) -> None:
        self.client, self.busy = client, busy

    def write(self, request: list[bytes], count: int = 1) -> list[Any] | None:
        if self.busy:
            return None
        connection = self.client.connection_pool.get_connection()
        try:
            connection.send_packed_command(request)
            replies: list[Any] = []
            read_replies(connection, count, replies)
            return replies
        finally:
            self.client.connection_pool.release(connection)


def _transaction(*commands: tuple[Any, ...]) -> tuple[list[bytes], int]:
    """MULTI, ``commands``, EXEC packed as redis-py packs them, and how many replies they get."""
    packer = Connection()
    wrapped = [("MULTI",), *commands, ("EXEC",)]
    return [b"".join(part for command in wrapped for part in packer.pack_command(*command))], len(wrapped)


def test_a_transaction_is_applied_whole_refused_whole_or_raises_what_failed(redis_endpoint: Any) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    commands = DirectCommands(client)
    keys = [f"tx:{name}" for name in ("value", "tag", "string", "refused")]
    try:
        member = _transaction(("ZADD", keys[1], 7, keys[0]), ("SET", keys[0], b"v", "PX", 60_000))
        assert commands.transaction_on(_PoolWriter(client), *member)
        assert client.get(keys[0]) == b"v" and client.zscore(keys[1], keys[0]) == 7
        assert not commands.transaction_on(_PoolWriter(client, busy=True), *member)  # nothing sent
        # Refused as it was queued (a wrong number of arguments, as PEXPIRE NX before Redis 7.0): nothing
        # applied, and said so.
        refused = _transaction(("SET", keys[3], b"v"), ("PEXPIRE", keys[3]))
        with pytest.raises(TransactionAborted, match="wrong number of arguments"):
            commands.transaction_on(_PoolWriter(client), *refused)
        assert client.exists(keys[3]) == 0
        # Failed as it ran (a wrong type): said so, not taken for a refusal of the whole.
        client.set(keys[2], b"a string")
        failing = _transaction(("ZADD", keys[2], 1, "m"), ("SET", keys[3], b"v"))
        with pytest.raises(TransactionCommandFailed, match="WRONGTYPE"):
            commands.transaction_on(_PoolWriter(client), *failing)
        assert client.get(keys[3]) == b"v"  # the command after it ran
    finally:
        client.delete(*keys)
        client.close()


def test_a_refused_multi_leaves_the_commands_to_run_alone_and_says_how_they_went(redis_endpoint: Any) -> None:
    admin = redis.Redis(**redis_endpoint.client_kwargs())
    user = f"nomulti-{time.monotonic_ns()}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-multi")
    client = redis.Redis(**redis_endpoint.client_kwargs(), username=user, password="pw")
    commands = DirectCommands(client)
    keys = ["txm:value", "txm:string"]
    try:
        with pytest.raises(TransactionAborted, match="permissions to run the 'multi'"):  # every command ran, and well
            commands.transaction_on(_PoolWriter(client), *_transaction(("SET", keys[0], b"v")))
        assert client.get(keys[0]) == b"v"
        client.set(keys[1], b"a string")
        with pytest.raises(TransactionCommandFailed, match="WRONGTYPE"):  # one of them failed
            commands.transaction_on(_PoolWriter(client), *_transaction(("ZADD", keys[1], 1, "m")))
    finally:
        admin.delete(*keys)
        admin.execute_command("ACL", "DELUSER", user)
        client.close()
        admin.close()


@pytest.mark.parametrize("value", [SMALL, LARGE])
def test_a_tagged_set_request_is_the_commands_redis_py_would_send(value: bytes) -> None:
    now_ms = 1_760_000_000_000
    key = "p:default:k"
    memberships = [Membership(tag, key, now_ms + 90_000) for tag in ("p:~tag:a", "p:~tag:b", "p:~tag:a")]
    request, count = tagged_set_request(key, value, 90_000, memberships, now_ms)
    expected, expected_count = _transaction(*tag_commands(tag_updates(memberships), now_ms),
                                            ("SET", key, value, "PX", 90_000))
    assert b"".join(request) == expected[0] and count == expected_count == 11
    assert len(request) == (1 if value is SMALL else 3)  # a long value is sent as its own buffer, uncopied
    assert tagged_set_request("p:clé", value, 1, memberships, now_ms) == ([], 0)  # redis-py encodes that key


def test_the_tagged_write_transaction_and_the_script_leave_the_same_state(redis_endpoint: Any) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace="txs:")
    now_ms = int(time.time() * 1000)
    try:
        for way in ("script", "transaction"):
            key, tags = f"txs:{way}:k", [f"txs:{way}:~tag:a", f"txs:{way}:~tag:b"]
            client.zadd(tags[0], {"txs:gone": now_ms - GRACE_MS - 1, "txs:kept": now_ms})  # one long expired
            client.pexpire(tags[0], 5_000)  # shorter than the new member: extended
            members = [Membership(tag, key, now_ms + 60_000) for tag in tags]
            if way == "script":
                tier.set_tagged([(key, b"v", 60.0)], members, now_ms)
            else:
                assert tier.set_tagged_quiet(key, b"v", 60.0, members, now_ms, _PoolWriter(client))
            assert client.get(key) == b"v" and 59_000 < client.pttl(key) <= 60_000
            expected = [(b"txs:kept", now_ms), (key.encode(), now_ms + 60_000)]
            assert client.zrange(tags[0], 0, -1, withscores=True) == expected
            assert client.zrange(tags[1], 0, -1, withscores=True) == [(key.encode(), now_ms + 60_000)]
            for tag in tags:
                assert abs(client.pttl(tag) - (60_000 + GRACE_MS)) < 2_000
    finally:
        tier.close()
        for way in ("script", "transaction"):
            client.delete(f"txs:{way}:k", f"txs:{way}:~tag:a", f"txs:{way}:~tag:b")
        client.close()


def test_a_tagged_write_whose_tag_fails_as_it_runs_leaves_no_entry_without_its_membership(
    redis_endpoint: Any,
) -> None:
    """The script stops at a failed ZADD before its SET; the transaction runs the SET, so the tier removes it."""
    client = redis.Redis(**redis_endpoint.client_kwargs())
    tier = RedisTier.from_config(config_for(redis_endpoint), namespace="txf:")
    key, tag = "txf:k", "txf:~tag:a"
    now_ms = int(time.time() * 1000)
    try:
        client.set(key, b"old")
        client.set(tag, b"not a sorted set")
        with pytest.raises(BackendError, match="WRONGTYPE"):
            tier.set_tagged_quiet(key, b"new", 60.0, [Membership(tag, key, now_ms + 60_000)], now_ms,
                                  _PoolWriter(client))
        assert client.exists(key) == 0  # neither the new value without its tag, nor the old one
    finally:
        tier.close()
        client.delete(key, tag)
        client.close()
