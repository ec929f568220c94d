"""Connection settings for the L2 tier: read from config, turned into a redis-py pool.

The settings are checked by the rules of :func:`qcache.config.validation.redis_issues`,
the same ones ``CacheConfig.validate()`` reports; the sync and async tiers pass
their own redis-py classes to :meth:`ConnectionSettings.build_pool`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as redis_errors
from redis.backoff import ExponentialWithJitterBackoff

from qcache.config.validation import Severity, redis_issues
from qcache.errors import ConfigError


class _Secret(Protocol):
    def reveal(self) -> str: ...


class RedisSection(Protocol):
    """The ``config.redis`` attributes the tier reads (``qcache.config`` provides them).

    Read-only properties so that frozen dataclasses satisfy the protocol.
    """

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def password(self) -> _Secret | str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def db(self) -> int: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def connection_timeout(self) -> float: ...
    @property
    def socket_timeout(self) -> float: ...
    @property
    def retry_on_timeout(self) -> bool: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def l2_timeout_ms(self) -> int: ...
    @property
    def breaker_threshold(self) -> int: ...
    @property
    def breaker_cooldown_ms(self) -> int: ...
    @property
    def ssl_enabled(self) -> bool: ...
    @property
    def ssl_cert_path(self) -> str | os.PathLike[str] | None: ...
    @property
    def ssl_key_path(self) -> str | os.PathLike[str] | None: ...
    @property
    def ssl_ca_cert_path(self) -> str | os.PathLike[str] | None: ...
    @property
    def url(self) -> _Secret | str | None: ...


class PerformanceSection(Protocol):
    """The ``config.performance`` attributes the tier reads."""

    @property
    def batch_size(self) -> int: ...
    @property
    def parallel_operations(self) -> int: ...
    @property
    def connection_pool_size(self) -> int: ...


class ConfigLike(Protocol):
    """What ``from_config`` needs from a :class:`qcache.config.CacheConfig`."""

    @property
    def redis(self) -> RedisSection: ...

    @property
    def performance(self) -> PerformanceSection: ...


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """TLS material; every path is optional (no CA means the system trust store)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Everything needed to open connections to one Redis server.

    Why a separate object: the sync and async tiers must build identical
    pools, retries and TLS setups, and this is the single place that decides
    them. ``url`` (``REDIS_URL``), when set, wins over host, port, db and
    password, which are then ignored (as ``qcache.config`` documents): the URL
    alone says where, which database and with which credentials, and its
    scheme decides TLS (``rediss://``); the TLS file paths still apply to a
    ``rediss`` URL.

    Retries use redis-py's own ``Retry`` with ``ExponentialWithJitterBackoff``
    (``backoff_base`` doubling per attempt, capped at ``backoff_cap``, full
    jitter), ``max_retries`` retries after the first attempt, on connection
    errors always and on timeouts only when ``retry_on_timeout`` is true. That
    choice is made through the ``Retry``'s supported errors, because a
    redis-py ``Retry`` lists ``TimeoutError`` among its default supported
    errors and, once a ``Retry`` is given (as from redis-py 5 on, always), the
    ``retry_on_timeout`` flag can only add ``TimeoutError``, never remove it;
    the flag is also deprecated since redis-py 6, so it is not passed at all.

    The pool is a *blocking* pool capped at ``max_connections``: a burst of
    callers waits up to ``connect_timeout`` for a free connection instead of
    failing with "Too many connections".
    """

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    url: str | None = field(default=None, repr=False)  # may embed a password
    max_connections: int = 10
    connect_timeout: float = 5.0
    socket_timeout: float = 5.0
    retry_on_timeout: bool = True
    max_retries: int = 3
    tls: TlsFiles | None = None
    backoff_base: float = 0.01
    backoff_cap: float = 0.5
    #: ``CACHE_L2_TIMEOUT_MS`` in seconds: the cache tier's budget per round trip (see :meth:`for_cache_tier`).
    operation_timeout: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ValueError("retry backoff needs 0 < base <= cap")

    @classmethod
    def from_config(cls, redis: RedisSection) -> ConnectionSettings:
        """Read ``config.redis``; raises :class:`ConfigError` listing every problem at once."""
        problems = [
            f"{issue.field}: {issue.message}" if issue.field else issue.message
            for issue in redis_issues(redis)
            if issue.severity is Severity.ERROR
        ]
        if problems:
            raise ConfigError(f"invalid Redis settings: {'; '.join(problems)}", problems)
        tls = None
        if redis.ssl_enabled:
            tls = TlsFiles(
                ca_certs=_path_or_none(redis.ssl_ca_cert_path),
                certfile=_path_or_none(redis.ssl_cert_path),
                keyfile=_path_or_none(redis.ssl_key_path),
            )
        return cls(
            host=redis.host,
            port=redis.port,
            db=redis.db,
            password=_reveal(redis.password),
            username=redis.username or None,
            url=_reveal(redis.url),
            max_connections=redis.max_connections,
            connect_timeout=redis.connection_timeout,
            socket_timeout=redis.socket_timeout,
            retry_on_timeout=redis.retry_on_timeout,
            max_retries=redis.max_retries,
            tls=tls,
            operation_timeout=redis.l2_timeout_ms / 1000.0,
        )

    def for_cache_tier(self) -> ConnectionSettings:
        """These settings with every wait capped at ``operation_timeout``, for the cache's L2 tier.

        No single wait (connect, free pool connection, socket read, back-off)
        may outlast the per-round-trip deadline that the tier enforces over
        all of them (see :mod:`qcache.l2.deadline`); other clients (backup,
        event stream) keep the plain timeouts.
        """
        budget = self.operation_timeout
        if budget is None:
            return self
        return replace(
            self,
            connect_timeout=min(self.connect_timeout, budget),
            socket_timeout=min(self.socket_timeout, budget),
            backoff_cap=max(self.backoff_base, min(self.backoff_cap, budget / 2)),
        )

    @property
    def scheme(self) -> str:
        """``redis``, ``rediss`` or ``unix``: the URL's scheme if a URL is set, else from ``tls``."""
        if self.url:
            return urlsplit(self.url).scheme
        return "rediss" if self.tls is not None else "redis"

    @property
    def uses_tls(self) -> bool:
        """Whether connections are TLS-wrapped."""
        return self.scheme == "rediss"

    @property
    def endpoint(self) -> str:
        """Where the tier connects, as a URL safe to log (any password replaced by ``***``)."""
        if not self.url:
            return f"{self.scheme}://{self.host}:{self.port}/{self.db}"
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))

    def retry(self, retry_cls: type[Any]) -> Any:
        """A redis-py ``Retry`` (sync or ``redis.asyncio.retry``) with jittered exponential backoff."""
        errors: tuple[type[BaseException], ...] = (redis_errors.ConnectionError,)
        if self.retry_on_timeout:
            errors += (redis_errors.TimeoutError, socket.timeout)
        backoff = ExponentialWithJitterBackoff(cap=self.backoff_cap, base=self.backoff_base)
        return retry_cls(backoff, self.max_retries, supported_errors=errors)

    def pool_kwargs(self, retry_cls: type[Any]) -> dict[str, Any]:
        """Keyword arguments shared by URL and host/port pools (TLS ones included when TLS is on)."""
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "retry": self.retry(retry_cls),
            "max_connections": self.max_connections,
            "timeout": self.connect_timeout,  # BlockingConnectionPool: wait for a free connection
            "decode_responses": False,  # the tier deals in bytes only
        }
        if not self.url:  # a URL carries its own db, user and password, or has none
            kwargs.update(db=self.db, password=self.password, username=self.username)
        if self.uses_tls:
            tls = self.tls or TlsFiles()
            kwargs.update(
                ssl_ca_certs=tls.ca_certs,
                ssl_certfile=tls.certfile,
                ssl_keyfile=tls.keyfile,
                ssl_cert_reqs="required",
            )
        return kwargs

    def build_pool(
        self,
        *,
        pool_cls: type[Any],
        connection_cls: type[Any],
        ssl_connection_cls: type[Any],
        retry_cls: type[Any],
    ) -> Any:
        """Create the blocking connection pool from redis-py classes of the sync or async flavour."""
        kwargs = self.pool_kwargs(retry_cls)
        if self.url:
            return pool_cls.from_url(self.url, **kwargs)
        connection = ssl_connection_cls if self.uses_tls else connection_cls
        return pool_cls(connection_class=connection, host=self.host, port=self.port, **kwargs)


def _reveal(value: _Secret | str | None) -> str | None:
    """The clear text of a config secret (a plain str is accepted too); empty means unset."""
    if value is None:
        return None
    text = value if isinstance(value, str) else value.reveal()
    return text or None


def _path_or_none(value: str | os.PathLike[str] | None) -> str | None:
    """Config paths may be str or PathLike; empty means unset."""
    if value is None:
        return None
    text = os.fspath(value)
    return text or None
