"""Is a Docker daemon answering? Asked with a hard time bound.

The docker SDK (and so testcontainers) waits up to 60 s on a daemon that
accepts connections but never answers. Provisioning must fall through to the
next method quickly instead, so the ping here is bounded end to end: a raw
``GET /_ping`` with a socket deadline for unix and plain tcp hosts, and the
SDK in a daemon thread joined with a timeout for anything else (ssh, TLS).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlsplit

from qcache.errors import ProvisioningError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_MAX_RESPONSE = 64 * 1024


def resolve_docker_host() -> str:
    """The daemon address testcontainers would use.

    Same precedence as testcontainers: ``tc.host`` in ~/.testcontainers.properties,
    then ``DOCKER_HOST``, then the current docker context, then the local socket.
    """
    try:
        from testcontainers.core.docker_client import get_docker_host
    except ImportError:
        return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    return get_docker_host() or DEFAULT_DOCKER_HOST


def ping_docker(host: str, timeout: float = 2.0) -> None:
    """Return when the daemon at ``host`` answers ``/_ping`` within ``timeout`` seconds.

    Raises ProvisioningError saying why not (no socket, refused, no answer in time, ...).
    """
    parts = urlsplit(host)
    tls_env = bool(os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"))
    if parts.scheme in ("unix", "http+unix"):
        _raw_ping(socket.AF_UNIX, parts.path, host, timeout)
    elif parts.scheme in ("tcp", "http") and not tls_env:
        if parts.hostname is None:
            raise ProvisioningError(f"docker host {host!r} has no host name")
        _raw_ping(socket.AF_INET, (parts.hostname, parts.port or 2375), host, timeout)
    else:
        _sdk_ping(host, timeout)


def _raw_ping(family: int, address: str | tuple[str, int], host: str, timeout: float) -> None:
    """``GET /_ping`` over a socket; every step shares one deadline."""
    if family == socket.AF_UNIX and isinstance(address, str) and not os.path.exists(address):
        raise ProvisioningError(f"no Docker daemon: {address} does not exist")
    deadline = time.monotonic() + timeout
    if family == socket.AF_INET:
        # getaddrinfo cannot be given a timeout; loopback or literal addresses resolve at once.
        assert isinstance(address, tuple)
        family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)[0][0]
    response = bytearray()
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(_remaining(deadline, host, timeout))
            sock.connect(address)
            sock.settimeout(_remaining(deadline, host, timeout))
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            while len(response) < _MAX_RESPONSE:
                sock.settimeout(_remaining(deadline, host, timeout))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                response += chunk
                if _complete(response):
                    break
    except TimeoutError:
        raise ProvisioningError(
            f"Docker daemon at {host} did not answer /_ping within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise ProvisioningError(f"no Docker daemon at {host}: {exc}") from exc
    status_line = bytes(response).split(b"\r\n", 1)[0]
    fields = status_line.split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or fields[1] != b"200":
        shown = status_line.decode("ascii", "replace") or "no response"
        raise ProvisioningError(f"Docker daemon at {host} answered /_ping with {shown!r}")


def _complete(response: bytearray) -> bool:
    """True once the status line is in (the body of /_ping does not matter)."""
    return b"\r\n" in response


def _remaining(deadline: float, host: str, timeout: float) -> float:
    """Seconds left before ``deadline``; a TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"{host}: {timeout:g} s passed")
    return left


def _sdk_ping(host: str, timeout: float) -> None:
    """Ping through the docker SDK in a daemon thread, abandoned if it outlives ``timeout``."""
    try:
        import docker
        from docker.utils import kwargs_from_env
    except ImportError as exc:
        raise ProvisioningError(f"the docker SDK is not installed ({exc})") from exc
    outcome: list[BaseException | None] = []

    def ping() -> None:
        try:
            kwargs = kwargs_from_env()
            kwargs["base_url"] = host
            client = docker.DockerClient(
                **kwargs, timeout=max(1, int(timeout)), use_ssh_client=host.startswith("ssh://")
            )
            try:
                client.ping()
            finally:
                client.close()
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread below
            outcome.append(exc)

    thread = threading.Thread(target=ping, name="qcache-docker-ping", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise ProvisioningError(f"Docker daemon at {host} did not answer within {timeout:g} s")
    if outcome[0] is not None:
        raise ProvisioningError(f"no Docker daemon at {host}: {outcome[0]}") from outcome[0]
