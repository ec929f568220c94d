"""Validation: every problem of a configuration at once, each with a severity.

The rules are those of the configuration guide's validator, with its
severities (its ``WARNING:`` messages are warnings, the rest errors), plus the
checks a production user expects (port range, unreadable TLS files, a key that
AES-256 cannot use, an unavailable compression library, ...). Each issue has a
stable ``code`` so tools and tests can match on it instead of on wording.

A rule never raises: a value of the wrong type is reported once as
``invalid_type`` and skipped by the range rules, and a rule that fails anyway
is reported as ``validator_failed`` rather than hiding the other results.
Messages never contain a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from qcache.config.schema import FieldIndex
from qcache.config.secret import Secret
from qcache.config.sections import ConfigSnapshot, cache_type_env
from qcache.config.values import type_ok
from qcache.types import CacheLevel, WriteStrategy

AES_KEY_BYTES = 32
MIN_KEY_LENGTH = 32
MIN_MAX_KEY_LENGTH = 32
LARGE_MEMORY_MB = 8192
LARGE_BATCH_SIZE = 1000
HIGH_PARALLELISM = 32
_PORT_RANGE = range(1, 65536)
_REDIS_URL_SCHEMES = ("redis", "rediss", "unix")
# Glob characters would turn the prefix into a pattern when keys are scanned.
_PREFIX_FORBIDDEN = frozenset("*?[]\\ \t\r\n")


class Severity(str, Enum):
    """How bad an issue is: errors stop the cache from starting, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class ConfigIssue:
    """One validation finding.

    ``code`` is a stable snake_case identifier, ``field`` the environment
    variable the issue is about (None when it concerns several).
    """

    severity: Severity
    code: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.severity.value}: {where}{self.message} [{self.code}]"


def _error(code: str, message: str, field: str | None = None) -> ConfigIssue:
    return ConfigIssue(Severity.ERROR, code, message, field)


def _warning(code: str, message: str, field: str | None = None) -> ConfigIssue:
    return ConfigIssue(Severity.WARNING, code, message, field)


