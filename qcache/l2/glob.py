"""Redis glob patterns in Python, so L1 invalidation matches exactly what ``SCAN MATCH`` does.

Redis ``stringmatchlen`` semantics: ``*`` any run (including ``:``), ``?`` one
byte, ``[abc]``, ``[^abc]``, ``[a-z]`` classes of bytes, ``\\x`` a literal
``x``. Redis compares bytes, not characters: ``?`` does not match ``"é"`` (two
bytes in UTF-8) and ``[é]`` matches either of its bytes alone, so patterns and
keys are matched here on their UTF-8 bytes too (what redis-py sends). A ``[``
without its ``]`` matches the rest of the pattern as a class, as Redis does; we
reject it instead, since it is almost always a caller's mistake.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Redis MATCH (stringmatchlen) treats these as special; a backslash escapes the next character.
_GLOB_SPECIAL = frozenset("*?[]\\")


def escape_glob(text: str) -> str:
    """Escape ``* ? [ ] \\`` so that ``text`` matches itself literally in a Redis MATCH pattern."""
    if not any(ch in _GLOB_SPECIAL for ch in text):
        return text
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def utf8(text: str) -> bytes:
    """What redis-py sends for ``text`` (lone surrogates from a decoded key come back as their bytes)."""
    return text.encode("utf-8", "surrogateescape")


class Glob:
    """A compiled Redis glob; :meth:`fullmatch` tells whether Redis would match a key."""

    __slots__ = ("pattern", "regex")

    def __init__(self, pattern: str, regex: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.regex = regex

    def fullmatch(self, text: str) -> re.Match[bytes] | None:
        """The match of the whole of ``text``'s UTF-8 bytes, or None."""
        return self.regex.fullmatch(utf8(text))


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Glob:
    """The strings Redis's ``MATCH pattern`` matches, byte for byte."""
    raw = utf8(pattern)
    out: list[bytes] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i : i + 1]
        if ch == b"*":
            out.append(b".*")
        elif ch == b"?":
            out.append(b".")
        elif ch == b"\\" and i + 1 < n:
            i += 1
            out.append(re.escape(raw[i : i + 1]))
        elif ch == b"[":
            end, body = _parse_class(raw, i + 1, pattern)
            out.append(body)
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return Glob(pattern, re.compile(b"".join(out), re.DOTALL))


def _parse_class(raw: bytes, i: int, pattern: str) -> tuple[int, bytes]:
    """Translate the class starting after ``[``; return the index of ``]`` and the regex."""
    n = len(raw)
    negate = i < n and raw[i : i + 1] == b"^"
    if negate:
        i += 1
    parts: list[bytes] = []
    while i < n and raw[i : i + 1] != b"]":
        ch = raw[i : i + 1]
        if ch == b"\\" and i + 1 < n:
            i += 1
            parts.append(re.escape(raw[i : i + 1]))
        elif i + 2 < n and raw[i + 1 : i + 2] == b"-":
            # As in Redis, "x-]" is a range ending at "]", not "x", "-" and the end of the class.
            parts.extend(_byte_range(raw[i], raw[i + 2]))
            i += 2
        else:
            parts.append(re.escape(ch))
        i += 1
    if i >= n:
        raise ValueError(f"unterminated '[' in pattern {pattern!r}")
    if not parts:
        return i, b"[^\\s\\S]" if not negate else b"[\\s\\S]"
    return i, b"[" + (b"^" if negate else b"") + b"".join(parts) + b"]"


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _byte_range(first: int, last: int) -> list[bytes]:
    """The regex ranges of the bytes Redis's ``[first-last]`` matches.

    Redis compares a range's ends and the byte as C ``char``, which is signed
    on x86-64: bytes from 0x80 up sort below 0. ``[a-é]`` is the range from
    ``a`` to 0xC3 (é's first byte), so it spans 0xC3-0xFF and 0x00-0x61.
    """
    low, high = sorted((_signed(first), _signed(last)))
    spans = [(low, high)] if low >= 0 or high < 0 else [(low, -1), (0, high)]
    return [re.escape(bytes([a % 256])) + b"-" + re.escape(bytes([b % 256])) for a, b in spans]
