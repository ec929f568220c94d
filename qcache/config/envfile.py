"""Editing ``.env`` files: one assignment changed by python-dotenv, every other line kept.

Used by ``qcache config set`` and ``generate``. ``set`` checks the edited text
before it replaces the file, so :func:`dotenv.set_key` edits a private copy and
the result is written atomically (a temporary file in the same directory, then
``os.replace``) with mode 600, because such files hold passwords and keys.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from dotenv import set_key

ENV_FILE_MODE = 0o600
_SAFE_UNQUOTED = re.compile(r"[A-Za-z0-9_./:,@%+=-]*")


def quote_value(value: str) -> str:
    """``value`` as a ``.env`` value that python-dotenv reads back unchanged."""
    if _SAFE_UNQUOTED.fullmatch(value):
        return value
    if "'" not in value and "\\" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"  # single quotes: literal, nothing to escape
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def set_assignment(text: str, key: str, value: str) -> str:
    """``text`` with every ``KEY=`` line (also ``export KEY=``) replaced by ``KEY=value``, as set_key does it.

    Comments, blank lines and other assignments are kept as they are; the
    rewritten line loses a trailing comment and ``export``. Without such a line
    the assignment is appended. ``value`` is quoted by :func:`quote_value`.
    """
    with tempfile.TemporaryDirectory(prefix="qcache-env-") as directory:
        copy = Path(directory) / "edit.env"
        copy.write_text(text, encoding="utf-8", newline="")
        set_key(copy, key, quote_value(value), quote_mode="never")
        with open(copy, encoding="utf-8", newline="") as edited:  # keeps the file's own line endings
            return edited.read()


def atomic_write(path: Path, text: str, mode: int = ENV_FILE_MODE) -> None:
    """Replace ``path`` with ``text`` in one step; the file ends up with ``mode``.

    A symlinked ``.env`` is followed: its target is rewritten and the link kept.
    """
    path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
