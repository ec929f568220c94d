"""Watching a ``.env`` file and applying its changes to a live configuration.

Polling (mtime, size and a content hash) rather than inotify: it needs no
extra dependency, works on every platform and on network or container bind
mounts where change events are unreliable, and a ``.env`` file is tiny.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from qcache.errors import ConfigError

if TYPE_CHECKING:
    from qcache.config.cache_config import CacheConfig

logger = logging.getLogger("qcache.config.watch")

_Fingerprint = tuple[int, int, str] | None


class WatchOutcome(str, Enum):
    """What one poll of the watched file did."""

    UNCHANGED = "unchanged"  # the file is as it was at the last poll
    APPLIED = "applied"  # it changed and the new configuration is in use
    NO_CHANGES = "no_changes"  # it changed but no setting did (e.g. a comment)
    REJECTED = "rejected"  # it changed to something invalid; the old config stays


def _fingerprint(path: Path) -> _Fingerprint:
    try:
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # missing or unreadable: itself a change worth reporting
    # The hash catches rewrites within the mtime granularity that keep the size.
    return (stat.st_mtime_ns, stat.st_size, digest)


class EnvFileWatcher:
    """Polls one ``.env`` file and reloads its configuration when it changes.

    Obtain it from :meth:`CacheConfig.watch_env_file`, which also makes ``path``
    the configuration's ``.env`` layer (a reload reads that layer's file) and
    returns the watcher already running.
    :meth:`poll_once` does one check synchronously (the thread calls it every
    ``interval`` seconds; tests call it directly to be deterministic).
    """

    def __init__(self, config: CacheConfig, path: str | Path, interval: float = 1.0) -> None:
        if not interval > 0:
            raise ConfigError(f"watch interval must be positive, got {interval!r}")
        self._config = config
        self.path = Path(path)
        self.interval = float(interval)
        self._fingerprint = _fingerprint(self.path)
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> WatchOutcome:
        """Check the file once; reload and apply it if it changed."""
        with self._poll_lock:
            current = _fingerprint(self.path)
            if current == self._fingerprint:
                return WatchOutcome.UNCHANGED
            self._fingerprint = current
            try:
                changes = self._config.reload()  # logs the applied diff itself
            except ConfigError as exc:
                logger.error(
                    "ignoring invalid change to %s, keeping the previous configuration: %s",
                    self.path,
                    "; ".join(exc.problems),
                )
                return WatchOutcome.REJECTED
            if changes:
                for warning in self._config.warnings():
                    logger.warning("configuration from %s: %s", self.path, warning)
            return WatchOutcome.APPLIED if changes else WatchOutcome.NO_CHANGES

    def start(self) -> EnvFileWatcher:
        """Start the polling thread (a daemon: it never keeps the process alive)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"qcache-env-watch:{self.path.name}", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # the watcher must outlive any one bad poll
                logger.exception("error while watching %s", self.path)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling and wait (up to ``timeout`` seconds) for the thread to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> EnvFileWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
