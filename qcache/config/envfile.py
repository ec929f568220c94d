"""Editing ``.env`` files in place: one assignment changed, everything else kept.

Used by ``qcache config set`` and ``generate``. Files are written atomically
(a temporary file in the same directory, then ``os.replace``) with mode 600,
because they hold passwords and keys.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

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


def _assignment(key: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?P<head>\s*(?:export\s+)?{re.escape(key)}\s*=[ \t]*)(?P<rest>.*?)(?P<eol>\r?\n)?$",
        re.DOTALL,
    )


def _closing_quote(text: str, quote: str) -> int:
    """Index of the quote closing ``text[0]``, or -1 when it is not on this line."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def set_assignment(text: str, key: str, value: str) -> str:
    """``text`` with every ``KEY=`` line (also ``export KEY=``) set to ``value``.

    Comments, blank lines, other assignments and a trailing inline comment of
    the rewritten line are kept; a quoted value spanning several lines is
    replaced whole. Without such a line the assignment is appended.
    """
    pattern = _assignment(key)
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    out: list[str] = []
    found = False
    i = 0
    while i < len(lines):
        match = pattern.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        found = True
        rest, eol = match["rest"], match["eol"] or ""
        tail = ""
        if rest[:1] in ("'", '"'):
            # The value may continue on following lines until its closing quote.
            joined, j = rest + eol, i
            end = _closing_quote(joined, rest[0])
            while end < 0 and j + 1 < len(lines):
                j += 1
                joined += lines[j]
                end = _closing_quote(joined, rest[0])
            if end >= 0:
                remainder = joined[end + 1 :]
                tail = remainder.rstrip("\r\n")
                eol = remainder[len(tail) :]
                i = j
        else:
            comment = re.search(r"[ \t]+#", rest)
            if comment is not None:
                tail = rest[comment.start() :]
        out.append(f"{match['head']}{quote_value(value)}{tail}{eol}")
        i += 1
    if not found:
        if out and not out[-1].endswith("\n"):
            out.append(newline)
        out.append(f"{key}={quote_value(value)}{newline}")
    return "".join(out)


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
