"""Fixtures for the L2 tier tests: a tier of each flavour on the provisioned server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from qcache.l2 import (
    AsyncMemoryBackend,
    AsyncRedisClusterTier,
    AsyncRedisTier,
    CircuitBreaker,
    MemoryBackend,
    RedisClusterTier,
    RedisTier,
    escape_glob,
)

from .support import NAMESPACE_SUFFIX, Tier, call


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which tier implementation a test drives."""
    return request.param


@pytest.fixture
def namespace(key_prefix: str) -> str:
    """This test's tier namespace: unique, and full of glob metacharacters."""
    return key_prefix + NAMESPACE_SUFFIX


@pytest.fixture
async def tier(flavour: str, request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Tier]:
    """A backend of this flavour, cleaned up afterwards.

    A Redis tier wraps an existing client with batch_size 3 and parallel 2
    (a cluster tier too, on the shared cluster); the in-memory backends need
    no server.
    """
    the_tier: Tier
    if flavour == "memory":
        the_tier = MemoryBackend(namespace=namespace)
    elif flavour == "memory-async":
        the_tier = AsyncMemoryBackend(namespace=namespace)
    elif flavour.startswith("cluster"):
        url = request.getfixturevalue("redis_cluster").url
        options: dict[str, Any] = {"namespace": namespace, "batch_size": 3, "parallel_operations": 2,
                                   "breaker": CircuitBreaker(), "owns_client": True}
        if flavour.endswith("async"):
            the_tier = AsyncRedisClusterTier.from_client(AsyncRedisCluster.from_url(url), **options)
        else:
            the_tier = RedisClusterTier.from_client(RedisCluster.from_url(url), **options)
    else:
        kwargs = request.getfixturevalue("redis_endpoint").client_kwargs()
        client: Any = redis.Redis(**kwargs) if flavour == "sync" else aredis.Redis(**kwargs)
        cls = RedisTier if flavour == "sync" else AsyncRedisTier
        the_tier = cls(
            client,
            namespace=namespace,
            batch_size=3,
            parallel_operations=2,
            breaker=CircuitBreaker(),
            owns_client=True,
        )
    yield the_tier
    if not the_tier.closed:
        await call(the_tier.delete_pattern(escape_glob(namespace) + "*"))
        await call(the_tier.close())
