"""A string that never shows itself: passwords, encryption keys, URLs with credentials."""

from __future__ import annotations

from typing import Any

MASK = "**********"


class Secret:
    """Holds a sensitive string and keeps it out of every printed form.

    ``repr``, ``str`` and ``format`` all render a fixed mask, so a secret that
    ends up in a log line, an exception message, a ``repr`` of a config section
    or the output of ``qcache config show`` leaks nothing, not even its length.
    Code that needs the value (the Redis client, the codec) calls
    :meth:`reveal` explicitly, which makes every real use easy to audit.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # The message deliberately omits the value: it may be the secret.
            raise TypeError(f"Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The clear-text value; call it only where the value is actually used."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))
