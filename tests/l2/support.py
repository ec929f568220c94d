"""Helpers for the L2 tier tests: one test body for both tiers, stand-in config, fake clock."""

from __future__ import annotations

import inspect
import os
import signal
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias, TypeVar

from qcache.l2 import AsyncMemoryBackend, AsyncRedisTier, MemoryBackend, RedisTier

T = TypeVar("T")
Tier: TypeAlias = RedisTier | AsyncRedisTier | MemoryBackend | AsyncMemoryBackend

#: Every L2 backend the contract runs on: the Redis tiers (a real server) and the in-memory ones.
BACKENDS = ("sync", "async", "memory", "memory-async", "cluster", "cluster-async")

# Glob metacharacters in the namespace itself, so every test also checks that the
# tier escapes its own prefix correctly.
NAMESPACE_SUFFIX = "ns*?[x]\\:"


async def call(result: T | Awaitable[T]) -> T:
    """Await a tier call's result if it is a coroutine; lets one test body drive both tiers."""
    if inspect.isawaitable(result):
        return await result
    return result


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Secret:
    """Stand-in for qcache.config.Secret: hides the value behind reveal()."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


@dataclass(frozen=True)
class RedisSection:
    """Stand-in for ``CacheConfig.redis`` with the attribute names the tier reads."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: Secret | None = None
    username: str | None = None
    db: int = 0
    max_connections: int = 10
    connection_timeout: float = 2.0
    socket_timeout: float = 2.0
    retry_on_timeout: bool = True
    max_retries: int = 1
    ssl_enabled: bool = False
    ssl_cert_path: str | None = None
    ssl_key_path: str | None = None
    ssl_ca_cert_path: str | None = None
    url: Secret | None = None
    # Roomy, so the tests of the client's own timeouts see those; tests/l2/test_l2_deadline.py sets them.
    l2_timeout_ms: int = 10_000
    breaker_threshold: int = 5
    breaker_cooldown_ms: int = 5_000


@dataclass(frozen=True)
class PerformanceSection:
    """Stand-in for ``CacheConfig.performance``."""

    batch_size: int = 3
    parallel_operations: int = 2
    connection_pool_size: int = 2


@dataclass(frozen=True)
class StandInConfig:
    """Stand-in for :class:`qcache.config.CacheConfig` (only the sections the tier reads)."""

    redis: RedisSection = field(default_factory=RedisSection)
    performance: PerformanceSection = field(default_factory=PerformanceSection)

    def with_redis(self, **changes: Any) -> StandInConfig:
        return replace(self, redis=replace(self.redis, **changes))


def config_for(endpoint: Any, **redis_changes: Any) -> StandInConfig:
    """A stand-in config pointing at a provisioned endpoint by host/port (TLS files included)."""
    tls = endpoint.tls
    base = RedisSection(
        host=endpoint.host,
        port=endpoint.port,
        password=Secret(endpoint.password) if endpoint.password else None,
        ssl_enabled=tls is not None,
        ssl_ca_cert_path=str(tls.ca_certs) if tls else None,
        ssl_cert_path=str(tls.certfile) if tls else None,
        ssl_key_path=str(tls.keyfile) if tls else None,
    )
    return StandInConfig(redis=replace(base, **redis_changes))


def make_tier(flavour: str, config: Any, namespace: str, **kwargs: Any) -> Tier:
    """``RedisTier.from_config`` or ``AsyncRedisTier.from_config``."""
    cls = RedisTier if flavour == "sync" else AsyncRedisTier
    return cls.from_config(config, namespace=namespace, **kwargs)


@contextmanager
def frozen(server: Any, thaw_after: float) -> Iterator[None]:
    """Freeze ``server`` (SIGSTOP) for the body; it thaws after ``thaw_after`` seconds, or when the body ends."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    thaw = threading.Timer(thaw_after, os.kill, (pid, signal.SIGCONT))
    thaw.start()
    try:
        yield
    finally:
        thaw.cancel()
        os.kill(pid, signal.SIGCONT)
