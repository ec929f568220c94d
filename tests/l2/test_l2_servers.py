"""The tier against private servers: TLS end to end, passwords, URLs, server-side errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qcache.errors import BackendError
from qcache.l2 import BreakerState, CircuitBreaker

from .support import Secret, call, config_for, make_tier

pytestmark = pytest.mark.redis

ServerFactory = Callable[..., Any]


async def roundtrip(tier: Any) -> None:
    """Write, read back, batch and ping: proves the connection really works."""
    await call(tier.set(tier.namespace + "k", b"payload", 30))
    assert await call(tier.get(tier.namespace + "k")) == b"payload"
    await call(tier.set_many({tier.namespace + f"m{i}": bytes([i]) for i in range(5)}, ttl=30))
    assert await call(tier.get_many([tier.namespace + f"m{i}" for i in range(5)])) == [
        bytes([i]) for i in range(5)
    ]
    assert await call(tier.ping()) > 0


async def expect_backend_error(tier: Any, match: str) -> None:
    """The first operation fails with a BackendError matching ``match`` and counts against the breaker."""
    with pytest.raises(BackendError, match=match):
        await call(tier.get(tier.namespace + "k"))
    assert tier.breaker_stats().consecutive_failures == 1


async def test_tls_end_to_end(flavour: str, redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(tls=True)
    endpoint = server.endpoint
    assert endpoint.tls is not None

    # Mutual TLS from the REDIS_SSL_* settings, by host and port.
    tier = make_tier(flavour, config_for(endpoint), "tls:")
    try:
        assert tier.client.connection_pool.connection_class.__name__.endswith("SSLConnection")
        await roundtrip(tier)
        assert (await call(tier.server_info())).version == server.server_version
    finally:
        await call(tier.close())

    # A rediss:// URL wins over host/port; the REDIS_SSL_* files still apply.
    url = f"rediss://127.0.0.1:{endpoint.port}/0"
    config = config_for(endpoint, host="192.0.2.1", port=1, url=Secret(url))
    tier = make_tier(flavour, config, "tls-url:")
    try:
        await roundtrip(tier)
    finally:
        await call(tier.close())

    # Without our CA the server certificate cannot be verified.
    config = config_for(endpoint, ssl_ca_cert_path=None, max_retries=0)
    tier = make_tier(flavour, config, "tls-noca:", breaker=CircuitBreaker(failure_threshold=1))
    try:
        await expect_backend_error(tier, "certificate verify failed|CERTIFICATE_VERIFY_FAILED")
        assert tier.breaker.state is BreakerState.OPEN
    finally:
        await call(tier.close())

    # Plain TCP against the TLS port does not get a Redis reply.
    config = config_for(
        endpoint, ssl_enabled=False, max_retries=0, socket_timeout=0.5, connection_timeout=0.5
    )
    tier = make_tier(flavour, config, "tls-plain:")
    try:
        await expect_backend_error(tier, "GET failed")
    finally:
        await call(tier.close())


async def test_password(flavour: str, redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(password="s3cret-pw")
    endpoint = server.endpoint

    tier = make_tier(flavour, config_for(endpoint), "pw:")
    try:
        await roundtrip(tier)
    finally:
        await call(tier.close())

    for wrong in (Secret("wrong"), None):
        tier = make_tier(flavour, config_for(endpoint, password=wrong, max_retries=0), "pw-bad:")
        try:
            await expect_backend_error(tier, "GET failed \\(Authentication")
        finally:
            await call(tier.close())

    # A URL carrying the right password wins over a wrong configured one.
    url = f"redis://:s3cret-pw@127.0.0.1:{endpoint.port}/1"
    tier = make_tier(
        flavour, config_for(endpoint, password=Secret("wrong"), url=Secret(url)), "pw-url:"
    )
    try:
        await roundtrip(tier)
        assert tier.client.connection_pool.connection_kwargs["db"] == 1
    finally:
        await call(tier.close())


async def test_server_errors_name_the_operation_never_the_value(
    flavour: str, redis_server_factory: ServerFactory
) -> None:
    server = redis_server_factory(extra_config=["maxmemory 2mb", "maxmemory-policy noeviction"])
    tier = make_tier(flavour, config_for(server.endpoint), "oom:")
    # Words, so that redis-py's truncated echo of the command would show some of them.
    secret = b"SECRET " * (512 * 1024)
    try:
        with pytest.raises(
            BackendError, match=r"^Redis SET failed \(OutOfMemoryError: command not allowed"
        ) as single:
            await call(tier.set(tier.namespace + "big", secret, 30))
        with pytest.raises(
            BackendError, match=r"^Redis PIPELINE SET failed \(OutOfMemoryError"
        ) as batch:
            await call(tier.set_many([(tier.namespace + "big", secret)], ttl=30))
        for caught in (single, batch):
            assert "SECRET" not in str(caught.value)
            assert "SECRET" not in str(caught.value.__cause__)
        # The server answered: these errors do not count against the breaker.
        assert tier.breaker_stats().consecutive_failures == 0
        await call(tier.set(tier.namespace + "small", b"fits", 30))
    finally:
        await call(tier.close())


async def test_from_the_real_cache_config(
    flavour: str, redis_server_factory: ServerFactory
) -> None:
    config_module = pytest.importorskip("qcache.config")
    server = redis_server_factory(password="pw-from-env", tls=True)
    endpoint = server.endpoint
    config = config_module.CacheConfig.from_env(
        env_file=None,
        environ={},
        REDIS_HOST=endpoint.host,
        REDIS_PORT=endpoint.port,
        REDIS_PASSWORD="pw-from-env",
        REDIS_SSL_ENABLED=True,
        REDIS_SSL_CA_CERT_PATH=str(endpoint.tls.ca_certs),
        REDIS_SSL_CERT_PATH=str(endpoint.tls.certfile),
        REDIS_SSL_KEY_PATH=str(endpoint.tls.keyfile),
        REDIS_MAX_CONNECTIONS=4,
        CACHE_BATCH_SIZE=2,
        CACHE_PARALLEL_OPERATIONS=8,
        CACHE_CONNECTION_POOL_SIZE=3,
    )
    tier = make_tier(flavour, config, "real-config:")
    try:
        assert (tier.batch_size, tier.parallel_operations) == (2, 4)
        assert await call(tier.warm_up()) == 3
        await roundtrip(tier)
    finally:
        await call(tier.close())