def _number(value: Any) -> float | None:
    """``value`` as a number, or None for anything else (already reported by type checks)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _at_most(value: Any, bound: float) -> bool:
    number = _number(value)
    return number is not None and number <= bound


def _above(value: Any, bound: float) -> bool:
    number = _number(value)
    return number is not None and number > bound


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _secret(value: Any) -> str | None:
    return value.reveal() if isinstance(value, Secret) and value else None


Rule = Callable[[ConfigSnapshot], Iterator[ConfigIssue]]

_SCHEMA_VERSION = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


def _types(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    for spec in FieldIndex.for_snapshot(snapshot):
        value = spec.get(snapshot)
        if not type_ok(spec.kind, value):
            # Show the value's type only: the value itself may be a secret.
            yield _error(
                "invalid_type",
                f"{spec.path} must be {spec.kind.hint()}, not a {type(value).__name__}",
                spec.env,
            )


def _core(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    core = snapshot.core
    if _at_most(core.default_ttl, 0):
        yield _error(
            "default_ttl_not_positive", "Default TTL must be positive", "CACHE_DEFAULT_TTL"
        )
    if _number(core.max_key_length) is not None and core.max_key_length < MIN_MAX_KEY_LENGTH:
        yield _error(
            "max_key_length_too_small",
            f"Maximum key length must be at least {MIN_MAX_KEY_LENGTH} "
            "(long keys are replaced by a hash that must fit)",
            "CACHE_MAX_KEY_LENGTH",
        )
    prefix = _text(core.key_prefix)
    if prefix is not None:
        if not prefix:
            yield _error(
                "key_prefix_empty",
                "Key prefix must not be empty: clearing the cache would reach keys it does not own",
                "CACHE_KEY_PREFIX",
            )
        elif _PREFIX_FORBIDDEN & set(prefix):
            yield _error(
                "key_prefix_invalid",
                "Key prefix must not contain whitespace, backslashes or glob characters (* ? [ ])",
                "CACHE_KEY_PREFIX",
            )
        if _number(core.max_key_length) is not None and len(prefix) >= core.max_key_length:
            yield _error(
                "key_prefix_too_long",
                "Key prefix is as long as the maximum key length",
                "CACHE_KEY_PREFIX",
            )
    version = _text(core.schema_version)
    if version and not _SCHEMA_VERSION.fullmatch(version):
        yield _error(
            "schema_version_invalid",
            "Schema version must be 1-32 letters, digits, '_', '.' or '-'",
            "CACHE_SCHEMA_VERSION",
        )
    strategy = core.write_strategy
    if (
        core.level is CacheLevel.L1_MEMORY
        and isinstance(strategy, WriteStrategy)
        and strategy is not WriteStrategy.WRITE_THROUGH
    ):
        yield _warning(
            "write_strategy_ignored",
            f"Write strategy {strategy.value} has no effect with CACHE_LEVEL=L1_MEMORY",
            "CACHE_WRITE_STRATEGY",
        )


def _redis_has_password(snapshot: ConfigSnapshot) -> bool:
    if _secret(snapshot.redis.password):
        return True
    url = _secret(snapshot.redis.url)
    if url:
        try:
            return bool(urlsplit(url).password)
        except ValueError:
            return False
    return False


def _redis(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    yield from redis_issues(snapshot.redis)
    if not _redis_has_password(snapshot):
        yield _warning(
            "redis_password_missing", "Redis password not set - security risk", "REDIS_PASSWORD"
        )


def _revealed(value: Any) -> str | None:
    """The clear text of a secret setting (anything with ``reveal()``, or a plain str); None when unset."""
    if isinstance(value, str):
        return value or None
    reveal = getattr(value, "reveal", None)
    text = reveal() if callable(reveal) else None
    return text if isinstance(text, str) and text else None


def redis_issues(redis: Any) -> Iterator[ConfigIssue]:
    """Every error in a Redis section (``config.redis``, or anything with its attribute names).

    The one place Redis settings are checked: :meth:`CacheConfig.validate`
    reports these, and the L2 tier refuses to build a pool from settings
    that have any.
    """
    url = _revealed(redis.url)
    if url is None and isinstance(redis.host, str) and not redis.host:
        yield _error("redis_host_empty", "Redis host must not be empty", "REDIS_HOST")
    if _at_most(redis.connection_timeout, 0):
        yield _error(
            "redis_connection_timeout_not_positive",
            "Redis connection timeout must be positive",
            "REDIS_CONNECTION_TIMEOUT",
        )
    if _at_most(redis.max_connections, 0):
        yield _error(
            "redis_max_connections_not_positive",
            "Redis max connections must be positive",
            "REDIS_MAX_CONNECTIONS",
        )
    if redis.ssl_enabled is True:
        if not _text(redis.ssl_cert_path):
            yield _error(
                "redis_ssl_cert_path_missing",
                "SSL enabled but no certificate path provided",
                "REDIS_SSL_CERT_PATH",
            )
        if bool(_text(redis.ssl_cert_path)) != bool(_text(redis.ssl_key_path)):
            yield _error(
                "redis_ssl_cert_and_key_unpaired",
                "SSL certificate and key paths must be set together",
                "REDIS_SSL_KEY_PATH",
            )
        for attr, env, code, label in (
            ("ssl_cert_path", "REDIS_SSL_CERT_PATH", "redis_ssl_cert_not_found", "SSL certificate"),
            ("ssl_key_path", "REDIS_SSL_KEY_PATH", "redis_ssl_key_not_found", "SSL key"),
            ("ssl_ca_cert_path", "REDIS_SSL_CA_CERT_PATH", "redis_ssl_ca_cert_not_found",
             "SSL CA certificate"),
        ):
            path = _text(getattr(redis, attr))
            if path and not os.path.isfile(path):
                yield _error(code, f"{label} not found: {path}", env)
    port = _number(redis.port)
    if port is not None and port not in _PORT_RANGE:
        yield _error(
            "redis_port_out_of_range", "Redis port must be between 1 and 65535", "REDIS_PORT"
        )
    if _number(redis.db) is not None and redis.db < 0:
        yield _error("redis_db_negative", "Redis database number must not be negative", "REDIS_DB")
    if _at_most(redis.socket_timeout, 0):
        yield _error(
            "redis_socket_timeout_not_positive",
            "Redis socket timeout must be positive",
            "REDIS_SOCKET_TIMEOUT",
        )
    for value, env, what in (
        (redis.l2_timeout_ms, "CACHE_L2_TIMEOUT_MS", "L2 timeout"),
        (redis.breaker_threshold, "CACHE_BREAKER_THRESHOLD", "Breaker threshold"),
        (redis.breaker_cooldown_ms, "CACHE_BREAKER_COOLDOWN_MS", "Breaker cool-down"),
    ):
        if _at_most(value, 0):
            yield _error(f"{env.lower()}_not_positive", f"{what} must be positive", env)
    if _number(redis.max_retries) is not None and redis.max_retries < 0:
        yield _error(
            "redis_max_retries_negative",
            "Redis max retries must not be negative",
            "REDIS_MAX_RETRIES",
        )
    yield from _cluster_issues(redis, url)
    if url is not None:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in _REDIS_URL_SCHEMES:
            # The URL itself is never shown: it may carry a password.
            yield _error(
                "redis_url_invalid",
                "Redis URL must start with redis://, rediss:// or unix://",
                "REDIS_URL",
            )
        elif redis.ssl_enabled is True and scheme != "rediss":
            yield _error(
                "redis_url_not_tls",
                "REDIS_SSL_ENABLED is true but REDIS_URL does not use rediss://",
                "REDIS_URL",
            )
        if scheme in ("redis", "rediss"):
            yield from _url_address_issues(url)


def _url_address_issues(url: str) -> Iterator[ConfigIssue]:
    """A ``redis://`` URL's port and database, as redis-py will read them (the URL is never shown)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        port = -1
    if port is not None and port not in _PORT_RANGE:
        yield _error("redis_url_port_invalid", "REDIS_URL has a port that is not a number from 1 to 65535",
                     "REDIS_URL")
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        yield _error("redis_url_db_invalid", "REDIS_URL's path must be a database number, such as /0",
                     "REDIS_URL")


