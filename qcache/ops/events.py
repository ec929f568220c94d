"""Events and the invalidations they imply, decided without touching a cache.

A handler turns an event's data into *actions* (drop a glob, delete a key,
clear the namespace) instead of calling the cache itself, so one handler
serves the sync and the async cache alike and can be tested as a plain
function. The built-in handlers are those of seed 002:

- ``market_data_update`` (``symbol``): drops ``features:*<symbol>*`` and ``prediction:*<symbol>*``;
- ``model_update`` (``model_version`` and/or ``model_type``): drops
  ``prediction:*:<version>`` and ``model:<type>*``;
- ``system_maintenance``: clears the cache's namespace.

Values from events are escaped before they enter a glob, so a symbol such as
``*`` or ``[A-Z]`` matches only itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qcache.errors import QCacheError
from qcache.l2 import escape_glob

_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")  # fullmatch: "$" would let a trailing newline in


class EventError(QCacheError, ValueError):
    """An event that cannot be handled as given (a missing or malformed field, a bad type name)."""


@dataclass(frozen=True)
class InvalidatePattern:
    """Drop every entry whose ``type:key`` (or ``key`` within ``cache_type``) matches the glob."""

    pattern: str
    cache_type: str | None = None


@dataclass(frozen=True)
class DeleteKey:
    """Drop one entry."""

    key: str
    cache_type: str | None = None


@dataclass(frozen=True)
class ClearNamespace:
    """Drop every entry of the cache's namespace (never anything outside it)."""


Action = InvalidatePattern | DeleteKey | ClearNamespace
Handler = Callable[[Mapping[str, Any]], Iterable[Action]]


def check_event_type(event_type: str) -> str:
    """An event type name: 1 to 100 letters, digits, ``_ . : -``."""
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise EventError(f"event type must be 1-100 letters, digits or _.:- characters, got {event_type!r}")
    return event_type


def _text(data: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise EventError(f"the event needs a {name!r} field")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise EventError(f"the event's {name!r} must be text or an integer, got {type(value).__name__}")
    return str(value)


def market_data_update(data: Mapping[str, Any]) -> list[Action]:
    """New market data for a symbol: its features and predictions are stale."""
    symbol = escape_glob(_text(data, "symbol", required=True) or "")
    return [InvalidatePattern(f"features:*{symbol}*"), InvalidatePattern(f"prediction:*{symbol}*")]


def model_update(data: Mapping[str, Any]) -> list[Action]:
    """A new model: predictions of that version and the cached model of that type are stale."""
    version = _text(data, "model_version", required=False)
    model_type = _text(data, "model_type", required=False)
    if version is None and model_type is None:
        raise EventError("a model_update event needs 'model_version' or 'model_type'")
    actions: list[Action] = []
    if version is not None:
        actions.append(InvalidatePattern(f"prediction:*:{escape_glob(version)}"))
    if model_type is not None:
        actions.append(InvalidatePattern(f"model:{escape_glob(model_type)}*"))
    return actions


def system_maintenance(data: Mapping[str, Any]) -> list[Action]:
    """Maintenance: everything cached may be stale."""
    return [ClearNamespace()]


BUILTIN_HANDLERS: dict[str, Handler] = {
    "market_data_update": market_data_update,
    "model_update": model_update,
    "system_maintenance": system_maintenance,
}


@dataclass
class HandlerRegistry:
    """Handlers per event type, run in registration order; the seed's built-ins are there by default."""

    handlers: dict[str, list[Handler]] = field(
        default_factory=lambda: {name: [handler] for name, handler in BUILTIN_HANDLERS.items()}
    )

    def register(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Add ``handler`` for ``event_type``; returns a function that removes it again."""
        check_event_type(event_type)
        if not callable(handler):
            raise EventError(f"a handler must be callable, got {type(handler).__name__}")
        self.handlers.setdefault(event_type, []).append(handler)

        def unregister() -> None:
            handlers = self.handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unregister

    def for_event(self, event_type: str) -> list[Handler]:
        """The handlers of ``event_type`` (a copy: handlers may be registered while events run)."""
        return list(self.handlers.get(event_type, ()))


def handler_name(handler: Handler) -> str:
    """A readable name for logs and outcomes."""
    return getattr(handler, "__qualname__", None) or type(handler).__name__


@dataclass
class EventOutcome:
    """What handling one event did: entries removed, and each handler that failed with why."""

    event_type: str
    removed: int = 0
    handled_by: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures
