"""Redis glob patterns in Python, so L1 invalidation matches exactly what ``SCAN MATCH`` does.

Redis ``stringmatchlen`` semantics: ``*`` any run (including ``:``), ``?`` one
character, ``[abc]``, ``[^abc]``, ``[a-z]`` classes, ``\\x`` a literal ``x``. A
``[`` without its ``]`` matches the rest of the pattern as a class, as Redis
does; we reject it instead, since it is almost always a caller's mistake.
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


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex that fully matches the strings Redis's ``MATCH pattern`` matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end, body = _parse_class(pattern, i + 1)
            out.append(body)
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _parse_class(pattern: str, i: int) -> tuple[int, str]:
    """Translate the class starting after ``[``; return the index of ``]`` and the regex."""
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    if negate:
        i += 1
    parts: list[str] = []
    while i < n and pattern[i] != "]":
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            i += 1
            parts.append(re.escape(pattern[i]))
        elif i + 2 < n and pattern[i + 1] == "-":
            # As in Redis, "x-]" is a range ending at "]", not "x", "-" and the end of the class.
            low, high = sorted((ch, pattern[i + 2]))
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 2
        else:
            parts.append(re.escape(ch))
        i += 1
    if i >= n:
        raise ValueError(f"unterminated '[' in pattern {pattern!r}")
    if not parts:
        return i, "[^\\s\\S]" if not negate else "[\\s\\S]"
    return i, f"[{'^' if negate else ''}{''.join(parts)}]"

