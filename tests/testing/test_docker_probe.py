"""The Docker ping: absent, hanging and answering daemons, each with a bounded wait."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qcache.errors import ProvisioningError
from qcache.testing import provision_redis
from qcache.testing.docker_probe import ping_docker, resolve_docker_host
from qcache.testing.process import ProcessMethod

_STOP_POLL_S = 0.05


class FakeDaemon:
    """A unix-socket server standing in for a Docker daemon; ``reply`` None means never answer."""

    def __init__(self, path: Path, reply: bytes | None) -> None:
        self.path = path
        self.reply = reply
        self.connections = 0
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        self._server.settimeout(_STOP_POLL_S)  # so the accept loop notices stop() promptly
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="fake-docker", daemon=True)

    def __enter__(self) -> FakeDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._server.close()
        assert not self._thread.is_alive(), "the fake daemon did not stop"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.reply is None:
                self._held.append(conn)  # accept, then stay silent like a hung daemon
                continue
            with conn:
                conn.settimeout(1)
                conn.recv(4096)
                conn.sendall(self.reply)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="qc-") as name:
        yield Path(name)


def test_absent_socket_fails_fast(socket_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProvisioningError, match="does not exist"):
        ping_docker(f"unix://{socket_dir}/docker.sock", timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_refused_tcp_fails_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ProvisioningError, match="no Docker daemon"):
            ping_docker(f"tcp://127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_hanging_daemon_is_abandoned_after_the_timeout(socket_dir: Path) -> None:
    path = socket_dir / "docker.sock"
    with FakeDaemon(path, reply=None) as daemon:
        started = time.monotonic()
        with pytest.raises(ProvisioningError, match="did not answer /_ping within 0.5 s"):
            ping_docker(f"unix://{path}", timeout=0.5)
        elapsed = time.monotonic() - started
        assert daemon.connections == 1
    assert 0.4 <= elapsed < 5.0  # waited for the answer, but not the SDK's 60 s


def test_answering_daemon_passes(socket_dir: Path) -> None:
    path = socket_dir / "docker.sock"
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
    with FakeDaemon(path, reply=ok) as daemon:
        ping_docker(f"unix://{path}", timeout=2.0)
        assert daemon.connections == 1


def test_daemon_error_status_is_reported(socket_dir: Path) -> None:
    path = socket_dir / "docker.sock"
    with FakeDaemon(path, reply=b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"):
        with pytest.raises(ProvisioningError, match="500 Internal Server Error"):
            ping_docker(f"unix://{path}", timeout=2.0)


def test_docker_host_from_environment(monkeypatch: pytest.MonkeyPatch, socket_dir: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_dir}/x.sock")
    assert resolve_docker_host() == f"unix://{socket_dir}/x.sock"


def test_absent_docker_falls_through_quickly(
    monkeypatch: pytest.MonkeyPatch, socket_dir: Path, process_method: ProcessMethod
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_dir}/missing.sock")
    started = time.monotonic()
    with provision_redis(methods=("docker", process_method)) as endpoint:
        elapsed = time.monotonic() - started
        assert endpoint.method == process_method
        assert endpoint.notes[0].startswith("docker: no Docker daemon")
    assert elapsed < 2.0


def test_hanging_docker_falls_through_after_two_seconds(
    monkeypatch: pytest.MonkeyPatch, socket_dir: Path, process_method: ProcessMethod
) -> None:
    path = socket_dir / "docker.sock"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with FakeDaemon(path, reply=None):
        started = time.monotonic()
        with provision_redis(methods=("docker", process_method)) as endpoint:
            elapsed = time.monotonic() - started
            assert endpoint.method == process_method
            assert "did not answer /_ping within 2 s" in endpoint.notes[0]
    assert 1.9 <= elapsed < 10.0  # the 2 s guard, not the SDK's 60 s


def test_daemon_that_pings_but_cannot_run_a_container_falls_through(
    monkeypatch: pytest.MonkeyPatch, socket_dir: Path, process_method: ProcessMethod
) -> None:
    path = socket_dir / "docker.sock"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    # Answers every request with a plain "OK", which is a valid /_ping but not a Docker API.
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
    with FakeDaemon(path, reply=ok) as daemon:
        with provision_redis(methods=("docker", process_method)) as endpoint:
            assert endpoint.method == process_method
            assert endpoint.notes[0].startswith("docker: the Redis container did not start")
        assert daemon.connections >= 2  # the ping, then the SDK's own requests
