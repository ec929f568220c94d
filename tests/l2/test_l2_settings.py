"""ConnectionSettings: config reading, validation, retry policy and pool construction (no I/O)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from qcache.errors import ConfigError
from qcache.l2 import AsyncRedisTier, ConnectionSettings, RedisTier, TlsFiles

from .support import PerformanceSection, RedisSection, Secret, StandInConfig, call


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, str]:
    """Three existing files standing in for CA, certificate and key (contents are not read here)."""
    paths = {}
    for name in ("ca", "cert", "key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("placeholder\n")
        paths[name] = str(path)
    return paths


def test_from_config_reads_every_attribute() -> None:
    section = RedisSection(
        host="cache.internal",
        port=6380,
        password=Secret("pw"),
        db=3,
        max_connections=20,
        connection_timeout=1.5,
        socket_timeout=2.5,
        retry_on_timeout=False,
        max_retries=4,
    )
    settings = ConnectionSettings.from_config(section)
    assert (settings.host, settings.port, settings.db, settings.password) == (
        "cache.internal",
        6380,
        3,
        "pw",
    )
    assert (settings.max_connections, settings.connect_timeout, settings.socket_timeout) == (
        20,
        1.5,
        2.5,
    )
    assert (settings.retry_on_timeout, settings.max_retries, settings.tls) == (False, 4, None)
    assert "pw" not in repr(settings)


def test_tls_paths_are_read_only_when_ssl_is_enabled(pem_files: dict[str, str]) -> None:
    paths: dict[str, Any] = dict(
        ssl_ca_cert_path=pem_files["ca"],
        ssl_cert_path=pem_files["cert"],
        ssl_key_path=pem_files["key"],
    )
    assert ConnectionSettings.from_config(RedisSection(**paths)).tls is None
    settings = ConnectionSettings.from_config(RedisSection(ssl_enabled=True, **paths))
    assert settings.tls == TlsFiles(pem_files["ca"], pem_files["cert"], pem_files["key"])
    assert settings.uses_tls and settings.scheme == "rediss"


def test_problems_are_reported_all_at_once(tmp_path: Path) -> None:
    section = RedisSection(
        port=0,
        max_connections=0,
        connection_timeout=0,
        socket_timeout=-1,
        max_retries=-1,
        db=-1,
        ssl_enabled=True,
        ssl_cert_path=str(tmp_path / "missing.pem"),
    )
    with pytest.raises(ConfigError) as caught:
        ConnectionSettings.from_config(section)
    # The rules of CacheConfig.validate(), each problem naming its variable.
    fields = sorted(problem.split(":", 1)[0] for problem in caught.value.problems)
    assert fields == sorted([
        "REDIS_PORT",
        "REDIS_MAX_CONNECTIONS",
        "REDIS_CONNECTION_TIMEOUT",
        "REDIS_SOCKET_TIMEOUT",
        "REDIS_MAX_RETRIES",
        "REDIS_DB",
        "REDIS_SSL_KEY_PATH",  # a certificate without its key
        "REDIS_SSL_CERT_PATH",  # not found
    ])
    text = "\n".join(caught.value.problems)
    assert "must be set together" in text and "SSL certificate not found" in text


@pytest.mark.parametrize(
    ("url", "ssl", "problem"),
    [
        ("http://x:1", False, "must start with redis://"),
        ("redis://x:1/0", True, "does not use rediss"),
        ("unix:///run/redis/redis.sock", True, "does not use rediss"),
    ],
)
def test_url_problems(url: str, ssl: bool, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ConnectionSettings.from_config(RedisSection(url=Secret(url), ssl_enabled=ssl))


def test_retry_uses_redis_py_retry_with_jittered_exponential_backoff() -> None:
    settings = ConnectionSettings(max_retries=4, retry_on_timeout=True)
    retry = settings.retry(Retry)
    assert isinstance(retry, Retry)
    assert retry.get_retries() == 4
    assert isinstance(retry._backoff, ExponentialWithJitterBackoff)
    assert set(retry._supported_errors) == {
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        socket.timeout,
    }


def test_retry_on_timeout_false_really_removes_timeouts() -> None:
    # A default redis-py Retry includes TimeoutError; the flag alone could not remove it.
    retry = ConnectionSettings(retry_on_timeout=False).retry(Retry)
    assert set(retry._supported_errors) == {redis_errors.ConnectionError}


def test_host_port_pool_carries_timeouts_credentials_and_cap() -> None:
    settings = ConnectionSettings(
        host="h",
        port=7000,
        db=2,
        password="pw",
        max_connections=7,
        connect_timeout=1,
        socket_timeout=3,
    )
    pool = settings.build_pool(
        pool_cls=redis.BlockingConnectionPool,
        connection_cls=redis.Connection,
        ssl_connection_cls=redis.SSLConnection,
        retry_cls=Retry,
    )
    try:
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.connection_class is redis.Connection
        assert pool.max_connections == 7
        assert pool.timeout == 1
        kwargs = pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
            "h",
            7000,
            2,
            "pw",
        )
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1, 3)
        assert kwargs["decode_responses"] is False
        assert "retry_on_timeout" not in kwargs
    finally:
        pool.disconnect()


def test_tls_pool_uses_ssl_connections_with_the_configured_files(pem_files: dict[str, str]) -> None:
    settings = ConnectionSettings(
        tls=TlsFiles(pem_files["ca"], pem_files["cert"], pem_files["key"])
    )
    pool = settings.build_pool(
        pool_cls=aredis.BlockingConnectionPool,
        connection_cls=aredis.Connection,
        ssl_connection_cls=aredis.SSLConnection,
        retry_cls=AsyncRetry,
    )
    assert pool.connection_class is aredis.SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (
        pem_files["ca"],
        pem_files["cert"],
        pem_files["key"],
    )
    assert kwargs["ssl_cert_reqs"] == "required"


def test_url_wins_over_host_port_db_and_password() -> None:
    section = RedisSection(
        host="ignored",
        port=1,
        db=5,
        password=Secret("ignored"),
        url=Secret("redis://:urlpw@urlhost:7001/2"),
    )
    settings = ConnectionSettings.from_config(section)
    pool = settings.build_pool(
        pool_cls=redis.BlockingConnectionPool,
        connection_cls=redis.Connection,
        ssl_connection_cls=redis.SSLConnection,
        retry_cls=Retry,
    )
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "urlhost",
        7001,
        2,
        "urlpw",
    )
    assert settings.endpoint == "redis://:***@urlhost:7001/2"
    assert "urlpw" not in repr(settings)


def test_a_url_without_password_does_not_inherit_the_configured_one() -> None:
    settings = ConnectionSettings.from_config(
        RedisSection(password=Secret("pw"), url=Secret("redis://urlhost:7001"))
    )
    pool = settings.build_pool(
        pool_cls=redis.BlockingConnectionPool,
        connection_cls=redis.Connection,
        ssl_connection_cls=redis.SSLConnection,
        retry_cls=Retry,
    )
    assert pool.connection_kwargs.get("password") is None
    assert pool.connection_kwargs.get("db", 0) == 0


def test_rediss_url_gets_the_tls_files(pem_files: dict[str, str]) -> None:
    section = RedisSection(url=Secret("rediss://secure:6390/0"), ssl_ca_cert_path=pem_files["ca"])
    settings = ConnectionSettings.from_config(section)
    assert settings.uses_tls
    pool = settings.build_pool(
        pool_cls=redis.BlockingConnectionPool,
        connection_cls=redis.Connection,
        ssl_connection_cls=redis.SSLConnection,
        retry_cls=Retry,
    )
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"


def test_endpoint_is_printable_without_secrets() -> None:
    assert ConnectionSettings(host="h", port=1, db=2, password="pw").endpoint == "redis://h:1/2"
    assert ConnectionSettings(tls=TlsFiles()).endpoint == "rediss://localhost:6379/0"


@pytest.mark.parametrize("cls", [RedisTier, AsyncRedisTier])
async def test_from_config_sizes_the_tier_and_clamps_parallelism(
    cls: type[RedisTier] | type[AsyncRedisTier],
) -> None:
    config = StandInConfig(
        redis=RedisSection(max_connections=3),
        performance=PerformanceSection(
            batch_size=50, parallel_operations=8, connection_pool_size=10
        ),
    )
    tier = cls.from_config(config, namespace="app:")
    assert (tier.batch_size, tier.parallel_operations, tier.namespace) == (50, 3, "app:")
    pool = tier.client.connection_pool
    assert isinstance(pool, (redis.BlockingConnectionPool, aredis.BlockingConnectionPool))
    assert pool.max_connections == 3
    assert tier.hiredis_in_use == redis.utils.HIREDIS_AVAILABLE
    await call(tier.close())
    assert tier.closed


def test_from_config_refuses_bad_config_before_any_io() -> None:
    with pytest.raises(ConfigError):
        RedisTier.from_config(StandInConfig(redis=RedisSection(port=70000)), namespace="app:")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"namespace": ""}, ValueError),
        ({"namespace": "a:", "batch_size": 0}, ValueError),
        ({"namespace": "a:", "parallel_operations": 0}, ValueError),
        ({"namespace": "a:", "batch_size": 2.0}, TypeError),
    ],
)
def test_constructor_validates_its_arguments(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RedisTier(redis.Redis(), **kwargs)  # type: ignore[arg-type]


def test_a_decoding_client_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisTier(redis.Redis(decode_responses=True), namespace="a:")
