"""Defaults and parsing of every environment variable, from the environment and from .env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qcache.config import CacheConfig, CacheLevel, Secret, WriteStrategy
from qcache.config.schema import FieldIndex

from .conftest import ALL_ENV_NAMES, write_env

# The configuration guide's documented defaults, written out by hand. Where the
# guide gives none, the documented choice of qcache.config.sections.
DEFAULTS: dict[str, Any] = {
    "CACHE_ENABLED": True,
    "CACHE_LEVEL": CacheLevel.BOTH,
    "CACHE_WRITE_STRATEGY": WriteStrategy.WRITE_THROUGH,
    "CACHE_DEFAULT_TTL": 3600,
    "CACHE_MAX_KEY_LENGTH": 250,
    "CACHE_KEY_PREFIX": "codebase_rag",
    "CACHE_SCHEMA_VERSION": "",
    "CACHE_ACCESS_SAMPLE_RATE": 0.0,
    "ENVIRONMENT": None,
    "REDIS_HOST": "localhost",
    "REDIS_PORT": 6379,
    "REDIS_PASSWORD": None,
    "REDIS_USERNAME": None,
    "REDIS_DB": 0,
    "REDIS_MAX_CONNECTIONS": 10,
    "REDIS_CONNECTION_TIMEOUT": 5.0,
    "REDIS_SOCKET_TIMEOUT": 5.0,
    "REDIS_RETRY_ON_TIMEOUT": True,
    "REDIS_MAX_RETRIES": 3,
    "CACHE_L2_TIMEOUT_MS": 250,
    "CACHE_BREAKER_THRESHOLD": 5,
    "CACHE_BREAKER_COOLDOWN_MS": 1000,
    "REDIS_SSL_ENABLED": False,
    "REDIS_SSL_CERT_PATH": None,
    "REDIS_SSL_KEY_PATH": None,
    "REDIS_SSL_CA_CERT_PATH": None,
    "REDIS_URL": None,
    "REDIS_CLUSTER_ENABLED": False,
    "REDIS_CLUSTER_NODES": "",
    "MEMORY_CACHE_MAX_SIZE": 1000,
    "MEMORY_CACHE_MAX_MEMORY_MB": 256,
    "MEMORY_CACHE_TTL": 3600,
    "MEMORY_CACHE_EVICTION_POLICY": "LRU",
    "MEMORY_CACHE_CLEANUP_INTERVAL": 300,
    "MEMORY_CACHE_COHERENCE": True,
    "EMBEDDING_CACHE_TTL": 7200,
    "EMBEDDING_CACHE_MAX_SIZE": 10000,
    "EMBEDDING_CACHE_COMPRESSION": True,
    "EMBEDDING_CACHE_ENCRYPTION": False,
    "SEARCH_CACHE_TTL": 1800,
    "SEARCH_CACHE_MAX_SIZE": 5000,
    "SEARCH_CACHE_COMPRESSION": True,
    "SEARCH_CACHE_ENCRYPTION": False,
    "PROJECT_CACHE_TTL": 3600,
    "PROJECT_CACHE_MAX_SIZE": 1000,
    "PROJECT_CACHE_COMPRESSION": False,
    "PROJECT_CACHE_ENCRYPTION": False,
    "FILE_CACHE_TTL": 1800,
    "FILE_CACHE_MAX_SIZE": 10000,
    "FILE_CACHE_COMPRESSION": True,
    "FILE_CACHE_ENCRYPTION": False,
    "CACHE_ENCRYPTION_ENABLED": False,
    "CACHE_ENCRYPTION_REQUIRED": False,
    "CACHE_ENCRYPTION_KEY": None,
    "ENCRYPTION_KEY_STORE_PATH": ".cache_keys",
    "ENCRYPTION_KEY_ROTATION_INTERVAL": 604800,
    "CACHE_PROJECT_ISOLATION": True,
    "CACHE_SESSION_TIMEOUT": 3600,
    "CACHE_ACCESS_LOGGING": True,
    "SECURITY_AUDIT_ENABLED": True,
    "SECURITY_AUDIT_LOG_PATH": "/var/log/cache-security.log",
    "SECURITY_AUDIT_INCLUDE_KEYS": False,
    "FAILED_ACCESS_THRESHOLD": 5,
    "FAILED_ACCESS_WINDOW": 300,
    "CACHE_BATCH_SIZE": 100,
    "CACHE_PARALLEL_OPERATIONS": 4,
    "CACHE_CONNECTION_POOL_SIZE": 10,
    "CACHE_COMPRESSION_ENABLED": True,
    "CACHE_COMPRESSION_ALGORITHM": "lz4",
    "CACHE_COMPRESSION_THRESHOLD": 1024,
    "CACHE_TTL_JITTER": 0.0,
    "CACHE_METRICS_ENABLED": True,
    "CACHE_HEALTH_CHECK_INTERVAL": 60,
    "CACHE_STATS_COLLECTION_INTERVAL": 300,
    "CACHE_PERFORMANCE_MONITORING": True,
    "CACHE_LATENCY_THRESHOLD": 50,
    "CACHE_HIT_RATE_THRESHOLD": 0.6,
    "CACHE_DEBUG_MODE": False,
    "CACHE_LOG_LEVEL": "INFO",
    "CACHE_LOG_OPERATIONS": False,
}

# A non-default text value for every variable and what it must parse to.
SAMPLES: dict[str, tuple[str, Any]] = {
    "CACHE_ENABLED": ("false", False),
    "CACHE_LEVEL": ("l2_redis", CacheLevel.L2_REDIS),
    "CACHE_WRITE_STRATEGY": ("write_around", WriteStrategy.WRITE_AROUND),
    "CACHE_DEFAULT_TTL": ("7200", 7200),
    "CACHE_MAX_KEY_LENGTH": ("128", 128),
    "CACHE_KEY_PREFIX": ("svc_a", "svc_a"),
    "CACHE_SCHEMA_VERSION": ("2024.06", "2024.06"),
    "CACHE_ACCESS_SAMPLE_RATE": ("0.05", 0.05),
    "ENVIRONMENT": ("Staging", "staging"),
    "REDIS_HOST": ("cache.internal", "cache.internal"),
    "REDIS_PORT": ("6390", 6390),
    "REDIS_PASSWORD": ("pw with spaces", Secret("pw with spaces")),
    "REDIS_USERNAME": ("qcache-service-acme", "qcache-service-acme"),
    "REDIS_DB": ("3", 3),
    "REDIS_MAX_CONNECTIONS": ("25", 25),
    "REDIS_CONNECTION_TIMEOUT": ("2.5", 2.5),
    "REDIS_SOCKET_TIMEOUT": ("1", 1.0),
    "REDIS_RETRY_ON_TIMEOUT": ("off", False),
    "REDIS_MAX_RETRIES": ("0", 0),
    "CACHE_L2_TIMEOUT_MS": ("100", 100),
    "CACHE_BREAKER_THRESHOLD": ("3", 3),
    "CACHE_BREAKER_COOLDOWN_MS": ("500", 500),
    "REDIS_SSL_ENABLED": ("yes", True),
    "REDIS_SSL_CERT_PATH": ("/etc/c.crt", "/etc/c.crt"),
    "REDIS_SSL_KEY_PATH": ("/etc/c.key", "/etc/c.key"),
    "REDIS_SSL_CA_CERT_PATH": ("/etc/ca.crt", "/etc/ca.crt"),
    "REDIS_URL": ("rediss://h:6380/1", Secret("rediss://h:6380/1")),
    "REDIS_CLUSTER_ENABLED": ("true", True),
    "REDIS_CLUSTER_NODES": ("10.0.0.1:7000,10.0.0.2:7000", "10.0.0.1:7000,10.0.0.2:7000"),
    "MEMORY_CACHE_MAX_SIZE": ("50", 50),
    "MEMORY_CACHE_MAX_MEMORY_MB": ("64", 64),
    "MEMORY_CACHE_TTL": ("90", 90),
    "MEMORY_CACHE_EVICTION_POLICY": ("fifo", "FIFO"),
    "MEMORY_CACHE_CLEANUP_INTERVAL": ("30", 30),
    "MEMORY_CACHE_COHERENCE": ("false", False),
    "EMBEDDING_CACHE_TTL": ("14400", 14400),
    "EMBEDDING_CACHE_MAX_SIZE": ("20", 20),
    "EMBEDDING_CACHE_COMPRESSION": ("0", False),
    "EMBEDDING_CACHE_ENCRYPTION": ("1", True),
    "SEARCH_CACHE_TTL": ("60", 60),
    "SEARCH_CACHE_MAX_SIZE": ("21", 21),
    "SEARCH_CACHE_COMPRESSION": ("no", False),
    "SEARCH_CACHE_ENCRYPTION": ("on", True),
    "PROJECT_CACHE_TTL": ("61", 61),
    "PROJECT_CACHE_MAX_SIZE": ("22", 22),
    "PROJECT_CACHE_COMPRESSION": ("TRUE", True),
    "PROJECT_CACHE_ENCRYPTION": ("True", True),
    "FILE_CACHE_TTL": ("62", 62),
    "FILE_CACHE_MAX_SIZE": ("23", 23),
    "FILE_CACHE_COMPRESSION": ("False", False),
    "FILE_CACHE_ENCRYPTION": ("yes", True),
    "CACHE_ENCRYPTION_ENABLED": ("true", True),
    "CACHE_ENCRYPTION_REQUIRED": ("true", True),
    "CACHE_ENCRYPTION_KEY": ("a2V5", Secret("a2V5")),
    "ENCRYPTION_KEY_STORE_PATH": ("/srv/keys", "/srv/keys"),
    "ENCRYPTION_KEY_ROTATION_INTERVAL": ("86400", 86400),
    "CACHE_PROJECT_ISOLATION": ("false", False),
    "CACHE_SESSION_TIMEOUT": ("120", 120),
    "CACHE_ACCESS_LOGGING": ("false", False),
    "SECURITY_AUDIT_ENABLED": ("false", False),
    "SECURITY_AUDIT_LOG_PATH": ("/tmp/audit.log", "/tmp/audit.log"),
    "SECURITY_AUDIT_INCLUDE_KEYS": ("yes", True),
    "FAILED_ACCESS_THRESHOLD": ("9", 9),
    "FAILED_ACCESS_WINDOW": ("600", 600),
    "CACHE_BATCH_SIZE": ("250", 250),
    "CACHE_PARALLEL_OPERATIONS": ("8", 8),
    "CACHE_CONNECTION_POOL_SIZE": ("20", 20),
    "CACHE_COMPRESSION_ENABLED": ("false", False),
    "CACHE_COMPRESSION_ALGORITHM": ("ZSTD", "zstd"),
    "CACHE_COMPRESSION_THRESHOLD": ("4096", 4096),
    "CACHE_TTL_JITTER": ("0.1", 0.1),
    "CACHE_METRICS_ENABLED": ("false", False),
    "CACHE_HEALTH_CHECK_INTERVAL": ("30", 30),
    "CACHE_STATS_COLLECTION_INTERVAL": ("600", 600),
    "CACHE_PERFORMANCE_MONITORING": ("false", False),
    "CACHE_LATENCY_THRESHOLD": ("12.5", 12.5),
    "CACHE_HIT_RATE_THRESHOLD": ("0.8", 0.8),
    "CACHE_DEBUG_MODE": ("true", True),
    "CACHE_LOG_LEVEL": ("warning", "WARNING"),
    "CACHE_LOG_OPERATIONS": ("true", True),
}


def value_of(config: CacheConfig, env: str) -> Any:
    snapshot = config.snapshot()
    spec = FieldIndex.for_snapshot(snapshot).by_env(env)
    assert spec is not None, env
    return spec.get(snapshot)


def test_tables_cover_every_variable() -> None:
    assert set(DEFAULTS) == set(ALL_ENV_NAMES)
    assert set(SAMPLES) == set(ALL_ENV_NAMES)


@pytest.mark.parametrize("env", sorted(DEFAULTS))
def test_default(env: str) -> None:
    config = CacheConfig.from_env(env_file=None, environ={})
    assert value_of(config, env) == DEFAULTS[env]
    assert value_of(CacheConfig(), env) == DEFAULTS[env]


def test_defaults_have_the_declared_types() -> None:
    config = CacheConfig()
    assert isinstance(config.redis.connection_timeout, float)
    assert isinstance(config.monitoring.latency_threshold_ms, float)
    assert type(config.redis.port) is int
    assert config.core.level is CacheLevel.BOTH


@pytest.mark.parametrize("env", sorted(SAMPLES))
def test_parsed_from_environment(env: str) -> None:
    raw, expected = SAMPLES[env]
    assert expected != DEFAULTS[env]  # the sample proves the variable is read
    config = CacheConfig.from_env(env_file=None, environ={env: raw})
    assert value_of(config, env) == expected


@pytest.mark.parametrize("env", sorted(SAMPLES))
def test_parsed_from_env_file(env: str, tmp_path: Path) -> None:
    raw, expected = SAMPLES[env]
    quoted = f'"{raw}"' if " " in raw else raw
    path = write_env(tmp_path / "app.env", f"# comment line\n{env}={quoted}  # inline comment\n")
    config = CacheConfig.from_env(env_file=path, environ={})
    assert value_of(config, env) == expected


def test_all_samples_at_once_from_one_env_file(tmp_path: Path) -> None:
    lines = [f"{env}='{raw}'" for env, (raw, _) in SAMPLES.items()]
    path = write_env(tmp_path / ".env", "\n".join(lines) + "\n")
    config = CacheConfig.from_env(env_file=path, environ={})
    for env, (_, expected) in SAMPLES.items():
        if env == "ENVIRONMENT":
            continue
        assert value_of(config, env) == expected, env


def test_seed_style_env_file_with_inline_comments_and_export(tmp_path: Path) -> None:
    path = write_env(
        tmp_path / ".env",
        "# Essential cache settings\n"
        "CACHE_ENABLED=true\n"
        "CACHE_LEVEL=BOTH  # Options: L1_MEMORY, L2_REDIS, BOTH\n"
        "export REDIS_PORT=6380  # Different port\n"
        "EMBEDDING_CACHE_TTL=14400  # 4 hours\n"
        "REDIS_PASSWORD='p#ss word'\n"
        "\n"
        "SECURITY_AUDIT_LOG_PATH=/var/log/cache-security.log\n",
    )
    config = CacheConfig.from_env(env_file=path, environ={})
    assert config.core.level is CacheLevel.BOTH
    assert config.redis.port == 6380
    assert config.cache_type("embedding").ttl == 14400
    assert config.redis.password == Secret("p#ss word")
    assert config.security.audit_log_path == "/var/log/cache-security.log"


def test_env_file_values_are_literal_no_interpolation(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "REDIS_PASSWORD=a${HOME}b\nREDIS_HOST=$HOST\n")
    config = CacheConfig.from_env(env_file=path, environ={"HOME": "/x", "HOST": "h"})
    assert config.redis.password is not None
    assert config.redis.password.reveal() == "a${HOME}b"
    assert config.redis.host == "$HOST"


def test_default_env_file_is_read_from_working_directory(clean_env: Path) -> None:
    write_env(clean_env / ".env", "REDIS_PORT=7001\n")
    assert CacheConfig.from_env().redis.port == 7001


def test_missing_default_env_file_is_fine(clean_env: Path) -> None:
    assert CacheConfig.from_env().redis.port == 6379


def test_process_environment_is_the_default_source(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_HOST", "from-os-environ")
    assert CacheConfig.from_env().redis.host == "from-os-environ"


def test_unrelated_variables_are_ignored() -> None:
    config = CacheConfig.from_env(env_file=None, environ={"PATH": "/bin", "REDIS_PROT": "1"})
    assert config.redis.port == 6379


def test_empty_optional_values_mean_unset(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "REDIS_PASSWORD=\nREDIS_SSL_CERT_PATH=\nREDIS_URL=\n")
    config = CacheConfig.from_env(env_file=path, environ={"CACHE_ENCRYPTION_KEY": ""})
    assert config.redis.password is None
    assert config.redis.ssl_cert_path is None
    assert config.redis.url is None
    assert config.security.encryption_key is None


def test_bare_key_line_does_not_mask_lower_layers(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "ENVIRONMENT=production\nREDIS_HOST\n")
    config = CacheConfig.from_env(env_file=path, environ={})
    assert config.redis.host == "redis.production.com"
