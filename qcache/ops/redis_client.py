"""A redis-py client for the cache's own server, built from its configuration.

The operations tools (event streams, backups) talk to Redis directly, with the
same pool, retries, timeouts and TLS as the cache's tier, through
:class:`~qcache.l2.ConnectionSettings`, the one place those are decided.
"""

from __future__ import annotations

from typing import cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.retry import Retry

from qcache.config import CacheConfig
from qcache.l2 import ConnectionSettings
from qcache.l2.cluster import cluster_enabled, sync_cluster_client


def settings_of(config: CacheConfig) -> ConnectionSettings:
    return ConnectionSettings.from_config(config.redis)


def sync_client(config: CacheConfig) -> redis.Redis:
    """A client on the cache's server; on a Redis Cluster, redis-py's ``RedisCluster``.

    The cluster client is not a ``redis.Redis``, but it offers what the
    tools call (``scan_iter`` over every primary, pipelines split by slot,
    single-key commands), so it is handed out under the same type.
    """
    if cluster_enabled(config):
        return cast(redis.Redis, sync_cluster_client(config))
    pool = settings_of(config).build_pool(pool_cls=redis.BlockingConnectionPool, connection_cls=redis.Connection,
                                          ssl_connection_cls=redis.SSLConnection, retry_cls=Retry)
    return redis.Redis(connection_pool=pool)


def async_client(config: CacheConfig) -> aioredis.Redis:
    pool = settings_of(config).build_pool(pool_cls=aioredis.BlockingConnectionPool,
                                          connection_cls=aioredis.Connection,
                                          ssl_connection_cls=aioredis.SSLConnection, retry_cls=AsyncRetry)
    return aioredis.Redis(connection_pool=pool)
