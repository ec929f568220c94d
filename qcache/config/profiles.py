"""Named profiles: the settings the configuration guide prescribes per environment.

A profile is a layer between the built-in defaults and the user's own settings
(``.env`` file, process environment, explicit arguments all win over it). It is
chosen by ``ENVIRONMENT`` or by :meth:`CacheConfig.from_profile`.

Where the values come from: each profile copies the guide's ``.env.<profile>``
block, and adds every field that only the guide's per-environment override
table sets (for example ``testing`` turns metrics off and logs at DEBUG).
``staging`` has no ``.env`` block and comes from that table alone. Where the two
sources disagree, the ``.env`` block wins, because it is the literal file users
copy: ``development`` keeps ``CACHE_LEVEL=BOTH`` (the table says L1_MEMORY) and
``production`` keeps ``CACHE_LOG_LEVEL=INFO`` (the table says WARNING).

Secrets are never part of a profile. The guide's ``dev_password``,
``secure_production_password`` and ``your_base64_production_key`` are
placeholders; a profile leaves ``REDIS_PASSWORD`` and ``CACHE_ENCRYPTION_KEY``
unset, so validation keeps saying so until the user supplies real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from qcache.errors import ConfigError

#: Canonical profile names, in the order they are listed to users.
PROFILE_NAMES: tuple[str, ...] = (
    "development",
    "testing",
    "staging",
    "production",
    "high-performance",
)

#: Short or alternative spellings accepted wherever a profile name is.
PROFILE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "dev": "development",
        "test": "testing",
        "prod": "production",
        "high_performance": "high-performance",
    }
)

_DEVELOPMENT = {
    "CACHE_ENABLED": True,
    "CACHE_LEVEL": "BOTH",
    "CACHE_DEBUG_MODE": True,
    "CACHE_LOG_LEVEL": "DEBUG",
    "REDIS_HOST": "localhost",
    "REDIS_PORT": 6379,
    "MEMORY_CACHE_MAX_SIZE": 100,
    "MEMORY_CACHE_MAX_MEMORY_MB": 64,
    "CACHE_DEFAULT_TTL": 300,
    "EMBEDDING_CACHE_TTL": 600,
    "SEARCH_CACHE_TTL": 300,
    "CACHE_ENCRYPTION_ENABLED": False,
    "CACHE_PROJECT_ISOLATION": False,
    "CACHE_ACCESS_LOGGING": False,
}

_TESTING = {
    "CACHE_ENABLED": True,
    "CACHE_LEVEL": "L1_MEMORY",
    "CACHE_DEBUG_MODE": True,
    "REDIS_HOST": "localhost",
    "REDIS_PORT": 6380,
    "MEMORY_CACHE_MAX_SIZE": 50,
    "MEMORY_CACHE_MAX_MEMORY_MB": 32,
    "CACHE_DEFAULT_TTL": 60,
    "EMBEDDING_CACHE_TTL": 120,
    "SEARCH_CACHE_TTL": 60,
    "CACHE_ENCRYPTION_ENABLED": False,
    "CACHE_PROJECT_ISOLATION": True,
    # From the override table only:
    "CACHE_LOG_LEVEL": "DEBUG",
    "CACHE_METRICS_ENABLED": False,
}

_STAGING = {
    "CACHE_DEBUG_MODE": False,
    "CACHE_LOG_LEVEL": "INFO",
    "CACHE_LEVEL": "BOTH",
    "CACHE_DEFAULT_TTL": 1800,
    "CACHE_ENCRYPTION_ENABLED": True,
    "CACHE_PROJECT_ISOLATION": True,
}

_PRODUCTION = {
    "CACHE_ENABLED": True,
    "CACHE_LEVEL": "BOTH",
    "CACHE_DEBUG_MODE": False,
    "CACHE_LOG_LEVEL": "INFO",
    "REDIS_HOST": "redis.production.com",
    "REDIS_PORT": 6380,
    "REDIS_SSL_ENABLED": True,
    "REDIS_SSL_CERT_PATH": "/etc/ssl/certs/redis-client.crt",
    "REDIS_SSL_KEY_PATH": "/etc/ssl/private/redis-client.key",
    "REDIS_SSL_CA_CERT_PATH": "/etc/ssl/certs/ca.crt",
    "MEMORY_CACHE_MAX_SIZE": 10000,
    "MEMORY_CACHE_MAX_MEMORY_MB": 2048,
    "REDIS_MAX_CONNECTIONS": 50,
    "CACHE_DEFAULT_TTL": 3600,
    "EMBEDDING_CACHE_TTL": 7200,
    "SEARCH_CACHE_TTL": 1800,
    "PROJECT_CACHE_TTL": 3600,
    "FILE_CACHE_TTL": 1800,
    "CACHE_ENCRYPTION_ENABLED": True,
    "CACHE_PROJECT_ISOLATION": True,
    "CACHE_ACCESS_LOGGING": True,
    "SECURITY_AUDIT_ENABLED": True,
    "CACHE_METRICS_ENABLED": True,
    "CACHE_PERFORMANCE_MONITORING": True,
    "CACHE_HEALTH_CHECK_INTERVAL": 30,
}

_HIGH_PERFORMANCE = {
    "CACHE_ENABLED": True,
    "CACHE_LEVEL": "BOTH",
    "CACHE_WRITE_STRATEGY": "WRITE_BACK",
    "REDIS_HOST": "redis-cluster.internal",
    "REDIS_PORT": 6379,
    "REDIS_CLUSTER_ENABLED": True,
    "REDIS_MAX_CONNECTIONS": 100,
    "REDIS_CONNECTION_TIMEOUT": 2.0,
    "REDIS_SOCKET_TIMEOUT": 2.0,
    "MEMORY_CACHE_MAX_SIZE": 50000,
    "MEMORY_CACHE_MAX_MEMORY_MB": 8192,
    "MEMORY_CACHE_CLEANUP_INTERVAL": 60,
    "CACHE_BATCH_SIZE": 500,
    "CACHE_PARALLEL_OPERATIONS": 16,
    "CACHE_CONNECTION_POOL_SIZE": 50,
    "EMBEDDING_CACHE_TTL": 14400,
    "SEARCH_CACHE_TTL": 3600,
    "PROJECT_CACHE_TTL": 7200,
    "CACHE_COMPRESSION_ENABLED": True,
    "CACHE_COMPRESSION_ALGORITHM": "lz4",
}

_PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "development": MappingProxyType(_DEVELOPMENT),
        "testing": MappingProxyType(_TESTING),
        "staging": MappingProxyType(_STAGING),
        "production": MappingProxyType(_PRODUCTION),
        "high-performance": MappingProxyType(_HIGH_PERFORMANCE),
    }
)


def canonical_profile_name(name: str) -> str:
    """The canonical name for ``name`` (case-insensitive, aliases accepted).

    Raises ``ValueError`` naming the known profiles for anything else.
    """
    key = name.strip().lower()
    key = PROFILE_ALIASES.get(key, key)
    if key not in _PROFILES:
        aliases = ", ".join(f"{a}={c}" for a, c in PROFILE_ALIASES.items())
        raise ValueError(
            f"unknown profile; expected one of {', '.join(PROFILE_NAMES)} (aliases: {aliases})"
        )
    return key


def profile_values(name: str) -> Mapping[str, Any]:
    """The settings of profile ``name``, keyed by environment variable name.

    ``ENVIRONMENT`` is included, so loading a profile also records which one
    is active (production-only validation rules depend on it).
    """
    try:
        canonical = canonical_profile_name(name)
    except ValueError as exc:
        raise ConfigError(f"{name!r}: {exc}") from None
    return MappingProxyType({"ENVIRONMENT": canonical, **_PROFILES[canonical]})
