"""Validation rules: the guide's, with its severities, and qcache's additions."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pytest

from qcache.config import (
    CacheConfig,
    CacheTypeConfig,
    ConfigIssue,
    CoreConfig,
    MemoryConfig,
    MonitoringConfig,
    PerformanceConfig,
    RedisConfig,
    Secret,
    SecurityConfig,
    Severity,
    validation,
)
from qcache.errors import ConfigError
from qcache.types import CacheLevel, WriteStrategy

from .conftest import KEY_SECRET

E, W = Severity.ERROR, Severity.WARNING
PW = Secret("pw")


def clean(**sections: Any) -> CacheConfig:
    """A configuration with no issue at all, except what ``sections`` change."""
    sections.setdefault("redis", RedisConfig(password=PW))
    return CacheConfig(**sections)


def codes(config: CacheConfig) -> set[tuple[Severity, str, str | None]]:
    return {(i.severity, i.code, i.field) for i in config.validate()}


def test_baseline_has_no_issue() -> None:
    assert clean().validate() == []


CASES: list[tuple[str, dict[str, Any], tuple[Severity, str, str | None]]] = [
    # The guide's rules, with its severities.
    (
        "conn timeout",
        {"redis": RedisConfig(password=PW, connection_timeout=0)},
        (E, "redis_connection_timeout_not_positive", "REDIS_CONNECTION_TIMEOUT"),
    ),
    (
        "max conns",
        {"redis": RedisConfig(password=PW, max_connections=0)},
        (E, "redis_max_connections_not_positive", "REDIS_MAX_CONNECTIONS"),
    ),
    ("no password", {"redis": RedisConfig()}, (W, "redis_password_missing", "REDIS_PASSWORD")),
    (
        "cluster nodes",
        {"redis": RedisConfig(password=PW, cluster_enabled=True, cluster_nodes="10.0.0.1:7000,nohost")},
        (E, "redis_cluster_nodes_invalid", "REDIS_CLUSTER_NODES"),
    ),
    (
        "cluster nodes unused",
        {"redis": RedisConfig(password=PW, cluster_nodes="10.0.0.1:7000")},
        (W, "redis_cluster_nodes_unused", "REDIS_CLUSTER_NODES"),
    ),
    (
        "cluster db",
        {"redis": RedisConfig(password=PW, cluster_enabled=True, db=2)},
        (E, "redis_cluster_db", "REDIS_DB"),
    ),
    (
        "max memory",
        {"memory": MemoryConfig(max_memory_mb=0)},
        (E, "memory_max_memory_not_positive", "MEMORY_CACHE_MAX_MEMORY_MB"),
    ),
    (
        "max size",
        {"memory": MemoryConfig(max_size=-1)},
        (E, "memory_max_size_not_positive", "MEMORY_CACHE_MAX_SIZE"),
    ),
    (
        "huge memory",
        {"memory": MemoryConfig(max_memory_mb=8193)},
        (W, "memory_allocation_very_large", "MEMORY_CACHE_MAX_MEMORY_MB"),
    ),
    (
        "cleanup",
        {"memory": MemoryConfig(cleanup_interval=0)},
        (E, "memory_cleanup_interval_not_positive", "MEMORY_CACHE_CLEANUP_INTERVAL"),
    ),
    (
        "no key",
        {"security": SecurityConfig(encryption_enabled=True)},
        (E, "encryption_key_missing", "CACHE_ENCRYPTION_KEY"),
    ),
    (
        "default ttl",
        {"core": CoreConfig(default_ttl=0)},
        (E, "default_ttl_not_positive", "CACHE_DEFAULT_TTL"),
    ),
    (
        "batch",
        {"performance": PerformanceConfig(batch_size=0)},
        (E, "batch_size_not_positive", "CACHE_BATCH_SIZE"),
    ),
    (
        "parallel",
        {"performance": PerformanceConfig(parallel_operations=0)},
        (E, "parallel_operations_not_positive", "CACHE_PARALLEL_OPERATIONS"),
    ),
    (
        "big batch",
        {"performance": PerformanceConfig(batch_size=1001)},
        (W, "batch_size_large", "CACHE_BATCH_SIZE"),
    ),
    (
        "many parallel",
        {"performance": PerformanceConfig(parallel_operations=33)},
        (W, "parallel_operations_high", "CACHE_PARALLEL_OPERATIONS"),
    ),
    # qcache's additions.
    (
        "port 0",
        {"redis": RedisConfig(password=PW, port=0)},
        (E, "redis_port_out_of_range", "REDIS_PORT"),
    ),
    (
        "port 65536",
        {"redis": RedisConfig(password=PW, port=65536)},
        (E, "redis_port_out_of_range", "REDIS_PORT"),
    ),
    ("db", {"redis": RedisConfig(password=PW, db=-1)}, (E, "redis_db_negative", "REDIS_DB")),
    (
        "socket timeout",
        {"redis": RedisConfig(password=PW, socket_timeout=-1.0)},
        (E, "redis_socket_timeout_not_positive", "REDIS_SOCKET_TIMEOUT"),
    ),
    (
        "retries",
        {"redis": RedisConfig(password=PW, max_retries=-1)},
        (E, "redis_max_retries_negative", "REDIS_MAX_RETRIES"),
    ),
    (
        "url scheme",
        {"redis": RedisConfig(password=PW, url=Secret("http://h:1"))},
        (E, "redis_url_invalid", "REDIS_URL"),
    ),
    (
        "url port too big",
        {"redis": RedisConfig(password=PW, url=Secret("redis://h:99999/0"))},
        (E, "redis_url_port_invalid", "REDIS_URL"),
    ),
    (
        "url port not a number",
        {"redis": RedisConfig(password=PW, url=Secret("rediss://u:pw@h:63x9/0"))},
        (E, "redis_url_port_invalid", "REDIS_URL"),
    ),
    (
        "url db",
        {"redis": RedisConfig(password=PW, url=Secret("redis://h:6379/first"))},
        (E, "redis_url_db_invalid", "REDIS_URL"),
    ),
    (
        "policy",
        {"memory": MemoryConfig(eviction_policy="nope")},
        (E, "memory_eviction_policy_unknown", "MEMORY_CACHE_EVICTION_POLICY"),
    ),
    (
        "memory ttl",
        {"memory": MemoryConfig(ttl=0)},
        (E, "memory_ttl_not_positive", "MEMORY_CACHE_TTL"),
    ),
    (
        "hit rate",
        {"monitoring": MonitoringConfig(hit_rate_threshold=1.5)},
        (E, "hit_rate_threshold_out_of_range", "CACHE_HIT_RATE_THRESHOLD"),
    ),
    (
        "hit rate low",
        {"monitoring": MonitoringConfig(hit_rate_threshold=-0.1)},
        (E, "hit_rate_threshold_out_of_range", "CACHE_HIT_RATE_THRESHOLD"),
    ),
    (
        "latency",
        {"monitoring": MonitoringConfig(latency_threshold_ms=0)},
        (E, "latency_threshold_not_positive", "CACHE_LATENCY_THRESHOLD"),
    ),
    (
        "health",
        {"monitoring": MonitoringConfig(health_check_interval=0)},
        (E, "health_check_interval_not_positive", "CACHE_HEALTH_CHECK_INTERVAL"),
    ),
    (
        "stats",
        {"monitoring": MonitoringConfig(stats_collection_interval=0)},
        (E, "stats_collection_interval_not_positive", "CACHE_STATS_COLLECTION_INTERVAL"),
    ),
    (
        "type ttl",
        {"cache_types": {"search": CacheTypeConfig(ttl=0, max_size=5)}},
        (E, "cache_type_ttl_not_positive", "SEARCH_CACHE_TTL"),
    ),
    (
        "type size",
        {"cache_types": {"file": CacheTypeConfig(max_size=0)}},
        (E, "cache_type_max_size_not_positive", "FILE_CACHE_MAX_SIZE"),
    ),
    (
        "type encrypted, no key",
        {"cache_types": {"project": CacheTypeConfig(encryption=True)}},
        (E, "encryption_key_missing", "CACHE_ENCRYPTION_KEY"),
    ),
    (
        "key length",
        {"core": CoreConfig(max_key_length=31)},
        (E, "max_key_length_too_small", "CACHE_MAX_KEY_LENGTH"),
    ),
    (
        "empty prefix",
        {"core": CoreConfig(key_prefix="")},
        (E, "key_prefix_empty", "CACHE_KEY_PREFIX"),
    ),
    (
        "glob prefix",
        {"core": CoreConfig(key_prefix="app*")},
        (E, "key_prefix_invalid", "CACHE_KEY_PREFIX"),
    ),
    (
        "long prefix",
        {"core": CoreConfig(key_prefix="p" * 40, max_key_length=40)},
        (E, "key_prefix_too_long", "CACHE_KEY_PREFIX"),
    ),
    (
        "write-back without L2",
        {"core": CoreConfig(level=CacheLevel.L1_MEMORY, write_strategy=WriteStrategy.WRITE_BACK)},
        (W, "write_strategy_ignored", "CACHE_WRITE_STRATEGY"),
    ),
    (
        "pool",
        {"performance": PerformanceConfig(connection_pool_size=0)},
        (E, "connection_pool_size_not_positive", "CACHE_CONNECTION_POOL_SIZE"),
    ),
    (
        "threshold",
        {"performance": PerformanceConfig(compression_threshold_bytes=-1)},
        (E, "compression_threshold_negative", "CACHE_COMPRESSION_THRESHOLD"),
    ),
    (
        "jitter",
        {"performance": PerformanceConfig(ttl_jitter=1.0)},
        (E, "ttl_jitter_out_of_range", "CACHE_TTL_JITTER"),
    ),
    (
        "rotation",
        {"security": SecurityConfig(key_rotation_interval=0)},
        (E, "key_rotation_interval_not_positive", "ENCRYPTION_KEY_ROTATION_INTERVAL"),
    ),
    (
        "session",
        {"security": SecurityConfig(session_timeout=0)},
        (E, "session_timeout_not_positive", "CACHE_SESSION_TIMEOUT"),
    ),
    (
        "failed threshold",
        {"security": SecurityConfig(failed_access_threshold=0)},
        (E, "failed_access_threshold_not_positive", "FAILED_ACCESS_THRESHOLD"),
    ),
    (
        "failed window",
        {"security": SecurityConfig(failed_access_window=0)},
        (E, "failed_access_window_not_positive", "FAILED_ACCESS_WINDOW"),
    ),
]


@pytest.mark.parametrize(("label", "sections", "issue"), CASES, ids=[c[0] for c in CASES])
def test_rule(
    label: str, sections: dict[str, Any], issue: tuple[Severity, str, str | None]
) -> None:
    assert codes(clean(**sections)) == {issue}


def test_boundaries_that_are_fine() -> None:
    config = clean(
        memory=MemoryConfig(max_memory_mb=8192),
        performance=PerformanceConfig(
            batch_size=1000, parallel_operations=32, ttl_jitter=0.0, compression_threshold_bytes=0
        ),
        monitoring=MonitoringConfig(hit_rate_threshold=1.0),
        redis=RedisConfig(password=PW, port=65535, max_retries=0),
        core=CoreConfig(max_key_length=32, key_prefix="a"),
    )
    assert config.validate() == []


def test_every_problem_is_reported_at_once() -> None:
    config = CacheConfig(
        core=CoreConfig(default_ttl=-1),
        redis=RedisConfig(port=0, max_connections=0),
        memory=MemoryConfig(max_size=0, eviction_policy="nope"),
        performance=PerformanceConfig(batch_size=0),
    )
    found = {i.code for i in config.validate()}
    assert {
        "default_ttl_not_positive",
        "redis_port_out_of_range",
        "redis_max_connections_not_positive",
        "redis_password_missing",
        "memory_max_size_not_positive",
        "memory_eviction_policy_unknown",
        "batch_size_not_positive",
    } <= found


def test_ssl_enabled_without_certificate_path() -> None:
    config = clean(redis=RedisConfig(password=PW, ssl_enabled=True))
    assert codes(config) == {(E, "redis_ssl_cert_path_missing", "REDIS_SSL_CERT_PATH")}


def test_missing_tls_files_are_reported_with_their_paths(tmp_path: Path) -> None:
    existing = tmp_path / "ok.pem"
    existing.write_text("x")
    config = clean(
        redis=RedisConfig(
            password=PW,
            ssl_enabled=True,
            ssl_cert_path=str(tmp_path / "nope.crt"),
            ssl_key_path=str(existing),
            ssl_ca_cert_path=str(tmp_path / "nope-ca.crt"),
        )
    )
    issues = {i.code: i for i in config.validate()}
    assert set(issues) == {"redis_ssl_cert_not_found", "redis_ssl_ca_cert_not_found"}
    assert str(tmp_path / "nope.crt") in issues["redis_ssl_cert_not_found"].message


def test_tls_files_are_not_checked_when_tls_is_off(tmp_path: Path) -> None:
    config = clean(redis=RedisConfig(password=PW, ssl_cert_path=str(tmp_path / "x")))
    assert config.validate() == []


def test_production_warnings_follow_core_environment_not_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    relaxed = SecurityConfig(
        encryption_enabled=False, project_isolation=False, access_logging=False
    )
    assert clean(security=relaxed).validate() == []
    prod = clean(
        security=relaxed,
        core=CoreConfig(environment="production"),
        monitoring=MonitoringConfig(debug_mode=True),
    )
    assert codes(prod) == {
        (W, "production_encryption_disabled", "CACHE_ENCRYPTION_ENABLED"),
        (W, "production_project_isolation_disabled", "CACHE_PROJECT_ISOLATION"),
        (W, "production_access_logging_disabled", "CACHE_ACCESS_LOGGING"),
        (W, "production_debug_mode", "CACHE_DEBUG_MODE"),
    }


def test_production_profile_without_encryption_warns() -> None:
    config = CacheConfig.from_profile("production", CACHE_ENCRYPTION_ENABLED=False)
    assert (W, "production_encryption_disabled") in {
        (i.severity, i.code) for i in config.validate()
    }


def test_short_encryption_key_warns_and_is_invalid() -> None:
    short = SecurityConfig(encryption_enabled=True, encryption_key=Secret("c2hvcnQ="))
    config = clean(security=short)
    assert codes(config) == {
        (W, "encryption_key_too_short", "CACHE_ENCRYPTION_KEY"),
        (E, "encryption_key_invalid", "CACHE_ENCRYPTION_KEY"),
    }


@pytest.mark.parametrize(
    "key",
    [
        "x" * 44,  # long enough, not base64 of 32 bytes
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",  # base64 of 30 bytes
        "this is definitely not base64 at all!!!!!!!",
    ],
)
def test_key_that_aes_256_cannot_use_is_an_error(key: str) -> None:
    config = clean(security=SecurityConfig(encryption_enabled=True, encryption_key=Secret(key)))
    assert codes(config) == {(E, "encryption_key_invalid", "CACHE_ENCRYPTION_KEY")}
    assert key not in str(config.validate())


@pytest.mark.parametrize("key", [KEY_SECRET, KEY_SECRET.replace("+", "-").replace("/", "_")])
def test_valid_keys_standard_and_url_safe(key: str) -> None:
    security = SecurityConfig(encryption_enabled=True, encryption_key=Secret(key), key_store_path="")
    assert clean(security=security).validate() == []
    assert validation.is_valid_aes_key("A-_" + "A" * 40 + "=")


def test_a_key_store_shared_by_hosts_is_pointed_out() -> None:
    security = SecurityConfig(encryption_enabled=True, encryption_key=Secret(KEY_SECRET), key_store_path="/srv/k")
    assert codes(clean(security=security)) == {
        (W, "encryption_key_store_per_host", "ENCRYPTION_KEY_STORE_PATH")
    }
    # Memory only: no other host ever reads these entries.
    memory_only = clean(security=security, core=CoreConfig(level=CacheLevel.L1_MEMORY))
    assert codes(memory_only) == set()


def test_zstd_without_the_package_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    zstd = clean(performance=PerformanceConfig(compression_algorithm="zstd"))
    monkeypatch.setattr(validation, "zstd_available", lambda: False)
    assert codes(zstd) == {(E, "compression_zstd_unavailable", "CACHE_COMPRESSION_ALGORITHM")}
    off = clean(
        performance=PerformanceConfig(compression_algorithm="zstd", compression_enabled=False)
    )
    assert off.validate() == []


def test_zstd_with_the_package_is_fine() -> None:
    pytest.importorskip("zstandard")
    assert clean(performance=PerformanceConfig(compression_algorithm="zstd")).validate() == []


@pytest.mark.parametrize("policy", ["LRU", "fifo", "DEFAULT", "default"])
def test_registered_policies_and_default_are_accepted(policy: str) -> None:
    assert clean(memory=MemoryConfig(eviction_policy=policy)).validate() == []


def test_unknown_policy_message_lists_available_ones() -> None:
    issue = clean(memory=MemoryConfig(eviction_policy="nope")).validate()[0]
    assert "LRU" in issue.message and "FIFO" in issue.message and "DEFAULT" in issue.message


def test_password_inside_redis_url_counts() -> None:
    config = CacheConfig(redis=RedisConfig(url=Secret("redis://:pw@host:6379/0")))
    assert config.validate() == []


ODD_VALUES: list[dict[str, Any]] = [
    {"core": CoreConfig(default_ttl="abc", max_key_length=None, key_prefix=5)},  # type: ignore[arg-type]
    {
        "redis": RedisConfig(
            port="6379",
            connection_timeout=math.nan,
            ssl_enabled=True,  # type: ignore[arg-type]
            ssl_cert_path=5,
            max_connections=[1],
            db=1.5,
        )
    },  # type: ignore[arg-type]
    {"memory": MemoryConfig(max_size=None, eviction_policy=3, ttl=object())},  # type: ignore[arg-type]
    {"monitoring": MonitoringConfig(hit_rate_threshold="high", latency_threshold_ms=math.inf)},  # type: ignore[arg-type]
    {"performance": PerformanceConfig(batch_size=True, ttl_jitter="x")},  # type: ignore[arg-type]
    {"security": SecurityConfig(encryption_enabled="yes", encryption_key=123)},  # type: ignore[arg-type]
    {"cache_types": {"odd": CacheTypeConfig(ttl="1", max_size=None, compression="no")}},  # type: ignore[arg-type]
]


@pytest.mark.parametrize("sections", ODD_VALUES)
def test_validator_never_crashes_on_odd_values(sections: dict[str, Any]) -> None:
    issues = CacheConfig(**sections).validate()
    assert any(i.code == "invalid_type" for i in issues)
    assert not any(i.code == "validator_failed" for i in issues)
    assert all(isinstance(i, ConfigIssue) for i in issues)


def test_invalid_type_names_field_and_type_but_not_value() -> None:
    config = CacheConfig(security=SecurityConfig(encryption_key=424242))  # type: ignore[arg-type]
    issue = next(i for i in config.validate() if i.code == "invalid_type")
    assert issue.field == "CACHE_ENCRYPTION_KEY"
    assert "int" in issue.message and "424242" not in issue.message


def test_a_failing_rule_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom() -> bool:
        raise RuntimeError("broken probe")

    monkeypatch.setattr(validation, "zstd_available", boom)
    config = CacheConfig(
        performance=PerformanceConfig(compression_algorithm="zstd"),
        monitoring=MonitoringConfig(hit_rate_threshold=2.0),
    )
    found = {i.code for i in config.validate()}
    assert {
        "validator_failed",
        "hit_rate_threshold_out_of_range",
        "redis_password_missing",
    } <= found


def test_errors_warnings_and_check() -> None:
    config = CacheConfig(core=CoreConfig(default_ttl=0))
    assert [i.code for i in config.errors()] == ["default_ttl_not_positive"]
    assert [i.code for i in config.warnings()] == ["redis_password_missing"]
    with pytest.raises(ConfigError) as info:
        config.check()
    assert info.value.problems == [str(config.errors()[0])]
    assert clean().check().validate() == []


def test_issue_string_form() -> None:
    issue = ConfigIssue(
        Severity.WARNING, "redis_password_missing", "Redis password not set", "REDIS_PASSWORD"
    )
    assert str(issue) == "warning: REDIS_PASSWORD: Redis password not set [redis_password_missing]"
    assert Severity.ERROR == "error"


def test_encryption_required_without_any_encrypted_type_warns() -> None:
    config = clean(security=SecurityConfig(encryption_required=True))
    assert codes(config) == {(W, "encryption_required_unused", "CACHE_ENCRYPTION_REQUIRED")}
    key = Secret(base64.b64encode(bytes(range(32))).decode())
    used = clean(security=SecurityConfig(encryption_enabled=True, encryption_required=True, encryption_key=key,
                                         key_store_path=""))
    assert not any(code == "encryption_required_unused" for _, code, _ in codes(used))


def test_a_bad_port_in_redis_url_stops_the_cache_with_a_config_error_naming_the_variable() -> None:
    from qcache import QueryCache

    config = CacheConfig.from_profile("development", REDIS_URL="redis://:secret-pw@h:99999/0")
    with pytest.raises(ConfigError) as raised:
        QueryCache(config)  # redis-py would raise its own bare ValueError when the pool is built
    assert "REDIS_URL" in str(raised.value) and "secret-pw" not in str(raised.value)


@pytest.mark.parametrize("path", [".cache_keys", "keys/here", "~/keys", "/srv/qcache/keys"])
def test_a_key_store_relative_to_the_working_directory_is_pointed_out(path: str) -> None:
    security = SecurityConfig(encryption_enabled=True, encryption_key=Secret(KEY_SECRET), key_store_path=path)
    relative = (W, "encryption_key_store_relative", "ENCRYPTION_KEY_STORE_PATH")
    assert (relative in codes(clean(security=security))) is (path in (".cache_keys", "keys/here"))
    # Nothing is encrypted: no key store is used.
    assert relative not in codes(clean(security=SecurityConfig(encryption_key=Secret(KEY_SECRET), key_store_path=path)))
