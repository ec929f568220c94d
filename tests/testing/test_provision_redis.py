"""provision_redis: each method this machine can run, the options, the order and the errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import redis

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing import (
    Method,
    RedisServerProcess,
    TLSUnsupportedError,
    find_server_executable,
    provision_redis,
)
from qcache.testing import process as process_module
from qcache.testing.process import ProcessMethod, probe_client

from .support import pid_alive, require_executable

pytestmark = pytest.mark.usefixtures("clean_env")


def _roundtrip(client_kwargs: dict[str, Any], key: str = "qcache-provision-test") -> object:
    """SET then GET through a fresh client, which proves the endpoint is usable."""
    client = redis.Redis(**client_kwargs)
    try:
        client.set(key, b"value", ex=30)
        return client.get(key)
    finally:
        client.close()


def test_default_order_uses_binary_when_no_url_and_no_docker() -> None:
    require_executable("binary")
    with provision_redis() as endpoint:
        assert endpoint.method == "binary"
        assert endpoint.host == "127.0.0.1"
        assert endpoint.url == f"redis://127.0.0.1:{endpoint.port}/0"
        assert endpoint.server_version and endpoint.server_version[0].isdigit()
        assert _roundtrip(endpoint.client_kwargs()) == b"value"
        # The passed-over methods say why, one line each.
        assert [note.split(":", 1)[0] for note in endpoint.notes] == ["url", "docker"]
        assert "REDIS_URL is not set" in endpoint.notes[0]
        assert endpoint.process is not None and endpoint.process.is_running


def test_started_server_is_loopback_only_and_keeps_nothing_on_disk(process_method: ProcessMethod) -> None:
    with provision_redis(methods=(process_method,)) as endpoint:
        client = redis.Redis(**endpoint.client_kwargs())
        try:
            config = client.config_get("*")
        finally:
            client.close()
        assert str(config["bind"]).split() == ["127.0.0.1"]
        assert config["save"] == ""
        assert config["appendonly"] == "no"
        assert endpoint.process is not None
        assert Path(str(config["dir"])).resolve() == endpoint.process.directory.resolve()


def test_process_is_gone_after_the_block(process_method: ProcessMethod) -> None:
    with provision_redis(methods=(process_method,)) as endpoint:
        assert endpoint.process is not None
        pid, directory = endpoint.process.pid, endpoint.process.directory
        assert pid is not None and pid_alive(pid)
    assert not pid_alive(pid)
    assert not directory.exists()


def test_process_is_gone_when_the_body_raises(process_method: ProcessMethod) -> None:
    pid = None
    with pytest.raises(RuntimeError, match="boom"):
        with provision_redis(methods=(process_method,)) as endpoint:
            assert endpoint.process is not None
            pid = endpoint.process.pid
            raise RuntimeError("boom")
    assert pid is not None and not pid_alive(pid)


def test_embedded_forced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    executable = require_executable("embedded")
    # A redis-server on PATH must not be picked up when embedded is forced.
    decoy = tmp_path / "redis-server"
    decoy.write_text("#!/bin/sh\nexit 1\n", encoding="ascii")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with provision_redis(methods=("embedded",)) as endpoint:
        assert endpoint.method == "embedded"
        assert endpoint.process is not None
        assert endpoint.process.executable == executable
        assert _roundtrip(endpoint.client_kwargs()) == b"value"


def test_no_redis_server_on_path_falls_to_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_executable("embedded")
    monkeypatch.setenv("PATH", str(tmp_path))
    with provision_redis() as endpoint:
        assert endpoint.method == "embedded"
        assert any(note == "binary: no redis-server on PATH" for note in endpoint.notes)
        assert _roundtrip(endpoint.client_kwargs()) == b"value"


def test_every_method_failing_lists_each_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = (("qcache_no_such_package", "bin/redis-server"),)
    monkeypatch.setattr(process_module, "EMBEDDED_PACKAGES", missing)
    with pytest.raises(ProvisioningError) as caught:
        with provision_redis():
            pass  # pragma: no cover - never entered
    message = str(caught.value)
    assert "url: REDIS_URL is not set" in message
    assert "docker: no Docker daemon" in message
    assert "binary: no redis-server on PATH" in message
    assert "embedded: no embedded redis-server: qcache_no_such_package not installed" in message


@pytest.mark.parametrize(
    ("method", "reason"),
    [("url", "REDIS_URL is not set"), ("docker", "no Docker daemon"), ("binary", "no redis-server on PATH")],
)
def test_forcing_an_unavailable_method_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, method: str, reason: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProvisioningError, match=reason):
        with provision_redis(methods=(method,)):  # type: ignore[arg-type]
            pass  # pragma: no cover


@pytest.mark.parametrize("methods", [("nope",), (), "binary"])
def test_bad_method_names_are_a_config_error(methods: object) -> None:
    with pytest.raises(ConfigError):
        with provision_redis(methods=methods):  # type: ignore[arg-type]
            pass  # pragma: no cover


@pytest.mark.parametrize("method", ["binary", "embedded"])
def test_password(method: ProcessMethod) -> None:
    require_executable(method)
    password = 'p@ss "word" with spaces\\and/slash'
    with provision_redis(password=password, methods=(method,)) as endpoint:
        assert endpoint.password == password
        assert "***" in endpoint.redacted_url and "word" not in endpoint.redacted_url
        assert "word" not in repr(endpoint)
        assert _roundtrip(endpoint.client_kwargs()) == b"value"
        # The URL alone is enough for a plain server, password included.
        from_url = redis.Redis.from_url(endpoint.url)
        try:
            assert from_url.ping()
        finally:
            from_url.close()
        anonymous = probe_client({"host": endpoint.host, "port": endpoint.port})
        try:
            with pytest.raises(redis.AuthenticationError):
                anonymous.ping()
        finally:
            anonymous.close()


def test_extra_config_and_args_reach_the_server(process_method: ProcessMethod) -> None:
    with provision_redis(
        methods=(process_method,), extra_config=["maxmemory 12mb", "maxmemory-policy allkeys-lru"],
        extra_args=["--databases", "4"],
    ) as endpoint:
        client = redis.Redis(**endpoint.client_kwargs())
        try:
            assert client.config_get("maxmemory")["maxmemory"] == str(12 * 1024 * 1024)
            assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
            assert client.config_get("databases")["databases"] == "4"
        finally:
            client.close()


def test_tls_client_connects_with_the_generated_ca(process_method: ProcessMethod) -> None:
    try:
        cm = provision_redis(tls=True, password="secret", methods=(process_method,))
        endpoint = cm.__enter__()
    except ProvisioningError as exc:
        if isinstance(exc.__cause__, TLSUnsupportedError):
            first_line = str(exc.__cause__).splitlines()[0]
            pytest.skip(f"no TLS-capable redis-server here: {first_line}")
        raise
    try:
        assert endpoint.tls is not None
        assert endpoint.url.startswith("rediss://")
        for path in (endpoint.tls.ca_certs, endpoint.tls.certfile, endpoint.tls.keyfile):
            assert path.is_file()
        assert os.stat(endpoint.tls.keyfile).st_mode & 0o077 == 0
        # Mutual TLS with the client certificate, hostname checked against the certificate.
        assert _roundtrip(endpoint.client_kwargs()) == b"value"
        # Only the CA, through the URL: the server accepts clients without a certificate.
        ca_only = redis.Redis.from_url(endpoint.url, ssl_ca_certs=str(endpoint.tls.ca_certs))
        try:
            assert ca_only.ping()
        finally:
            ca_only.close()
        # A client that does not trust the CA is refused, so the certificate really is checked.
        untrusting = probe_client({
            "host": endpoint.host, "port": endpoint.port, "password": "secret", "ssl": True,
            "ssl_ca_certs": str(_foreign_ca(endpoint.tls.ca_certs.parent)),
        })
        try:
            with pytest.raises(redis.ConnectionError):
                untrusting.ping()
        finally:
            untrusting.close()
        # TLS only: a plain-text client gets no answer on that port.
        plain = probe_client({
            "host": endpoint.host, "port": endpoint.port, "password": "secret",
            "socket_timeout": 1.0, "socket_connect_timeout": 1.0,
        })
        try:
            with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
                plain.ping()
        finally:
            plain.close()
    finally:
        cm.__exit__(None, None, None)


def _foreign_ca(directory: Path) -> Path:
    """A CA that signed nothing the server uses."""
    from qcache.testing.tls import generate_tls_files

    _, client = generate_tls_files(directory / "foreign")
    return client.ca_certs


def test_tls_on_a_build_without_tls_is_a_clear_error() -> None:
    executable = require_executable("embedded")
    server = RedisServerProcess(executable, tls=True, method="embedded")
    try:
        server.start()
    except TLSUnsupportedError as exc:
        assert "without TLS support" in str(exc)
        assert not server.is_running
    else:  # a newer embedded build with TLS is fine too, as long as TLS works
        assert server.tls is not None
        assert _roundtrip(server.endpoint.client_kwargs()) == b"value"
    finally:
        server.close()


# ---------------------------------------------------------------- REDIS_URL
def test_redis_url_is_used_as_is_and_left_running(
    monkeypatch: pytest.MonkeyPatch, process_method: ProcessMethod
) -> None:
    with RedisServerProcess(find_server_executable(process_method), password="pw") as own:
        url = own.endpoint.url
        monkeypatch.setenv("REDIS_URL", url)
        with provision_redis() as endpoint:
            assert endpoint.method == "url"
            assert endpoint.url == url
            assert endpoint.process is None
            assert endpoint.password == "pw"
            assert endpoint.server_version == own.server_version
            assert _roundtrip(endpoint.client_kwargs(), "qcache-url-test") == b"value"
        # Not ours: still running, data untouched (never flushed).
        assert own.is_running
        check = redis.Redis(**own.endpoint.client_kwargs())
        try:
            assert check.get("qcache-url-test") == b"value"
        finally:
            check.close()


def test_redis_url_skipped_for_requests_it_cannot_honour(
    monkeypatch: pytest.MonkeyPatch, process_method: ProcessMethod
) -> None:
    with RedisServerProcess(find_server_executable(process_method)) as own:
        monkeypatch.setenv("REDIS_URL", own.endpoint.url)
        order: tuple[Method, ...] = ("url", process_method)
        with provision_redis(password="other", methods=order) as endpoint:
            assert endpoint.method == process_method
            assert "does not carry the requested password" in endpoint.notes[0]
            assert endpoint.port != own.port
        with provision_redis(extra_config=["maxmemory 1mb"], methods=order) as endpoint:
            assert endpoint.method == process_method
            assert "extra config cannot be applied" in endpoint.notes[0]


def test_redis_url_that_does_not_answer_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        monkeypatch.setenv("REDIS_URL", f"redis://:hidden@127.0.0.1:{port}/0")
        with pytest.raises(ProvisioningError, match="REDIS_URL is set") as caught:
            with provision_redis():
                pass  # pragma: no cover
    assert "hidden" not in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"password": "a\nrequirepass b"}, {"extra_config": "maxmemory 1mb"}, {"startup_timeout": -1}],
)
def test_bad_options_fail_before_any_method_is_tried(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        with provision_redis(methods=("binary",), **kwargs):
            pass  # pragma: no cover


def test_an_unparsable_redis_url_is_a_clear_error_that_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret-pw@localhost:abc/0")
    with pytest.raises(ProvisioningError) as raised:
        with provision_redis():
            pass
    assert "REDIS_URL" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)