def cluster_seed_nodes(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (REDIS_CLUSTER_NODES) as pairs; ``ValueError`` naming the bad entry."""
    nodes: list[tuple[str, int]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")  # IPv6 literals may come bracketed
        if not sep or not host or not port.isdigit() or int(port) not in _PORT_RANGE:
            raise ValueError(f"{entry!r} is not host:port")
        nodes.append((host, int(port)))
    return nodes


def _cluster_issues(redis: Any, url: str | None) -> Iterator[ConfigIssue]:
    """Redis Cluster settings: seed nodes that parse, and no database other than 0."""
    enabled = getattr(redis, "cluster_enabled", False) is True
    nodes = getattr(redis, "cluster_nodes", "") or ""
    if not isinstance(nodes, str):
        return
    try:
        cluster_seed_nodes(nodes)
    except ValueError as exc:
        yield _error("redis_cluster_nodes_invalid", f"Redis cluster nodes: {exc}", "REDIS_CLUSTER_NODES")
    if not enabled:
        if nodes.strip():
            yield _warning(
                "redis_cluster_nodes_unused",
                "REDIS_CLUSTER_NODES is set but REDIS_CLUSTER_ENABLED is false: the nodes are ignored",
                "REDIS_CLUSTER_NODES",
            )
        return
    if _number(redis.db) is not None and redis.db != 0:
        yield _error("redis_cluster_db", "Redis Cluster has only database 0: REDIS_DB must be 0", "REDIS_DB")
    if url is not None and url.startswith("unix:"):
        yield _error("redis_cluster_unix_url", "a Redis Cluster is reached over TCP, not a unix socket",
                     "REDIS_URL")


def _memory(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    memory = snapshot.memory
    if _at_most(memory.max_memory_mb, 0):
        yield _error(
            "memory_max_memory_not_positive",
            "Memory cache max memory must be positive",
            "MEMORY_CACHE_MAX_MEMORY_MB",
        )
    if _at_most(memory.max_size, 0):
        yield _error(
            "memory_max_size_not_positive",
            "Memory cache max size must be positive",
            "MEMORY_CACHE_MAX_SIZE",
        )
    if _above(memory.max_memory_mb, LARGE_MEMORY_MB):
        yield _warning(
            "memory_allocation_very_large",
            "Memory cache allocation very large (>8GB)",
            "MEMORY_CACHE_MAX_MEMORY_MB",
        )
    if _at_most(memory.cleanup_interval, 0):
        yield _error(
            "memory_cleanup_interval_not_positive",
            "Memory cleanup interval must be positive",
            "MEMORY_CACHE_CLEANUP_INTERVAL",
        )
    if _at_most(memory.ttl, 0):
        yield _error(
            "memory_ttl_not_positive", "Memory cache TTL must be positive", "MEMORY_CACHE_TTL"
        )
    policy = _text(memory.eviction_policy)
    if policy is not None:
        # Imported here: the policy registry is only needed when validating.
        from qcache.memory.policies import available_policies, resolve_policy_name

        try:
            resolve_policy_name(policy)
        except ValueError:
            known = ", ".join([*available_policies(), "DEFAULT"])
            yield _error(
                "memory_eviction_policy_unknown",
                f"Unknown eviction policy {policy!r}; available: {known}",
                "MEMORY_CACHE_EVICTION_POLICY",
            )


def _cache_types(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    for name, type_config in snapshot.cache_types.items():
        if _at_most(type_config.ttl, 0):
            yield _error(
                "cache_type_ttl_not_positive",
                f"TTL of cache type {name!r} must be positive",
                cache_type_env(name, "TTL"),
            )
        if _at_most(type_config.max_size, 0):
            yield _error(
                "cache_type_max_size_not_positive",
                f"Max size of cache type {name!r} must be positive",
                cache_type_env(name, "MAX_SIZE"),
            )


def is_valid_aes_key(key: str) -> bool:
    """Whether ``key`` is base64 (standard or URL-safe) of exactly 32 bytes."""
    text = key.strip()
    for candidate in (text, text.replace("-", "+").replace("_", "/")):
        try:
            if len(base64.b64decode(candidate, validate=True)) == AES_KEY_BYTES:
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def _security(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    security = snapshot.security
    key = _secret(security.encryption_key)
    if security.encryption_enabled is True:
        if not key:
            yield _error(
                "encryption_key_missing",
                "Encryption enabled but no encryption key provided",
                "CACHE_ENCRYPTION_KEY",
            )
        if key and len(key) < MIN_KEY_LENGTH:
            yield _warning(
                "encryption_key_too_short",
                "Encryption key appears to be too short",
                "CACHE_ENCRYPTION_KEY",
            )
    elif not key:
        encrypted = sorted(n for n, t in snapshot.cache_types.items() if t.encryption is True)
        if encrypted:
            yield _error(
                "encryption_key_missing",
                f"Cache types {', '.join(encrypted)} are encrypted but no encryption key provided",
                "CACHE_ENCRYPTION_KEY",
            )
    if key and not is_valid_aes_key(key):
        yield _error(
            "encryption_key_invalid",
            "Encryption key must be the base64 encoding of exactly 32 random bytes (AES-256); "
            'generate one with: python -c "import base64, os; '
            'print(base64.b64encode(os.urandom(32)).decode())"',
            "CACHE_ENCRYPTION_KEY",
        )
    encrypting = security.encryption_enabled is True or any(
        t.encryption is True for t in snapshot.cache_types.values()
    )
    if key and is_valid_aes_key(key) and encrypting and security.key_store_path and snapshot.core.level.uses_l2:
        # Rotated data keys are generated per key store directory: processes that do not
        # share it cannot read each other's entries (they miss, never read wrong data).
        yield _warning(
            "encryption_key_store_per_host",
            f"Encrypted entries use rotated data keys kept in ENCRYPTION_KEY_STORE_PATH "
            f"({security.key_store_path}); other hosts can read them only if they share that "
            "directory. Leave it empty to encrypt with CACHE_ENCRYPTION_KEY itself.",
            "ENCRYPTION_KEY_STORE_PATH",
        )
    store_path = _text(security.key_store_path)
    shared = key and is_valid_aes_key(key) and encrypting and snapshot.core.level.uses_l2
    if shared and store_path and not os.path.isabs(os.path.expanduser(store_path)):
        # A relative directory is resolved against each process's working directory: two processes
        # of one service started from different places get different stores and miss each other.
        yield _warning(
            "encryption_key_store_relative",
            f"ENCRYPTION_KEY_STORE_PATH ({store_path}) is relative: processes started from different "
            "working directories use different key stores and miss each other's encrypted entries; "
            "give an absolute path",
            "ENCRYPTION_KEY_STORE_PATH",
        )
    if security.encryption_required is True and not encrypting:
        yield _warning(
            "encryption_required_unused",
            "CACHE_ENCRYPTION_REQUIRED is on but no cache type encrypts, so it refuses nothing",
            "CACHE_ENCRYPTION_REQUIRED",
        )
    if snapshot.core.environment == "production":
        if security.encryption_enabled is False:
            yield _warning(
                "production_encryption_disabled",
                "Encryption disabled in production",
                "CACHE_ENCRYPTION_ENABLED",
            )
        if security.project_isolation is False:
            yield _warning(
                "production_project_isolation_disabled",
                "Project isolation disabled in production",
                "CACHE_PROJECT_ISOLATION",
            )
        if security.access_logging is False:
            yield _warning(
                "production_access_logging_disabled",
                "Access logging disabled in production",
                "CACHE_ACCESS_LOGGING",
            )
        if snapshot.monitoring.debug_mode is True:
            yield _warning(
                "production_debug_mode", "Debug mode enabled in production", "CACHE_DEBUG_MODE"
            )
    for attr, env, label in (
        ("key_rotation_interval", "ENCRYPTION_KEY_ROTATION_INTERVAL", "Key rotation interval"),
        ("session_timeout", "CACHE_SESSION_TIMEOUT", "Session timeout"),
        ("failed_access_threshold", "FAILED_ACCESS_THRESHOLD", "Failed access threshold"),
        ("failed_access_window", "FAILED_ACCESS_WINDOW", "Failed access window"),
    ):
        if _at_most(getattr(security, attr), 0):
            yield _error(f"{attr}_not_positive", f"{label} must be positive", env)


def zstd_available() -> bool:
    """Whether the optional ``zstandard`` package can be imported."""
    return importlib.util.find_spec("zstandard") is not None


def _performance(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    perf = snapshot.performance
    if _at_most(perf.batch_size, 0):
        yield _error("batch_size_not_positive", "Batch size must be positive", "CACHE_BATCH_SIZE")
    if _at_most(perf.parallel_operations, 0):
        yield _error(
            "parallel_operations_not_positive",
            "Parallel operations must be positive",
            "CACHE_PARALLEL_OPERATIONS",
        )
    if _above(perf.batch_size, LARGE_BATCH_SIZE):
        yield _warning(
            "batch_size_large", "Large batch size may impact performance", "CACHE_BATCH_SIZE"
        )
    if _above(perf.parallel_operations, HIGH_PARALLELISM):
        yield _warning(
            "parallel_operations_high",
            "High parallel operations may overwhelm system",
            "CACHE_PARALLEL_OPERATIONS",
        )
    if _at_most(perf.connection_pool_size, 0):
        yield _error(
            "connection_pool_size_not_positive",
            "Connection pool size must be positive",
            "CACHE_CONNECTION_POOL_SIZE",
        )
    max_connections = snapshot.redis.max_connections
    if _above(max_connections, 0) and _above(perf.connection_pool_size, max_connections):
        yield _warning(
            "connection_pool_size_above_max",
            f"Only REDIS_MAX_CONNECTIONS ({max_connections}) connections are opened ahead of traffic: "
            "the pool never holds more",
            "CACHE_CONNECTION_POOL_SIZE",
        )
    if (
        perf.compression_enabled is True
        and perf.compression_algorithm == "zstd"
        and not zstd_available()
    ):
        yield _error(
            "compression_zstd_unavailable",
            "Compression algorithm zstd needs the zstandard package (pip install 'qcache[zstd]')",
            "CACHE_COMPRESSION_ALGORITHM",
        )
    threshold = _number(perf.compression_threshold_bytes)
    if threshold is not None and threshold < 0:
        yield _error(
            "compression_threshold_negative",
            "Compression threshold must not be negative",
            "CACHE_COMPRESSION_THRESHOLD",
        )
    jitter = _number(perf.ttl_jitter)
    if jitter is not None and not 0 <= jitter < 1:
        yield _error(
            "ttl_jitter_out_of_range",
            "TTL jitter must be a fraction with 0 <= jitter < 1",
            "CACHE_TTL_JITTER",
        )


def _monitoring(snapshot: ConfigSnapshot) -> Iterator[ConfigIssue]:
    monitoring = snapshot.monitoring
    sample_rate = _number(monitoring.access_sample_rate)
    if sample_rate is not None and not 0 <= sample_rate <= 1:
        yield _error(
            "access_sample_rate_out_of_range",
            "Access sample rate must be within 0..1 (0: off)",
            "CACHE_ACCESS_SAMPLE_RATE",
        )
    rate = _number(monitoring.hit_rate_threshold)
    if rate is not None and not 0 <= rate <= 1:
        yield _error(
            "hit_rate_threshold_out_of_range",
            "Hit rate threshold must be between 0 and 1",
            "CACHE_HIT_RATE_THRESHOLD",
        )
    if _at_most(monitoring.latency_threshold_ms, 0):
        yield _error(
            "latency_threshold_not_positive",
            "Latency threshold must be positive",
            "CACHE_LATENCY_THRESHOLD",
        )
    if _at_most(monitoring.health_check_interval, 0):
        yield _error(
            "health_check_interval_not_positive",
            "Health check interval must be positive",
            "CACHE_HEALTH_CHECK_INTERVAL",
        )
    if _at_most(monitoring.stats_collection_interval, 0):
        yield _error(
            "stats_collection_interval_not_positive",
            "Stats collection interval must be positive",
            "CACHE_STATS_COLLECTION_INTERVAL",
        )


_RULES: tuple[Rule, ...] = (
    _types,
    _core,
    _redis,
    _memory,
    _cache_types,
    _security,
    _performance,
    _monitoring,
)


def validate(snapshot: ConfigSnapshot) -> list[ConfigIssue]:
    """Every issue of ``snapshot``, errors and warnings, in rule order."""
    issues: list[ConfigIssue] = []
    for rule in _RULES:
        try:
            issues.extend(rule(snapshot))
        except Exception as exc:  # a rule must never hide the others' results
            issues.append(
                _error(
                    "validator_failed",
                    f"validation rule {rule.__name__.strip('_')} failed: {type(exc).__name__}",
                )
            )
    return issues


def errors_of(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """The issues of severity ERROR."""
    return [issue for issue in issues if issue.severity is Severity.ERROR]
