"""What a client needs to reach a provisioned Redis: address, credentials, TLS files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from qcache.testing.process import RedisServerProcess

#: How a Redis server was obtained, in the order provisioning tries them.
Method = Literal["url", "docker", "binary", "embedded"]
METHODS: tuple[Method, ...] = ("url", "docker", "binary", "embedded")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for one side of a TLS connection.

    For a client: the CA that signed the server certificate, plus the client
    certificate and key (the throwaway servers accept clients with or without
    a certificate, so mutual-TLS code paths can be exercised too). The field
    names follow redis-py's ``ssl_ca_certs`` / ``ssl_certfile`` / ``ssl_keyfile``.
    """

    ca_certs: Path
    certfile: Path
    keyfile: Path


@dataclass(frozen=True)
class RedisEndpoint:
    """A reachable Redis server and how it was provisioned.

    ``url`` carries scheme, password, host, port and database, so
    ``redis.Redis.from_url(endpoint.url)`` works for plain servers; TLS
    clients also need the files in ``tls`` (``client_kwargs()`` has them all).
    ``process`` is the server process when this helper started it (binary or
    embedded) so fault tests can stop or restart it; it is ``None`` for a
    server reached through ``REDIS_URL`` or run in a container.
    """

    url: str
    host: str
    port: int
    password: str | None
    tls: TLSFiles | None
    method: Method
    server_version: str | None
    #: Why earlier methods in the order were passed over (one line each).
    notes: tuple[str, ...] = ()
    process: RedisServerProcess | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        # The default repr would print the password; logs and test reports show this.
        return (
            f"RedisEndpoint(url={self.redacted_url!r}, method={self.method!r}, "
            f"server_version={self.server_version!r}, tls={self.tls is not None})"
        )

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***`` (safe to print)."""
        return redact_url(self.url)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis(...)`` or ``redis.asyncio.Redis(...)``."""
        kwargs = _kwargs_from_url(self.url)
        if self.tls is not None:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=str(self.tls.ca_certs),
                ssl_certfile=str(self.tls.certfile),
                ssl_keyfile=str(self.tls.keyfile),
            )
        return kwargs

    def describe(self) -> dict[str, Any]:
        """A printable summary (no secrets), e.g. for benchmark machine info."""
        return {
            "method": self.method,
            "server_version": self.server_version,
            "url": self.redacted_url,
            "tls": self.tls is not None,
            "password": self.password is not None,
        }


def build_url(host: str, port: int, *, password: str | None, tls: bool, db: int = 0) -> str:
    """A ``redis://`` or ``rediss://`` URL; the password is percent-encoded."""
    scheme = "rediss" if tls else "redis"
    auth = f":{quote(password, safe='')}@" if password is not None else ""
    return f"{scheme}://{auth}{host}:{port}/{db}"


def redact_url(url: str) -> str:
    """Replace the password of ``url`` (if any) with ``***``; never raises."""
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # e.g. a non-numeric port: say nothing that could hold a secret
        return "<unparsable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literals need their brackets back
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _kwargs_from_url(url: str) -> dict[str, Any]:
    """Translate a Redis URL into constructor kwargs (redis-py's parser, minus its pool-only keys)."""
    from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

    kwargs: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    connection_class = kwargs.pop("connection_class", None)
    if connection_class is SSLConnection:
        kwargs["ssl"] = True
    elif connection_class is UnixDomainSocketConnection:
        kwargs["unix_socket_path"] = kwargs.pop("path")
    return kwargs
