"""Custom types the msgpack serializer may encode, by a stable wire name.

Stored bytes name a registered type rather than a Python import path, so
nothing read from Redis can make the decoder import or call arbitrary code:
it can only reach constructors that were registered on purpose.

Example, a dataclass::

    from dataclasses import dataclass
    from qcache.codec import register_dataclass

    @register_dataclass(name="search.hit")
    @dataclass(frozen=True)
    class Hit:
        path: str
        score: float

Any other class registers a pair of functions::

    register_type(Money, name="billing.money",
                  to_state=lambda m: [m.amount, m.currency],
                  from_state=lambda s: Money(*s))

The state may be any value the serializer supports, including other
registered types. Keep the name stable across releases: an entry whose name
is not registered in the reading process is rejected as a miss.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np

T = TypeVar("T", bound=type)

#: Types the serializer handles itself; registering one would be silently ignored.
BUILTIN_TYPES: frozenset[type] = frozenset(
    {
        type(None), bool, int, float, str, bytes, bytearray, memoryview, list, tuple, dict,
        set, frozenset, _dt.datetime, _dt.date, _dt.timedelta, np.ndarray,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class CustomType:
    """One registered type: its wire name and the functions that cross the wire."""

    cls: type
    name: str
    to_state: Callable[[Any], Any]
    from_state: Callable[[Any], Any]


class TypeRegistry:
    """Maps classes to wire names and back; safe to extend from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_type: dict[type, CustomType] = {}
        self._by_name: dict[str, CustomType] = {}

    def register(
        self,
        cls: type,
        *,
        name: str | None = None,
        to_state: Callable[[Any], Any],
        from_state: Callable[[Any], Any],
    ) -> CustomType:
        """Register ``cls`` under ``name`` (default: ``module.QualName``).

        Registering the same class under the same name again is a no-op;
        reusing a name or a class for something else raises ``ValueError``,
        because two meanings for one wire name would decode to the wrong type.
        """
        if cls in BUILTIN_TYPES or issubclass(cls, np.generic):
            raise ValueError(f"{_type_name(cls)} is serialized natively and cannot be registered")
        wire_name = name if name is not None else _type_name(cls)
        if not isinstance(wire_name, str) or not wire_name:
            raise ValueError("a custom type needs a non-empty string name")
        entry = CustomType(cls, wire_name, to_state, from_state)
        with self._lock:
            by_name = self._by_name.get(wire_name)
            by_type = self._by_type.get(cls)
            if by_name is not None and by_name.cls is not cls:
                raise ValueError(f"type name {wire_name!r} is already registered for {_type_name(by_name.cls)}")
            if by_type is not None and by_type.name != wire_name:
                raise ValueError(f"{_type_name(cls)} is already registered as {by_type.name!r}")
            if by_type is not None:
                return by_type
            # Copy-on-write: readers on the hot path use the dicts without the lock.
            self._by_type = {**self._by_type, cls: entry}
            self._by_name = {**self._by_name, wire_name: entry}
        return entry

    @overload
    def register_dataclass(self, cls: T, *, name: str | None = None) -> T: ...
    @overload
    def register_dataclass(self, cls: None = None, *, name: str | None = None) -> Callable[[T], T]: ...

    def register_dataclass(self, cls: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Register a dataclass; usable as ``@register_dataclass`` or ``@register_dataclass(name=...)``.

        The state is the mapping of ``init=True`` fields; fields with
        ``init=False`` are recomputed by the constructor on the way back.
        """

        def decorate(klass: T) -> T:
            if not (isinstance(klass, type) and dataclasses.is_dataclass(klass)):
                raise ValueError(f"{klass!r} is not a dataclass")
            names = tuple(f.name for f in dataclasses.fields(klass) if f.init)

            def to_state(obj: Any) -> dict[str, Any]:
                return {n: getattr(obj, n) for n in names}

            def from_state(state: Any) -> Any:
                if not isinstance(state, dict):
                    raise TypeError(f"state of {_type_name(klass)} must be a mapping")
                return klass(**state)

            self.register(klass, name=name, to_state=to_state, from_state=from_state)
            return klass

        return decorate if cls is None else decorate(cls)

    def for_type(self, cls: type) -> CustomType | None:
        """The registration of exactly ``cls`` (subclasses are not matched)."""
        return self._by_type.get(cls)

    def for_name(self, name: str) -> CustomType | None:
        """The registration stored under the wire ``name``."""
        return self._by_name.get(name)

    def names(self) -> list[str]:
        """Registered wire names, sorted."""
        return sorted(self._by_name)


def _type_name(cls: type) -> str:
    """``module.QualName`` of a class, as shown in errors and used as the default wire name."""
    return f"{cls.__module__}.{cls.__qualname__}"


#: The registry used by serializers that are not given one.
default_registry = TypeRegistry()


def register_type(
    cls: type,
    *,
    name: str | None = None,
    to_state: Callable[[Any], Any],
    from_state: Callable[[Any], Any],
    registry: TypeRegistry | None = None,
) -> CustomType:
    """Register a custom type in ``registry`` (the default registry if omitted)."""
    target = default_registry if registry is None else registry
    return target.register(cls, name=name, to_state=to_state, from_state=from_state)


@overload
def register_dataclass(cls: T, *, name: str | None = None, registry: TypeRegistry | None = None) -> T: ...
@overload
def register_dataclass(
    cls: None = None, *, name: str | None = None, registry: TypeRegistry | None = None
) -> Callable[[T], T]: ...


def register_dataclass(
    cls: T | None = None, *, name: str | None = None, registry: TypeRegistry | None = None
) -> T | Callable[[T], T]:
    """Register a dataclass in ``registry`` (the default registry if omitted); also a decorator."""
    target = default_registry if registry is None else registry
    if cls is None:
        return target.register_dataclass(name=name)
    return target.register_dataclass(cls, name=name)
