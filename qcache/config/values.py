"""Typed setting values: what a field accepts, how text is parsed, how values print.

One :class:`ValueKind` is derived from each dataclass field's annotation, so the
same declaration drives environment parsing, constructor coercion, the type
check in validation and the ``env``/``json`` renderings.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

from qcache.config.secret import MASK, Secret

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_INT_RE = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Choice:
    """Normaliser for a string setting with a fixed vocabulary (case-insensitive).

    ``options`` empty means any value is accepted and only the case is
    normalised (used where the vocabulary lives elsewhere, e.g. the eviction
    policy registry, which may grow after the configuration is loaded).
    """

    options: tuple[str, ...]
    case: str = "upper"
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        value = text.strip().upper() if self.case == "upper" else text.strip().lower()
        value = self.aliases.get(value, value)
        if self.options and value not in self.options:
            raise ValueError(f"expected one of {', '.join(self.options)}")
        return value


@dataclass(frozen=True)
class ValueKind:
    """What one setting accepts: its base type, optionality and constraints."""

    base: type
    optional: bool = False
    positive: bool = False
    normalize: Callable[[str], str] | None = None

    @property
    def is_secret(self) -> bool:
        return self.base is Secret

    def hint(self) -> str:
        """Short description of accepted values, for templates and docs."""
        if self.base is bool:
            return "true | false"
        if isinstance(self.base, type) and issubclass(self.base, Enum):
            return " | ".join(member.value for member in self.base)
        if isinstance(self.normalize, Choice) and self.normalize.options:
            return " | ".join(self.normalize.options)
        if self.base is int:
            return "positive integer" if self.positive else "integer"
        if self.base is float:
            return "positive number" if self.positive else "number"
        return "text"


@cache
def _hints(owner: type) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def kind_of(owner: type, f: dataclasses.Field[Any]) -> ValueKind:
    """The :class:`ValueKind` of dataclass field ``f`` declared on ``owner``."""
    hint = _hints(owner)[f.name]
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"{owner.__name__}.{f.name}: unsupported annotation {hint!r}")
        hint = args[0]
    return ValueKind(
        base=hint,
        optional=optional,
        positive=bool(f.metadata.get("positive", False)),
        normalize=f.metadata.get("normalize"),
    )


def parse(kind: ValueKind, raw: Any) -> Any:
    """Parse ``raw`` (text from the environment, or an already typed value).

    Raises ``ValueError`` whose message describes the problem without the
    variable name (the caller adds it) and never contains a secret's value.
    """
    if raw is None:
        if kind.optional:
            return None
        raise ValueError("a value is required")
    if isinstance(raw, str):
        return _parse_text(kind, raw)
    return _check_typed(kind, raw)


def _parse_text(kind: ValueKind, raw: str) -> Any:
    text = raw.strip()
    if kind.is_secret:
        # Secrets keep inner/outer spaces verbatim: they may be significant.
        if raw:
            return Secret(raw)
        if kind.optional:
            return None
        raise ValueError("a value is required")
    if kind.optional and text == "":
        return None
    base = kind.base
    if base is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected true/false (1/0, yes/no, on/off), got {raw!r}")
    if base is int:
        if not _INT_RE.fullmatch(text):
            raise ValueError(f"expected an integer, got {raw!r}")
        return _check_positive(kind, int(text), raw)
    if base is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {raw!r}")
        return _check_positive(kind, number, raw)
    if issubclass(base, Enum):
        return _parse_enum(base, text, raw)
    if kind.normalize is not None:
        try:
            return kind.normalize(text)
        except ValueError as exc:
            raise ValueError(f"{exc}, got {raw!r}") from None
    return text


def _parse_enum(base: type[Enum], text: str, raw: str) -> Enum:
    wanted = text.upper()
    for member in base:
        if str(member.value).upper() == wanted:
            return member
    allowed = ", ".join(str(member.value) for member in base)
    raise ValueError(f"expected one of {allowed}, got {raw!r}")


def _check_positive(kind: ValueKind, number: int | float, raw: Any) -> int | float:
    if kind.positive and number <= 0:
        noun = "integer" if kind.base is int else "number"
        raise ValueError(f"must be a positive {noun}, got {raw!r}")
    return number


def _check_typed(kind: ValueKind, value: Any) -> Any:
    base = kind.base
    if kind.is_secret:
        if isinstance(value, Secret):
            if value or not kind.optional:
                return value
            return None
        raise ValueError(f"expected a string or Secret, got a {type(value).__name__}")
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_positive(kind, value, value)
        raise ValueError(f"expected an integer, got {value!r}")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {value!r}")
            return _check_positive(kind, float(value), value)
        raise ValueError(f"expected a number, got {value!r}")
    if issubclass(base, Enum):
        if isinstance(value, base):
            return value
        allowed = ", ".join(str(member.value) for member in base)
        raise ValueError(f"expected one of {allowed}, got {value!r}")
    if base is str and isinstance(value, os.PathLike):
        return _parse_text(kind, os.fspath(value))
    raise ValueError(f"expected text, got {value!r}")


def coerce(kind: ValueKind, value: Any) -> Any:
    """Constructor-time normalisation: text becomes the declared enum/Secret/case.

    Numbers are left alone on purpose: range problems are reported by
    validation with every other problem, not one at a time by constructors.
    Raises ``ValueError`` for text that cannot become the declared type.
    """
    if isinstance(value, str):
        if kind.is_secret:
            return None if value == "" and kind.optional else Secret(value)
        if kind.optional and value.strip() == "":
            return None
        if isinstance(kind.base, type) and issubclass(kind.base, Enum):
            return _parse_enum(kind.base, value.strip(), value)
        if kind.base is str and kind.normalize is not None:
            try:
                return kind.normalize(value)
            except ValueError as exc:
                raise ValueError(f"{exc}, got {value!r}") from None
    elif kind.base is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def type_ok(kind: ValueKind, value: Any) -> bool:
    """Whether ``value`` has the declared type (validation reports it otherwise)."""
    if value is None:
        return kind.optional
    base = kind.base
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
        )
    return isinstance(value, base)


def to_plain(value: Any, reveal: bool = False) -> Any:
    """JSON-friendly form: enums as their value, secrets masked unless revealed."""
    if isinstance(value, Secret):
        return value.reveal() if reveal else MASK
    if isinstance(value, Enum):
        return value.value
    return value


def to_env_text(value: Any, reveal: bool = False) -> str:
    """The value as it would be written in a ``.env`` file (unset is empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(to_plain(value, reveal))
