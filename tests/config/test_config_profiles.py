"""Profiles: their values, and the exact issues the guide's rules give for each."""

from __future__ import annotations

import os

import pytest

from qcache.config import CacheConfig, CacheLevel, Severity, WriteStrategy

E, W = Severity.ERROR, Severity.WARNING

PRODUCTION_TLS_FILES = (
    "/etc/ssl/certs/redis-client.crt",
    "/etc/ssl/private/redis-client.key",
    "/etc/ssl/certs/ca.crt",
)

# Derived by hand from the guide's validator rules plus qcache's additions:
# no profile carries a Redis password (warning everywhere); staging and
# production enable encryption without a key (error); production's TLS files
# do not exist on a development machine (three errors); development's disabled
# isolation and access logging only warn in production; high-performance's
# 8192 MB is not above the 8 GB warning limit, nor are batch 500 / parallel 16.
EXPECTED_ISSUES: dict[str, set[tuple[Severity, str]]] = {
    "development": {(W, "redis_password_missing")},
    "testing": {(W, "redis_password_missing")},
    "staging": {(W, "redis_password_missing"), (E, "encryption_key_missing")},
    "production": {
        (E, "redis_ssl_cert_not_found"),
        (E, "redis_ssl_key_not_found"),
        (E, "redis_ssl_ca_cert_not_found"),
        (W, "redis_password_missing"),
        (E, "encryption_key_missing"),
    },
    "high-performance": {(W, "redis_password_missing")},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ISSUES))
def test_profile_issues_are_exactly_the_expected_ones(name: str) -> None:
    if name == "production" and any(os.path.exists(p) for p in PRODUCTION_TLS_FILES):
        pytest.skip("this machine has the production TLS files")
    issues = CacheConfig.from_profile(name).validate()
    assert {(i.severity, i.code) for i in issues} == EXPECTED_ISSUES[name]
    assert len(issues) == len(EXPECTED_ISSUES[name])


def test_development_profile_values() -> None:
    config = CacheConfig.from_profile("dev")
    assert config.core.environment == "development"
    # The .env block's BOTH wins over the override table's L1_MEMORY.
    assert config.core.level is CacheLevel.BOTH
    assert config.monitoring.debug_mode is True
    assert config.monitoring.log_level == "DEBUG"
    assert (config.memory.max_size, config.memory.max_memory_mb) == (100, 64)
    assert config.core.default_ttl == 300
    assert config.cache_type("embedding").ttl == 600
    assert config.cache_type("search").ttl == 300
    assert config.security.project_isolation is False
    assert config.security.access_logging is False
    assert config.redis.password is None  # the guide's dev_password is a placeholder


def test_testing_profile_values() -> None:
    config = CacheConfig.from_profile("testing")
    assert config.core.level is CacheLevel.L1_MEMORY
    assert config.redis.port == 6380
    assert (config.memory.max_size, config.memory.max_memory_mb) == (50, 32)
    assert config.core.default_ttl == 60
    assert config.cache_type("embedding").ttl == 120
    assert config.cache_type("search").ttl == 60
    # Only in the override table:
    assert config.monitoring.metrics_enabled is False
    assert config.monitoring.log_level == "DEBUG"


def test_staging_profile_comes_from_the_override_table() -> None:
    config = CacheConfig.from_profile("staging")
    assert config.monitoring.debug_mode is False
    assert config.monitoring.log_level == "INFO"
    assert config.core.level is CacheLevel.BOTH
    assert config.core.default_ttl == 1800
    assert config.security.encryption_enabled is True
    assert config.security.project_isolation is True


def test_production_profile_values() -> None:
    config = CacheConfig.from_profile("production")
    assert config.redis.host == "redis.production.com"
    assert config.redis.port == 6380
    assert config.redis.ssl_enabled is True
    assert config.redis.ssl_ca_cert_path == "/etc/ssl/certs/ca.crt"
    assert config.redis.max_connections == 50
    assert (config.memory.max_size, config.memory.max_memory_mb) == (10000, 2048)
    assert config.monitoring.log_level == "INFO"  # the .env block wins over WARNING
    assert config.monitoring.health_check_interval == 30
    assert config.security.encryption_enabled is True
    assert config.security.encryption_key is None  # never part of a profile
    assert config.redis.password is None
    assert [t.ttl for t in config.cache_types.values()] == [7200, 1800, 3600, 1800]


def test_high_performance_profile_values() -> None:
    config = CacheConfig.from_profile("high_performance")
    assert config.core.write_strategy is WriteStrategy.WRITE_BACK
    assert config.redis.host == "redis-cluster.internal"
    assert config.redis.connection_timeout == 2.0
    assert config.memory.max_memory_mb == 8192
    assert config.memory.cleanup_interval == 60
    assert (config.performance.batch_size, config.performance.parallel_operations) == (500, 16)
    assert config.performance.connection_pool_size == 50
    assert config.cache_type("project").ttl == 7200
    assert config.performance.compression_algorithm == "lz4"


def test_production_with_secrets_supplied_only_keeps_tls_errors() -> None:
    config = CacheConfig.from_profile(
        "production",
        REDIS_PASSWORD="a-real-password",
        CACHE_ENCRYPTION_KEY="U0VDUkVULUtFWS1ET05PVExFQUstVEhJUy0xMjM0NTY=",
        REDIS_SSL_CERT_PATH=__file__,
        REDIS_SSL_KEY_PATH=__file__,
        REDIS_SSL_CA_CERT_PATH=__file__,
    )
    # Rotated data keys live in a per-host directory by default, relative to the working directory:
    # both are pointed out.
    assert [(i.severity.value, i.code) for i in config.validate()] == [
        ("warning", "encryption_key_store_per_host"), ("warning", "encryption_key_store_relative"),
    ]
    assert config.update(ENCRYPTION_KEY_STORE_PATH="/srv/qcache/keys")
    assert [i.code for i in config.validate()] == ["encryption_key_store_per_host"]
    assert config.update(ENCRYPTION_KEY_STORE_PATH="") and config.validate() == []
