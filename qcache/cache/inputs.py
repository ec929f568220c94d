"""Checks of what callers pass in (keys, TTLs): bad input is a clear error, before any tier is touched."""

from __future__ import annotations

#: Longest TTL a caller may ask for (10 years): far inside what Redis accepts as ``PX``.
MAX_TTL = 10 * 365 * 24 * 3600.0


def check_key(key: object) -> str:
    """``key`` as a plain str (a str subclass such as a StrEnum member gives its text); TypeError otherwise."""
    if type(key) is not str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        key = str.__str__(key)  # the text itself, whatever the subclass's __str__ says
    if not key.isascii():
        # Redis keys travel as UTF-8: refuse here, not later in a write-back batch it would sink.
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("cache keys must be encodable as UTF-8; this one holds a lone surrogate") from None
    return key


def check_ttl(ttl: object) -> float:
    """``ttl`` in seconds as a float; TypeError or ValueError unless it is a number in (0, MAX_TTL]."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    # The cap keeps PX in Redis's range: a refused write would otherwise sit in a write-back batch.
    if not (0 < ttl <= MAX_TTL):
        raise ValueError(f"ttl must be a number of seconds > 0 and <= {MAX_TTL:.0f} (10 years), got {ttl!r}")
    return float(ttl)
