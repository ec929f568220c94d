"""RedisServerProcess: start, stop, kill, restart on the same port, and its failure modes."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing import RedisServerProcess, find_server_executable
from qcache.testing.process import ProcessMethod, probe_client

from .support import pid_alive, require_executable, wait_dead


@pytest.fixture(params=["binary", "embedded"])
def each_executable(request: pytest.FixtureRequest) -> Path:
    """Each redis-server this machine has."""
    return require_executable(request.param)


@pytest.fixture
def executable(process_method: ProcessMethod) -> Path:
    """One redis-server this machine has."""
    return find_server_executable(process_method)


def _ping(server: RedisServerProcess) -> bool:
    """PING once, without retries."""
    client = probe_client({**server.endpoint.client_kwargs(), "socket_timeout": 1.0})
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_restart_keeps_the_port(each_executable: Path) -> None:
    with RedisServerProcess(each_executable) as server:
        port, first_pid = server.port, server.pid
        assert first_pid is not None
        server.restart()
        assert server.port == port
        assert server.pid != first_pid
        assert not pid_alive(first_pid)
        assert _ping(server)


def test_kill_then_start_recovers_on_the_same_port(executable: Path) -> None:
    with RedisServerProcess(executable, password="pw") as server:
        client = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=1.0)
        try:
            client.set("k", "v")
            pid = server.pid
            assert pid is not None
            server.kill()
            assert not server.is_running and server.pid is None
            assert not pid_alive(pid)
            with pytest.raises(redis.ConnectionError):
                _ping(server)
            server.start()
            # The same client reconnects to the same address; no persistence, so the data is gone.
            assert client.ping()
            assert client.get("k") is None
        finally:
            client.close()


def test_stop_is_idempotent_and_close_removes_the_directory(executable: Path) -> None:
    server = RedisServerProcess(executable)
    server.start()
    pid, directory = server.pid, server.directory
    assert pid is not None and directory.is_dir()
    assert stat.S_IMODE((directory / "redis.conf").stat().st_mode) == 0o600
    server.stop()
    server.stop()
    assert not pid_alive(pid)
    assert directory.is_dir()  # kept for a restart
    server.close()
    assert not directory.exists()


def test_password_is_not_on_the_command_line(executable: Path) -> None:
    with RedisServerProcess(executable, password="sup3r-secret") as server:
        cmdline = Path(f"/proc/{server.pid}/cmdline")
        if not cmdline.exists():
            pytest.skip("no procfs to read the command line from")
        assert b"sup3r-secret" not in cmdline.read_bytes()
        assert _ping(server)


def test_a_server_that_dies_at_startup_reports_its_log(executable: Path) -> None:
    server = RedisServerProcess(executable, extra_config=["no-such-directive 1"])
    with pytest.raises(ProvisioningError, match="exited with code") as caught:
        server.start()
    assert "no-such-directive" in str(caught.value)  # the log tail explains the failure
    assert not server.is_running
    server.close()


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text(
        f"#!{sys.executable}\nimport time\nprint('pretending to start', flush=True)\ntime.sleep(30)\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    server = RedisServerProcess(fake, startup_timeout=1.0)
    with pytest.raises(ProvisioningError, match=r"did not answer PING .* within 1 s") as caught:
        server.start()
    assert "pretending to start" in str(caught.value)
    assert not server.is_running  # the hung process was stopped, not left behind
    server.close()


def test_a_taken_fixed_port_is_a_clear_error(executable: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))  # bound is enough to make redis-server's bind fail
        port = blocker.getsockname()[1]
        server = RedisServerProcess(executable, port=port)
        with pytest.raises(ProvisioningError, match=f"port {port} .* is taken"):
            server.start()
        server.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"password": "line\nbreak"},
        {"password": ""},
        {"extra_config": ["maxmemory 1mb\nrequirepass x"]},
        {"extra_config": ["--maxmemory 1mb"]},
        {"startup_timeout": 0},
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RedisServerProcess("redis-server", **kwargs)


def test_port_before_start_is_an_error() -> None:
    with pytest.raises(ProvisioningError, match="not been started"):
        _ = RedisServerProcess("redis-server").port


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from qcache.testing import RedisServerProcess, find_server_executable
    servers = []
    def start():
        servers.append(RedisServerProcess(find_server_executable(sys.argv[2])).start())
    if sys.argv[1] == "exit":
        # Started from a worker thread, which has ended by now: the server must live on
        # (the death signal is not armed there), and only the exit hook may stop it.
        worker = threading.Thread(target=start)
        worker.start()
        worker.join()
    else:
        start()
    server = servers[0]
    print(server.pid, server.is_running, flush=True)
    if sys.argv[1] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no exit hook: only the death signal helps
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
@pytest.mark.parametrize(("how", "returncode"), [("exit", 0), ("crash", -9)])
def test_server_does_not_outlive_its_parent(
    how: str, returncode: int, tmp_path: Path, process_method: ProcessMethod
) -> None:
    # A killed parent cannot remove the server's directory: keep it under tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _ORPHAN_SCRIPT, how, process_method],
        capture_output=True, text=True, timeout=30, env=env,
    )
    assert result.returncode == returncode, result.stderr
    pid_text, running = result.stdout.split()
    assert running == "True"
    pid = int(pid_text)
    if how == "exit":
        assert not pid_alive(pid), "the exit hook should have stopped the server before exiting"
    else:
        assert wait_dead(pid), f"redis-server {pid} outlived its killed parent"
