"""The configuration sections: frozen dataclasses, one declaration per setting.

Every field carries its environment variable and a one-line doc in
``dataclasses.field(metadata=...)``. That single declaration drives parsing
from the environment and ``.env`` files, ``qcache config show --format env``,
the generated ``.env`` templates and the documentation, so a setting cannot
exist in one of them and be missing from another.

Defaults are the configuration guide's documented values. Where the guide
gives none, the choice is documented on the field:

* ``REDIS_SSL_*_PATH`` default to unset (the guide's ``/path/to/...`` are
  placeholders);
* ``CACHE_COMPRESSION_ENABLED`` defaults to true, because the guide's
  per-type defaults already ask for compression of embeddings, search results
  and files; it is the master switch that can turn all of it off;
* ``CACHE_COMPRESSION_THRESHOLD`` (1024 bytes) and ``CACHE_TTL_JITTER`` (0.0)
  are additions the codec and the cache facade need;
* built-in cache types without a documented value: embedding ``max_size``
  10000; search and file ``encryption`` false; project ``compression`` false.

Sections are immutable: a change builds a new snapshot (see ``dynamic.py``),
so a reader holding a section never sees it change under its feet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from qcache.config.profiles import PROFILE_ALIASES, PROFILE_NAMES
from qcache.config.secret import Secret
from qcache.config.values import Choice, ValueKind, coerce, kind_of
from qcache.errors import ConfigError
from qcache.types import CacheLevel, WriteStrategy

LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
COMPRESSION_ALGORITHMS: tuple[str, ...] = ("none", "lz4", "zstd")

_CACHE_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def setting(
    default: Any,
    env: str,
    doc: str,
    *,
    positive: bool = False,
    normalize: Choice | None = None,
) -> Any:
    """A section field: its default, environment variable and one-line doc."""
    metadata: dict[str, Any] = {"env": env, "doc": doc}
    if positive:
        metadata["positive"] = True
    if normalize is not None:
        metadata["normalize"] = normalize
    return field(default=default, metadata=metadata)


_KINDS: dict[type, tuple[tuple[str, ValueKind], ...]] = {}


def field_kinds(cls: type) -> tuple[tuple[str, ValueKind], ...]:
    """``(field name, kind)`` for every field of section class ``cls`` (cached)."""
    kinds = _KINDS.get(cls)
    if kinds is None:
        kinds = _KINDS[cls] = tuple((f.name, kind_of(cls, f)) for f in fields(cls))
    return kinds


class _Section:
    """Shared constructor normalisation for the frozen section dataclasses."""

    def __post_init__(self) -> None:
        for name, kind in field_kinds(type(self)):
            value = getattr(self, name)
            try:
                normalized = coerce(kind, value)
            except ValueError as exc:
                raise ConfigError(f"{type(self).__name__}.{name}: {exc}") from None
            if normalized is not value:
                object.__setattr__(self, name, normalized)


@dataclass(frozen=True)
class CoreConfig(_Section):
    """Switches that shape the whole cache: on/off, tiers, write path, keys."""

    enabled: bool = setting(True, "CACHE_ENABLED", "Enable or disable the whole cache system")
    level: CacheLevel = setting(
        CacheLevel.BOTH, "CACHE_LEVEL", "Tiers in use: memory only, Redis only, or both"
    )
    write_strategy: WriteStrategy = setting(
        WriteStrategy.WRITE_THROUGH,
        "CACHE_WRITE_STRATEGY",
        "How writes reach the tiers (write-back batches Redis writes)",
    )
    default_ttl: int = setting(
        3600, "CACHE_DEFAULT_TTL", "Default time to live in seconds", positive=True
    )
    max_key_length: int = setting(
        250, "CACHE_MAX_KEY_LENGTH", "Longer keys are hashed to stay within this length"
    )
    key_prefix: str = setting(
        "codebase_rag", "CACHE_KEY_PREFIX", "Namespace prefix of every key this cache writes"
    )
    schema_version: str = setting(
        "",
        "CACHE_SCHEMA_VERSION",
        "Version of your code or data schema, part of every key: a new one starts from an empty cache "
        "(unset: none)",
    )
    environment: str | None = setting(
        None,
        "ENVIRONMENT",
        "Profile to apply under your own settings (unset: none)",
        normalize=Choice(PROFILE_NAMES, case="lower", aliases=PROFILE_ALIASES),
    )


@dataclass(frozen=True)
class RedisConfig(_Section):
    """How to reach the L2 tier.

    ``url`` (``REDIS_URL``), when set, wins over host, port, db and password for
    connecting: it is the one form that also expresses TLS (``rediss://``) and
    unix sockets. It is a :class:`Secret` because URLs often embed a password.
    """

    host: str = setting("localhost", "REDIS_HOST", "Redis server hostname")
    port: int = setting(6379, "REDIS_PORT", "Redis server port")
    password: Secret | None = setting(None, "REDIS_PASSWORD", "Redis authentication password")
    username: str | None = setting(
        None, "REDIS_USERNAME", "Redis ACL user to connect as, with REDIS_PASSWORD (unset: the default user)"
    )
    db: int = setting(0, "REDIS_DB", "Redis database number")
    max_connections: int = setting(10, "REDIS_MAX_CONNECTIONS", "Maximum connections in the pool")
    connection_timeout: float = setting(
        5.0, "REDIS_CONNECTION_TIMEOUT", "Connection timeout in seconds"
    )
    socket_timeout: float = setting(5.0, "REDIS_SOCKET_TIMEOUT", "Socket timeout in seconds")
    retry_on_timeout: bool = setting(
        True, "REDIS_RETRY_ON_TIMEOUT", "Retry a command that timed out"
    )
    max_retries: int = setting(3, "REDIS_MAX_RETRIES", "Maximum retry attempts per command")
    l2_timeout_ms: int = setting(
        250,
        "CACHE_L2_TIMEOUT_MS",
        "Longest a caller waits for one Redis round trip, retries included (ms); "
        "caps REDIS_SOCKET_TIMEOUT and REDIS_CONNECTION_TIMEOUT, and a timeout is a breaker failure",
    )
    breaker_threshold: int = setting(
        5, "CACHE_BREAKER_THRESHOLD", "Consecutive Redis failures that open the circuit breaker"
    )
    breaker_cooldown_ms: int = setting(
        1000,
        "CACHE_BREAKER_COOLDOWN_MS",
        "How long an open breaker skips Redis before one call probes it again (ms)",
    )
    ssl_enabled: bool = setting(False, "REDIS_SSL_ENABLED", "Connect with TLS")
    ssl_cert_path: str | None = setting(
        None, "REDIS_SSL_CERT_PATH", "Client certificate file (TLS client authentication)"
    )
    ssl_key_path: str | None = setting(None, "REDIS_SSL_KEY_PATH", "Client private key file")
    ssl_ca_cert_path: str | None = setting(
        None, "REDIS_SSL_CA_CERT_PATH", "CA certificate file used to verify the server"
    )
    url: Secret | None = setting(
        None,
        "REDIS_URL",
        "Connection URL (redis://, rediss://, unix://); wins over host/port/db/password",
    )
    cluster_enabled: bool = setting(
        False,
        "REDIS_CLUSTER_ENABLED",
        "L2 is a Redis Cluster (redis-py's RedisCluster); REDIS_HOST/REDIS_PORT or REDIS_URL name a seed node",
    )
    cluster_nodes: str = setting(
        "",
        "REDIS_CLUSTER_NODES",
        "Cluster seed nodes as host:port,host:port (with REDIS_CLUSTER_ENABLED; instead of REDIS_HOST/REDIS_PORT)",
    )


@dataclass(frozen=True)
class MemoryConfig(_Section):
    """The in-process L1 tier: its bounds, default TTL and eviction policy."""

    max_size: int = setting(1000, "MEMORY_CACHE_MAX_SIZE", "Maximum number of entries")
    max_memory_mb: int = setting(256, "MEMORY_CACHE_MAX_MEMORY_MB", "Maximum memory use in MB")
    ttl: int = setting(
        3600,
        "MEMORY_CACHE_TTL",
        "Longest time an in-memory copy of a Redis entry lives, seconds (memory-only entries keep their own TTL)",
        positive=True,
    )
    eviction_policy: str = setting(
        "LRU",
        "MEMORY_CACHE_EVICTION_POLICY",
        "Eviction policy from the registry: LRU, LFU, FIFO, RANDOM, SIEVE, S3_FIFO, "
        "ARC, W_TINYLFU, ADAPTIVE, or DEFAULT (the recommended one, ADAPTIVE)",
        normalize=Choice((), case="upper"),
    )
    cleanup_interval: int = setting(
        300, "MEMORY_CACHE_CLEANUP_INTERVAL", "Seconds between sweeps of expired entries"
    )
    coherence: bool = setting(
        True,
        "MEMORY_CACHE_COHERENCE",
        "With CACHE_LEVEL=BOTH, drop the in-memory copy of a key as soon as it changes in Redis, "
        "whoever changed it (Redis client tracking; one more connection per cache)",
    )


@dataclass(frozen=True)
class CacheTypeConfig(_Section):
    """Settings of one cache type (``embedding``, ``search``, ...).

    Environment variables are ``{TYPE}_CACHE_TTL``, ``{TYPE}_CACHE_MAX_SIZE``,
    ``{TYPE}_CACHE_COMPRESSION`` and ``{TYPE}_CACHE_ENCRYPTION``; the field
    metadata holds the suffix. ``max_size`` bounds the entries of this type in
    the memory tier. ``compression`` opts the type in, but only while
    ``CACHE_COMPRESSION_ENABLED`` (the master switch) is on; ``encryption``
    is the opposite way round: the type is encrypted when either its own flag
    or ``CACHE_ENCRYPTION_ENABLED`` is on, so a global switch can never
    silently decrypt data someone marked sensitive. See
    :meth:`ConfigSnapshot.compresses` and :meth:`ConfigSnapshot.encrypts`.
    """

    ttl: int = field(
        default=3600,
        metadata={"env_suffix": "TTL", "doc": "time to live in seconds", "positive": True},
    )
    max_size: int = field(
        default=1000,
        metadata={"env_suffix": "MAX_SIZE", "doc": "maximum entries in the memory tier"},
    )
    compression: bool = field(
        default=False,
        metadata={
            "env_suffix": "COMPRESSION",
            "doc": "compress values (needs CACHE_COMPRESSION_ENABLED)",
        },
    )
    encryption: bool = field(
        default=False,
        metadata={"env_suffix": "ENCRYPTION", "doc": "encrypt values (needs CACHE_ENCRYPTION_KEY)"},
    )


#: The cache types that exist out of the box, with the guide's settings.
BUILTIN_CACHE_TYPES: Mapping[str, CacheTypeConfig] = MappingProxyType(
    {
        "embedding": CacheTypeConfig(ttl=7200, max_size=10000, compression=True, encryption=False),
        "search": CacheTypeConfig(ttl=1800, max_size=5000, compression=True, encryption=False),
        "project": CacheTypeConfig(ttl=3600, max_size=1000, compression=False, encryption=False),
        "file": CacheTypeConfig(ttl=1800, max_size=10000, compression=True, encryption=False),
    }
)


def check_cache_type_name(name: str) -> str:
    """``name`` if it is a valid cache type name (lower-case identifier)."""
    if not isinstance(name, str) or not _CACHE_TYPE_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid cache type name {name!r}: use a lower-case identifier such as 'graph'"
        )
    return name


def cache_type_env(type_name: str, suffix: str) -> str:
    """Environment variable of one cache type setting, e.g. ``SEARCH_CACHE_TTL``."""
    return f"{type_name.upper()}_CACHE_{suffix}"


@dataclass(frozen=True)
class SecurityConfig(_Section):
    """Encryption at rest, tenant isolation and auditing."""

    encryption_enabled: bool = setting(
        False, "CACHE_ENCRYPTION_ENABLED", "Encrypt every cached value"
    )
    encryption_required: bool = setting(
        False,
        "CACHE_ENCRYPTION_REQUIRED",
        "Types that encrypt refuse unencrypted entries (a downgrade planted in Redis); "
        "turn on once entries written before encryption was on have expired",
    )
    encryption_key: Secret | None = setting(
        None,
        "CACHE_ENCRYPTION_KEY",
        "Base64 of 32 random bytes (AES-256); secret, never commit it",
    )
    key_store_path: str = setting(
        ".cache_keys", "ENCRYPTION_KEY_STORE_PATH", "Directory holding rotated keys"
    )
    key_rotation_interval: int = setting(
        604800, "ENCRYPTION_KEY_ROTATION_INTERVAL", "Seconds between key rotations (7 days)"
    )
    project_isolation: bool = setting(
        True, "CACHE_PROJECT_ISOLATION", "Keep each project's keys in its own namespace"
    )
    session_timeout: int = setting(3600, "CACHE_SESSION_TIMEOUT", "Session timeout in seconds")
    access_logging: bool = setting(True, "CACHE_ACCESS_LOGGING", "Log cache access")
    audit_enabled: bool = setting(True, "SECURITY_AUDIT_ENABLED", "Enable security auditing")
    audit_log_path: str = setting(
        "/var/log/cache-security.log", "SECURITY_AUDIT_LOG_PATH", "Security audit log file"
    )
    audit_include_keys: bool = setting(
        False, "SECURITY_AUDIT_INCLUDE_KEYS", "Write keys themselves to the audit trail, not only their hashes"
    )
    failed_access_threshold: int = setting(
        5, "FAILED_ACCESS_THRESHOLD", "Failed attempts before an alert"
    )
    failed_access_window: int = setting(
        300, "FAILED_ACCESS_WINDOW", "Window in seconds for counting failed attempts"
    )


@dataclass(frozen=True)
class PerformanceConfig(_Section):
    """Batching, concurrency, pooling, compression and TTL spreading."""

    batch_size: int = setting(100, "CACHE_BATCH_SIZE", "Keys per batch operation")
    parallel_operations: int = setting(4, "CACHE_PARALLEL_OPERATIONS", "Concurrent operations")
    connection_pool_size: int = setting(10, "CACHE_CONNECTION_POOL_SIZE", "Connection pool size")
    compression_enabled: bool = setting(
        True,
        "CACHE_COMPRESSION_ENABLED",
        "Master switch for compression of the cache types that ask for it",
    )
    compression_algorithm: str = setting(
        "lz4",
        "CACHE_COMPRESSION_ALGORITHM",
        "Compression algorithm (zstd needs the zstandard package)",
        normalize=Choice(COMPRESSION_ALGORITHMS, case="lower"),
    )
    compression_threshold_bytes: int = setting(
        1024,
        "CACHE_COMPRESSION_THRESHOLD",
        "Values smaller than this many bytes are stored uncompressed",
    )
    ttl_jitter: float = setting(
        0.0,
        "CACHE_TTL_JITTER",
        "Spread each TTL by up to this fraction (0 <= x < 1) so keys do not expire together",
    )


@dataclass(frozen=True)
class MonitoringConfig(_Section):
    """Metrics, health checks, alert thresholds and logging."""

    metrics_enabled: bool = setting(True, "CACHE_METRICS_ENABLED", "Collect metrics")
    health_check_interval: int = setting(
        60, "CACHE_HEALTH_CHECK_INTERVAL", "Seconds between health checks"
    )
    stats_collection_interval: int = setting(
        300, "CACHE_STATS_COLLECTION_INTERVAL", "Seconds between statistics collections"
    )
    performance_monitoring: bool = setting(
        True, "CACHE_PERFORMANCE_MONITORING", "Record operation latencies"
    )
    latency_threshold_ms: float = setting(
        50.0, "CACHE_LATENCY_THRESHOLD", "Latency alert threshold in milliseconds"
    )
    hit_rate_threshold: float = setting(
        0.6, "CACHE_HIT_RATE_THRESHOLD", "Minimum acceptable hit rate (0..1)"
    )
    debug_mode: bool = setting(False, "CACHE_DEBUG_MODE", "Enable debug mode")
    log_level: str = setting(
        "INFO",
        "CACHE_LOG_LEVEL",
        "Log level of the qcache loggers",
        normalize=Choice(LOG_LEVELS, case="upper"),
    )
    log_operations: bool = setting(
        False, "CACHE_LOG_OPERATIONS", "Log individual cache operations (key hashes, never keys or values)"
    )
    access_sample_rate: float = setting(
        0.0,
        "CACHE_ACCESS_SAMPLE_RATE",
        "Share of keys whose reads are sampled for `qcache maintenance` size advice (0: off; 0.01 is typical)",
    )


#: Section attribute name -> class, in display order (cache types sit after memory).
SECTIONS: Mapping[str, type] = MappingProxyType(
    {
        "core": CoreConfig,
        "redis": RedisConfig,
        "memory": MemoryConfig,
        "security": SecurityConfig,
        "performance": PerformanceConfig,
        "monitoring": MonitoringConfig,
    }
)


def _freeze_types(types: Mapping[str, CacheTypeConfig]) -> Mapping[str, CacheTypeConfig]:
    frozen: dict[str, CacheTypeConfig] = {}
    for name, type_config in types.items():
        check_cache_type_name(name)
        if not isinstance(type_config, CacheTypeConfig):
            raise ConfigError(
                f"cache type {name!r}: expected a CacheTypeConfig, got {type(type_config).__name__}"
            )
        frozen[name] = type_config
    return MappingProxyType(frozen)


@dataclass(frozen=True, eq=True)
class ConfigSnapshot:
    """One consistent, immutable view of the whole configuration.

    ``CacheConfig`` swaps whole snapshots, so code that needs several settings
    to agree (say the codec reading both the compression algorithm and the
    encryption key) takes ``config.snapshot()`` once and reads from it.
    """

    core: CoreConfig = field(default_factory=CoreConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    cache_types: Mapping[str, CacheTypeConfig] = field(
        default_factory=lambda: BUILTIN_CACHE_TYPES
    )
    security: SecurityConfig = field(default_factory=SecurityConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    __hash__ = None  # type: ignore[assignment]  # holds a mapping

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(
                    f"{name}: expected a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        object.__setattr__(self, "cache_types", _freeze_types(self.cache_types))

    def cache_type(self, name: str) -> CacheTypeConfig:
        """Settings of cache type ``name``; ConfigError naming the known ones otherwise."""
        try:
            return self.cache_types[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.cache_types))
            raise ConfigError(f"unknown cache type {name!r}; known: {known}") from None

    def compresses(self, type_name: str) -> bool:
        """Whether values of ``type_name`` are compressed (type flag AND master switch)."""
        perf = self.performance
        return (
            perf.compression_enabled
            and perf.compression_algorithm != "none"
            and self.cache_type(type_name).compression
        )

    def encrypts(self, type_name: str) -> bool:
        """Whether values of ``type_name`` are encrypted (type flag OR global switch)."""
        return self.security.encryption_enabled or self.cache_type(type_name).encryption
