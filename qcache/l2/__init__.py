"""The L2 tier: a bytes-only Redis store with pooling, retries, TLS and a circuit breaker.

:class:`RedisTier` (sync) and :class:`AsyncRedisTier` (asyncio), and their Redis Cluster
variants in :mod:`qcache.l2.cluster`, implement the
backend protocols of :mod:`qcache.l2.protocol`, as do the in-memory backends
of :mod:`qcache.l2.memory`, and only perform the Redis calls; everything
decided without the network (settings, batching, TTL conversion, pattern
checks, error translation, the breaker) lives in the small shared modules of
this package.
"""

from __future__ import annotations

from qcache.l2.aio import AsyncRedisTier
from qcache.l2.breaker import BreakerState, BreakerStats, CircuitBreaker
from qcache.l2.cluster import AsyncRedisClusterTier, RedisClusterTier
from qcache.l2.glob import escape_glob
from qcache.l2.memory import AsyncMemoryBackend, MemoryBackend
from qcache.l2.patterns import SCAN_COUNT
from qcache.l2.protocol import AsyncL2Backend, L2Backend, L2Op
from qcache.l2.responses import NO_EXPIRY, ServerInfo
from qcache.l2.settings import ConnectionSettings, TlsFiles
from qcache.l2.tier import RedisTier

__all__ = [
    "NO_EXPIRY",
    "SCAN_COUNT",
    "AsyncL2Backend",
    "AsyncMemoryBackend",
    "AsyncRedisClusterTier",
    "AsyncRedisTier",
    "BreakerState",
    "BreakerStats",
    "CircuitBreaker",
    "ConnectionSettings",
    "L2Backend",
    "L2Op",
    "MemoryBackend",
    "RedisClusterTier",
    "RedisTier",
    "ServerInfo",
    "TlsFiles",
    "escape_glob",
]
