"""The audit trail: JSON lines, rotated, written by a background thread, never a value or a secret.

Each line holds the time, the role, the project, the operation, a hash of the
key (the key itself only with ``include_keys``), the outcome and, for a
denial, why. A request only appends a tuple to a deque (tens of
nanoseconds); a writer thread wakes every 0.2 s, or sooner once a batch is
waiting, and does the hashing, the JSON and the writing, so auditing adds
little to a request. The file is rotated at 10 MB (five old files kept) and
created with mode 600. If the writer falls more than :data:`MAX_PENDING`
records behind, the oldest are dropped and a line says how many: the trail
never grows memory without bound and never hides a gap.

A path that cannot be written is reported once, as a warning when the trail
is built, and the trail is then off: auditing never fails a request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from collections import deque
from pathlib import Path
from typing import IO

from qcache.cache.oplog import key_hash

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
MAX_PENDING = 100_000
_BATCH = 512
_INTERVAL = 0.2

log = logging.getLogger("qcache.access")

_Record = tuple[float, str, str, str, str | None, str, str | None]


def _open(path: Path) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)  # an existing file keeps its mode on open: tighten it
    return os.fdopen(fd, "a", encoding="utf-8")


class AuditTrail:
    """Appends audit records to ``path`` from a background thread."""

    def __init__(self, path: str | os.PathLike[str], *, include_keys: bool = False,
                 max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = Path(path)
        self.include_keys = include_keys
        self.max_bytes = max_bytes
        self.backups = backups
        self.enabled = False
        self.dropped = 0
        self._pending: deque[_Record] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stamp_second = -1
        self._stamp = ""
        self._heads: dict[tuple[str, str, str, str], str] = {}
        try:
            self._file: IO[str] | None = _open(self.path)
        except OSError as exc:
            self._file = None
            warnings.warn(f"qcache: the audit trail is off: {self.path} cannot be written ({exc.strerror or exc})",
                          RuntimeWarning, stacklevel=3)
            log.warning("qcache: the audit trail is off: %s cannot be written (%s)", self.path, exc.strerror or exc)
            return
        self._thread = threading.Thread(target=self._run, name="qcache-audit", daemon=True)
        self._thread.start()
        self.enabled = True

    def record(self, *, role: str, project: str, operation: str, key: str | None, outcome: str,
               detail: str | None = None) -> None:
        """Queue one record (returns at once; the writer thread formats and writes it)."""
        if not self.enabled:
            return
        pending = self._pending
        pending.append((time.time(), role, project, operation, key, outcome, detail))
        if len(pending) > MAX_PENDING:
            pending.popleft()
            self.dropped += 1
        if len(pending) >= _BATCH:
            self._wake.set()

    def _line(self, record: _Record) -> str:
        """One JSON line. The writer formats thousands a second, so the parts that repeat are cached."""
        at, role, project, operation, key, outcome, detail = record
        second = int(at)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        head = self._heads.get((role, project, operation, outcome))
        if head is None:
            head = (f', "role": {json.dumps(role)}, "project": {json.dumps(project)}, '
                    f'"operation": {json.dumps(operation)}, "outcome": {json.dumps(outcome)}')
            if len(self._heads) < 10_000:
                self._heads[(role, project, operation, outcome)] = head
        parts = [f'{{"time": "{self._stamp}.{int(at * 1000) % 1000:03d}Z"', head,
                 ', "key_hash": null' if key is None else f', "key_hash": "{key_hash(key)}"']
        if self.include_keys and key is not None:
            parts.append(f', "key": {json.dumps(key, ensure_ascii=False)}')
        if detail:
            parts.append(f', "detail": {json.dumps(detail, ensure_ascii=False)}')
        parts.append("}\n")
        return "".join(parts)

    def _write_pending(self) -> None:
        pending, file = self._pending, self._file
        if file is None:
            return
        lines = []
        while pending:
            lines.append(self._line(pending.popleft()))
        if self.dropped:
            gap = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "outcome": "dropped",
                   "count": self.dropped}
            lines.append(json.dumps(gap) + "\n")
            self.dropped = 0
        if not lines:
            return
        try:
            file.write("".join(lines))
            file.flush()
            if file.tell() >= self.max_bytes:
                self._rotate()
        except OSError as exc:  # a full disk must not take requests down: say so, keep going
            log.error("qcache: could not write the audit trail %s: %s", self.path, exc)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = _open(self.path)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_INTERVAL)
            self._wake.clear()
            self._write_pending()

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        if not self.enabled:
            return
        self.enabled = False
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._write_pending()
        if self._file is not None:
            self._file.close()
            self._file = None
