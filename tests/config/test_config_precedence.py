"""Precedence, field by field: explicit > process environment > .env file > profile > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qcache.config import CacheConfig, CacheLevel, Secret, WriteStrategy
from qcache.config.schema import FieldIndex

from .conftest import write_env

# Fields the production profile sets, with one distinct value per layer:
# (explicit, environment, .env file, production profile, default).
LAYERED: dict[str, tuple[str, str, str, Any, Any]] = {
    "REDIS_HOST": ("explicit-host", "env-host", "file-host", "redis.production.com", "localhost"),
    "REDIS_PORT": ("7001", "7002", "7003", 6380, 6379),
    "REDIS_MAX_CONNECTIONS": ("11", "12", "13", 50, 10),
    "REDIS_SSL_ENABLED": ("false", "true", "false", True, False),
    "REDIS_SSL_CERT_PATH": ("/e.crt", "/v.crt", "/f.crt", "/etc/ssl/certs/redis-client.crt", None),
    "MEMORY_CACHE_MAX_SIZE": ("21", "22", "23", 10000, 1000),
    "MEMORY_CACHE_MAX_MEMORY_MB": ("31", "32", "33", 2048, 256),
    "CACHE_DEFAULT_TTL": ("41", "42", "43", 3600, 3600),
    "EMBEDDING_CACHE_TTL": ("51", "52", "53", 7200, 7200),
    "PROJECT_CACHE_TTL": ("54", "55", "56", 3600, 3600),
    "CACHE_ENCRYPTION_ENABLED": ("false", "true", "false", True, False),
    "CACHE_ACCESS_LOGGING": ("true", "false", "true", True, True),
    "CACHE_HEALTH_CHECK_INTERVAL": ("61", "62", "63", 30, 60),
    "CACHE_LOG_LEVEL": ("ERROR", "CRITICAL", "DEBUG", "INFO", "INFO"),
    "CACHE_LEVEL": ("L2_REDIS", "L1_MEMORY", "L2_REDIS", CacheLevel.BOTH, CacheLevel.BOTH),
    "CACHE_DEBUG_MODE": ("true", "false", "true", False, False),
}
# Fields no profile sets: explicit > environment > .env > default.
UNPROFILED: dict[str, tuple[str, str, str, Any]] = {
    "REDIS_PASSWORD": ("e-pw", "v-pw", "f-pw", None),
    "REDIS_DB": ("1", "2", "3", 0),
    "CACHE_WRITE_STRATEGY": (
        "WRITE_BACK",
        "WRITE_AROUND",
        "WRITE_BACK",
        WriteStrategy.WRITE_THROUGH,
    ),
    "CACHE_TTL_JITTER": ("0.1", "0.2", "0.3", 0.0),
    "FILE_CACHE_MAX_SIZE": ("5", "6", "7", 10000),
}

INDEX = FieldIndex(["embedding", "search", "project", "file"])


def expected(env: str, raw: Any) -> Any:
    """What ``raw`` parses to for ``env`` (profiles and defaults are already typed)."""
    spec = INDEX.by_env(env)
    assert spec is not None
    if not isinstance(raw, str):
        return raw
    config = CacheConfig.from_env(env_file=None, environ={env: raw})
    return spec.get(config.snapshot())


def value(config: CacheConfig, env: str) -> Any:
    spec = INDEX.by_env(env)
    assert spec is not None
    return spec.get(config.snapshot())


def build(tmp_path: Path, layers: dict[str, dict[str, str]]) -> CacheConfig:
    file_text = "".join(f"{k}={v}\n" for k, v in layers.get("file", {}).items())
    path = write_env(tmp_path / "layer.env", file_text)
    return CacheConfig.from_env(
        env_file=path, environ=layers.get("env", {}), **layers.get("explicit", {})
    )


@pytest.mark.parametrize("env", sorted(LAYERED))
def test_each_layer_beats_the_ones_below(env: str, tmp_path: Path) -> None:
    explicit, environ, file_value, profile, default = LAYERED[env]
    production = {"ENVIRONMENT": "production"}
    full = {
        "explicit": {env: explicit},
        "env": {env: environ, **production},
        "file": {env: file_value},
    }
    assert value(build(tmp_path, full), env) == expected(env, explicit)
    del full["explicit"]
    assert value(build(tmp_path, full), env) == expected(env, environ)
    full["env"] = dict(production)
    assert value(build(tmp_path, full), env) == expected(env, file_value)
    del full["file"]
    assert value(build(tmp_path, full), env) == profile
    assert value(build(tmp_path, {}), env) == default


@pytest.mark.parametrize("env", sorted(UNPROFILED))
def test_layers_of_settings_without_profile_value(env: str, tmp_path: Path) -> None:
    explicit, environ, file_value, default = UNPROFILED[env]
    layers = {"explicit": {env: explicit}, "env": {env: environ}, "file": {env: file_value}}
    assert value(build(tmp_path, layers), env) == expected(env, explicit)
    del layers["explicit"]
    assert value(build(tmp_path, layers), env) == expected(env, environ)
    del layers["env"]
    assert value(build(tmp_path, layers), env) == expected(env, file_value)
    del layers["file"]
    assert value(build(tmp_path, layers), env) == default


def test_secret_layers_compare_by_value(tmp_path: Path) -> None:
    config = build(tmp_path, {"env": {"REDIS_PASSWORD": "v-pw"}, "file": {"REDIS_PASSWORD": "f"}})
    assert config.redis.password == Secret("v-pw")


def test_profile_is_chosen_by_the_highest_layer_setting_environment(tmp_path: Path) -> None:
    layers = {
        "explicit": {"ENVIRONMENT": "testing"},
        "env": {"ENVIRONMENT": "production"},
        "file": {"ENVIRONMENT": "development"},
    }
    assert build(tmp_path, layers).redis.port == 6380  # testing profile
    assert build(tmp_path, layers).core.level is CacheLevel.L1_MEMORY
    del layers["explicit"]
    assert build(tmp_path, layers).redis.host == "redis.production.com"
    del layers["env"]
    config = build(tmp_path, layers)
    assert config.core.environment == "development"
    assert config.memory.max_size == 100


def test_empty_environment_in_a_higher_layer_means_no_profile(tmp_path: Path) -> None:
    config = build(tmp_path, {"env": {"ENVIRONMENT": ""}, "file": {"ENVIRONMENT": "production"}})
    assert config.core.environment is None
    assert config.redis.host == "localhost"


def test_from_profile_ignores_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PORT", "9999")
    write_env(clean_env / ".env", "REDIS_HOST=from-file\n")
    config = CacheConfig.from_profile("production", REDIS_MAX_CONNECTIONS=7)
    assert config.redis.port == 6380
    assert config.redis.host == "redis.production.com"
    assert config.redis.max_connections == 7
