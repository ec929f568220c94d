"""Bad input: every parse problem of a load is reported at once, clearly, without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from qcache.config import CacheConfig, CacheLevel, CoreConfig, RedisConfig, Secret
from qcache.errors import ConfigError

from .conftest import REDIS_SECRET, write_env


def load_error(**environ: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        CacheConfig.from_env(env_file=None, environ=environ)
    return info.value


@pytest.mark.parametrize(
    ("env", "raw", "expected"),
    [
        ("REDIS_PORT", "abc", "REDIS_PORT: expected an integer, got 'abc'"),
        ("REDIS_PORT", "63.5", "REDIS_PORT: expected an integer, got '63.5'"),
        ("REDIS_PORT", "", "REDIS_PORT: expected an integer, got ''"),
        ("CACHE_LEVEL", "L3", "CACHE_LEVEL: expected one of L1_MEMORY, L2_REDIS, BOTH, got 'L3'"),
        (
            "CACHE_WRITE_STRATEGY",
            "LATER",
            "CACHE_WRITE_STRATEGY: expected one of WRITE_THROUGH, WRITE_BACK, WRITE_AROUND",
        ),
        ("CACHE_DEFAULT_TTL", "-5", "CACHE_DEFAULT_TTL: must be a positive integer, got '-5'"),
        ("CACHE_DEFAULT_TTL", "0", "CACHE_DEFAULT_TTL: must be a positive integer, got '0'"),
        ("SEARCH_CACHE_TTL", "-1", "SEARCH_CACHE_TTL: must be a positive integer, got '-1'"),
        ("MEMORY_CACHE_TTL", "soon", "MEMORY_CACHE_TTL: expected an integer, got 'soon'"),
        (
            "CACHE_ENABLED",
            "maybe",
            "CACHE_ENABLED: expected true/false (1/0, yes/no, on/off), got 'maybe'",
        ),
        ("REDIS_CONNECTION_TIMEOUT", "fast", "REDIS_CONNECTION_TIMEOUT: expected a number"),
        ("REDIS_SOCKET_TIMEOUT", "nan", "REDIS_SOCKET_TIMEOUT: expected a finite number"),
        ("CACHE_HIT_RATE_THRESHOLD", "inf", "CACHE_HIT_RATE_THRESHOLD: expected a finite number"),
        ("CACHE_LOG_LEVEL", "LOUD", "CACHE_LOG_LEVEL: expected one of DEBUG, INFO, WARNING"),
        ("CACHE_COMPRESSION_ALGORITHM", "gzip", "expected one of none, lz4, zstd, got 'gzip'"),
        ("ENVIRONMENT", "qa", "ENVIRONMENT: expected one of development, testing, staging"),
    ],
)
def test_unparsable_value_names_variable_and_value(env: str, raw: str, expected: str) -> None:
    error = load_error(**{env: raw})
    assert len(error.problems) == 1
    assert expected in error.problems[0]
    assert "(from environment)" in error.problems[0]
    assert expected in str(error)


def test_unknown_profile_lists_all_five() -> None:
    message = load_error(ENVIRONMENT="qa").problems[0]
    for name in ("development", "testing", "staging", "production", "high-performance"):
        assert name in message


def test_all_problems_of_one_load_are_reported_together(tmp_path: Path) -> None:
    path = write_env(tmp_path / "bad.env", "CACHE_LEVEL=L3\nCACHE_BATCH_SIZE=lots\n")
    with pytest.raises(ConfigError) as info:
        CacheConfig.from_env(
            env_file=path,
            environ={"REDIS_PORT": "abc", "CACHE_ENABLED": "maybe"},
            CACHE_DEFAULT_TTL="-5",
        )
    problems = info.value.problems
    assert len(problems) == 5
    joined = "\n".join(problems)
    for env in (
        "REDIS_PORT",
        "CACHE_LEVEL",
        "CACHE_BATCH_SIZE",
        "CACHE_ENABLED",
        "CACHE_DEFAULT_TTL",
    ):
        assert env in joined
    assert "(from explicit argument)" in joined
    assert f"(from .env file {str(path)!r})" in joined


def test_shadowed_bad_value_is_not_an_error(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "REDIS_PORT=abc\n")
    config = CacheConfig.from_env(env_file=path, environ={"REDIS_PORT": "7000"})
    assert config.redis.port == 7000


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "On", " true "])
def test_truthy_spellings(raw: str) -> None:
    assert CacheConfig.from_env(env_file=None, environ={"REDIS_SSL_ENABLED": raw}).redis.ssl_enabled


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "OFF"])
def test_falsy_spellings(raw: str) -> None:
    config = CacheConfig.from_env(env_file=None, environ={"CACHE_ENABLED": raw})
    assert config.core.enabled is False


@pytest.mark.parametrize("raw", ["both", "Both", "BOTH", " both "])
def test_enums_are_case_insensitive(raw: str) -> None:
    config = CacheConfig.from_env(env_file=None, environ={"CACHE_LEVEL": raw})
    assert config.core.level is CacheLevel.BOTH


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dev", "development"),
        ("PROD", "production"),
        ("high_performance", "high-performance"),
        ("test", "testing"),
    ],
)
def test_profile_aliases(raw: str, expected: str) -> None:
    config = CacheConfig.from_env(env_file=None, environ={"ENVIRONMENT": raw})
    assert config.core.environment == expected


def test_secret_value_never_appears_in_parse_errors() -> None:
    with pytest.raises(ConfigError) as info:
        CacheConfig.from_env(env_file=None, environ={"REDIS_PORT": "x"}, REDIS_PASSWORD=12345)
    assert "REDIS_PASSWORD" in str(info.value)
    assert "12345" not in str(info.value)
    # A text secret always parses, so it cannot end up in a message at all.
    config = CacheConfig.from_env(env_file=None, environ={"REDIS_PASSWORD": REDIS_SECRET})
    assert config.redis.password == Secret(REDIS_SECRET)


def test_overrides_accept_env_names_dotted_paths_typed_and_text() -> None:
    config = CacheConfig.from_env(
        env_file=None,
        environ={},
        REDIS_PORT=7000,
        CACHE_LEVEL=CacheLevel.L2_REDIS,
        **{"memory.max_size": "5", "cache_types.search.ttl": 99, "monitoring.debug_mode": True},
    )
    assert config.redis.port == 7000
    assert config.core.level is CacheLevel.L2_REDIS
    assert config.memory.max_size == 5
    assert config.cache_type("search").ttl == 99
    assert config.monitoring.debug_mode is True


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"REDIS_PORT": True}, "REDIS_PORT: expected an integer, got True"),
        ({"REDIS_PORT": 1.5}, "REDIS_PORT: expected an integer, got 1.5"),
        ({"CACHE_ENABLED": 1}, "CACHE_ENABLED: expected true or false, got 1"),
        ({"CACHE_DEFAULT_TTL": 0}, "CACHE_DEFAULT_TTL: must be a positive integer, got 0"),
        ({"REDIS_HOST": None}, "REDIS_HOST: a value is required"),
    ],
)
def test_badly_typed_overrides(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        CacheConfig.from_env(env_file=None, environ={}, **overrides)  # type: ignore[arg-type]
    assert any(expected in problem for problem in info.value.problems)


def test_unknown_override_key_suggests_close_names() -> None:
    with pytest.raises(ConfigError) as info:
        CacheConfig.from_env(env_file=None, environ={}, REDIS_PROT=1)
    assert "unknown setting 'REDIS_PROT'" in str(info.value)
    assert "REDIS_PORT" in str(info.value)
    with pytest.raises(ConfigError, match=r"memory\.max_size"):
        CacheConfig.from_env(env_file=None, environ={}, **{"memory.max_sise": 1})


def test_same_setting_given_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        CacheConfig.from_env(env_file=None, environ={}, REDIS_PORT=1, **{"redis.port": 2})


def test_explicit_env_file_must_exist(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="env file not found"):
        CacheConfig.from_env(env_file=clean_env / "missing.env", environ={})
    with pytest.raises(ConfigError, match="env file not found"):
        CacheConfig.from_env(env_file=".env", environ={})  # explicit, even the default name


def test_undecodable_env_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.env"
    path.write_bytes(b"REDIS_HOST=caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot read env file"):
        CacheConfig.from_env(env_file=path, environ={})


def test_constructors_normalise_text_and_reject_bad_enum_text() -> None:
    assert CoreConfig(level="l1_memory").level is CacheLevel.L1_MEMORY  # type: ignore[arg-type]
    assert CoreConfig(environment="prod").environment == "production"
    assert RedisConfig(password="pw").password == Secret("pw")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"CoreConfig\.level: expected one of"):
        CoreConfig(level="L3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"expected one of"):
        CoreConfig(environment="qa")


def test_from_profile_rejects_unknown_name_and_environment_override() -> None:
    with pytest.raises(ConfigError, match="high-performance"):
        CacheConfig.from_profile("qa")
    with pytest.raises(ConfigError, match="ENVIRONMENT"):
        CacheConfig.from_profile("production", ENVIRONMENT="testing")
