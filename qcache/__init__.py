"""qcache: a two-tier query cache (in-process L1 in front of Redis L2) for Python services.

    from qcache import QueryCache, CacheConfig

    with QueryCache(CacheConfig.from_env()) as cache:
        cache.set("k", value, ttl=60, cache_type="search")
        cache.get("k", cache_type="search")
"""

from qcache.cache import AsyncQueryCache, QueryCache
from qcache.config import CacheConfig
from qcache.errors import (
    AccessDenied,
    BackendError,
    CacheClosedError,
    CircuitOpenError,
    ConfigError,
    IntegrityError,
    QCacheError,
    SerializationError,
)
from qcache.types import CacheLevel, WriteStrategy

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AsyncQueryCache",
    "BackendError",
    "CacheClosedError",
    "CacheConfig",
    "CacheLevel",
    "CircuitOpenError",
    "ConfigError",
    "IntegrityError",
    "QCacheError",
    "QueryCache",
    "SerializationError",
    "WriteStrategy",
    "__version__",
]
