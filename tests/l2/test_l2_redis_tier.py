"""What only a Redis server shows: persistent keys, commands sent, INFO, error replies, connections."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from qcache.errors import ServerRefusal
from qcache.l2 import NO_EXPIRY, AsyncRedisTier, BreakerState, RedisTier, escape_glob

from .support import Tier, call

pytestmark = pytest.mark.redis

GLOB_KEYS = ["a*b", "a?b", "a[1]b", "a\\b", "axb", "a1b", "a]b", "a[b", "plain"]


async def test_pttl_distinguishes_missing_and_persistent_keys(
    tier: Tier, namespace: str, redis_client: redis.Redis
) -> None:
    assert await call(tier.pttl(namespace + "absent")) is None
    redis_client.set(namespace + "forever", b"v")
    assert await call(tier.pttl(namespace + "forever")) == NO_EXPIRY


def set_commands(client: redis.Redis) -> int:
    """SET commands the server has executed so far (pipelined ones included)."""
    return int(client.info("commandstats").get("cmdstat_set", {}).get("calls", 0))


async def test_set_many_of_nothing_is_a_no_op(tier: Tier, namespace: str, redis_client: redis.Redis) -> None:
    before = set_commands(redis_client)
    await call(tier.set_many({}, ttl=1))
    await call(tier.set_many([]))
    assert set_commands(redis_client) == before  # nothing was sent
    await call(tier.set_many({namespace + "one": b"v"}, ttl=60))
    assert set_commands(redis_client) == before + 1  # the count does see a real write


async def test_pattern_delete_with_wildcards_stays_inside_the_namespace(
    tier: Tier, namespace: str, key_prefix: str, redis_client: redis.Redis
) -> None:
    await call(tier.set_many({namespace + key: b"v" for key in GLOB_KEYS}, ttl=60))
    # A neighbour that the namespace would match if its metacharacters were left live.
    neighbour = key_prefix + "nsABx:a1b"
    redis_client.set(neighbour, b"keep", px=60_000)
    try:
        assert neighbour.encode() in set(
            redis_client.scan_iter(match=namespace + "a1b", count=1000)
        )
        single_char = [key for key in GLOB_KEYS if len(key) == 3]  # a*b a?b a\b axb a1b a]b a[b
        assert await call(tier.delete_pattern(escape_glob(namespace) + "a?b")) == len(single_char)
        assert await call(tier.delete_pattern(escape_glob(namespace) + "*")) == len(
            GLOB_KEYS
        ) - len(single_char)
        assert redis_client.get(neighbour) == b"keep"
    finally:
        redis_client.delete(neighbour)


async def test_ping_and_server_info(tier: Tier, redis_endpoint: Any) -> None:
    rtt = await call(tier.ping())
    assert isinstance(rtt, float) and rtt > 0
    info = await call(tier.server_info())
    assert info.version[0].isdigit()
    if redis_endpoint.server_version:
        assert info.version == redis_endpoint.server_version
    assert info.used_memory > 0
    assert info.mode == "standalone"


async def test_a_server_error_is_a_backend_error_but_not_a_breaker_failure(
    tier: Tier, namespace: str, redis_client: redis.Redis
) -> None:
    redis_client.rpush(namespace + "list", b"x")
    with pytest.raises(ServerRefusal, match=r"GET failed \(ResponseError: WRONGTYPE"):
        await call(tier.get(namespace + "list"))
    stats = tier.breaker_stats()
    assert stats.state is BreakerState.CLOSED and stats.consecutive_failures == 0


async def test_hiredis_use_is_reported(tier: Tier) -> None:
    assert tier.hiredis_in_use == redis.utils.HIREDIS_AVAILABLE


async def test_warm_up_opens_the_configured_connections(
    flavour: str, redis_endpoint: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    name = "warm-" + key_prefix.strip(":").replace(":", "-")
    kwargs = {**redis_endpoint.client_kwargs(), "client_name": name}
    client: Any = redis.Redis(**kwargs) if flavour == "sync" else aredis.Redis(**kwargs)
    cls = RedisTier if flavour == "sync" else AsyncRedisTier
    tier = cls(client, namespace=key_prefix, warm_connections=3, owns_client=True)
    try:
        assert await call(tier.warm_up()) == 3
        assert sum(1 for c in redis_client.client_list() if c["name"] == name) == 3
    finally:
        await call(tier.close())
