"""Apply events to a cache: every handler of the event runs, a failing one is logged and never stops the others.

:class:`EventInvalidator` drives a :class:`~qcache.QueryCache`,
:class:`AsyncEventInvalidator` an :class:`~qcache.AsyncQueryCache`. Both
share the registry and the decision of what to drop (:mod:`qcache.ops.events`);
only applying an action differs, by an ``await``.

``publish`` handles the event here, then appends it to the Redis Stream (when
one is attached) so that every other process applies it too: the tier the
publisher shares with them (Redis) is invalidated at once, whether or not any
subscriber is running, and each subscriber drops its own copies.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from qcache.ops.events import (
    Action,
    ClearNamespace,
    DeleteKey,
    EventError,
    EventOutcome,
    Handler,
    HandlerRegistry,
    InvalidatePattern,
    check_event_type,
    handler_name,
)

if TYPE_CHECKING:
    from qcache import AsyncQueryCache, QueryCache
    from qcache.ops.event_stream import AsyncEventStream, EventStream

log = logging.getLogger("qcache.events")


def new_origin() -> str:
    """Who published an event: host, process and a random part (a restarted process is a new origin)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _actions_of(handler: Handler, data: Mapping[str, Any]) -> list[Action]:
    actions = list(handler(data))
    for action in actions:
        if not isinstance(action, (InvalidatePattern, DeleteKey, ClearNamespace)):
            raise EventError(f"a handler returned {action!r}, not an invalidation action")
    return actions


def _failed(outcome: EventOutcome, name: str, exc: Exception) -> None:
    outcome.failures[name] = f"{type(exc).__name__}: {exc}"
    log.error("qcache: event handler %s for %r failed: %s", name, outcome.event_type,
              outcome.failures[name], exc_info=exc)


class _Base:
    def __init__(self, registry: HandlerRegistry | None, origin: str | None) -> None:
        self.registry = registry if registry is not None else HandlerRegistry()
        self.origin = origin or new_origin()

    def register(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Add a handler: ``handler(data)`` returns the actions (see :mod:`qcache.ops.events`)."""
        return self.registry.register(event_type, handler)

    def _start(self, event_type: str, data: Mapping[str, Any] | None) -> tuple[EventOutcome, Mapping[str, Any]]:
        check_event_type(event_type)
        if data is not None and not isinstance(data, Mapping):
            raise EventError(f"event data must be a mapping, got {type(data).__name__}")
        outcome = EventOutcome(event_type)
        if not self.registry.for_event(event_type):
            log.info("qcache: no handler for event %r", event_type)
        return outcome, data or {}


class EventInvalidator(_Base):
    """Invalidates a :class:`~qcache.QueryCache` (or a project view of one) on events."""

    def __init__(
        self,
        cache: QueryCache,
        registry: HandlerRegistry | None = None,
        *,
        stream: EventStream | None = None,
        origin: str | None = None,
    ) -> None:
        super().__init__(registry, origin)
        self.cache = cache
        self.stream = stream

    def handle(self, event_type: str, data: Mapping[str, Any] | None = None) -> EventOutcome:
        """Run every handler of ``event_type`` on this cache; failures are logged and reported, not raised."""
        outcome, payload = self._start(event_type, data)
        for handler in self.registry.for_event(event_type):
            name = handler_name(handler)
            try:
                for action in _actions_of(handler, payload):
                    outcome.removed += self._apply(action)
            except Exception as exc:  # noqa: BLE001  # one handler never stops the others
                _failed(outcome, name, exc)
            else:
                outcome.handled_by.append(name)
        return outcome

    def publish(self, event_type: str, data: Mapping[str, Any] | None = None) -> EventOutcome:
        """Handle the event here, then send it to every other process through the stream."""
        outcome = self.handle(event_type, data)
        if self.stream is not None:
            self.stream.publish(event_type, data or {}, origin=self.origin)
        return outcome

    def _apply(self, action: Action) -> int:
        if isinstance(action, InvalidatePattern):
            return self.cache.invalidate_pattern(action.pattern, cache_type=action.cache_type)
        if isinstance(action, DeleteKey):
            return int(self.cache.delete(action.key, cache_type=action.cache_type))
        return self.cache.clear()


class AsyncEventInvalidator(_Base):
    """Invalidates an :class:`~qcache.AsyncQueryCache` on events (the same handlers)."""

    def __init__(
        self,
        cache: AsyncQueryCache,
        registry: HandlerRegistry | None = None,
        *,
        stream: AsyncEventStream | None = None,
        origin: str | None = None,
    ) -> None:
        super().__init__(registry, origin)
        self.cache = cache
        self.stream = stream

    async def handle(self, event_type: str, data: Mapping[str, Any] | None = None) -> EventOutcome:
        """Run every handler of ``event_type`` on this cache; failures are logged and reported, not raised."""
        outcome, payload = self._start(event_type, data)
        for handler in self.registry.for_event(event_type):
            name = handler_name(handler)
            try:
                for action in _actions_of(handler, payload):
                    outcome.removed += await self._apply(action)
            except Exception as exc:  # noqa: BLE001  # one handler never stops the others
                _failed(outcome, name, exc)
            else:
                outcome.handled_by.append(name)
        return outcome

    async def publish(self, event_type: str, data: Mapping[str, Any] | None = None) -> EventOutcome:
        """Handle the event here, then send it to every other process through the stream."""
        outcome = await self.handle(event_type, data)
        if self.stream is not None:
            await self.stream.publish(event_type, data or {}, origin=self.origin)
        return outcome

    async def _apply(self, action: Action) -> int:
        if isinstance(action, InvalidatePattern):
            return await self.cache.invalidate_pattern(action.pattern, cache_type=action.cache_type)
        if isinstance(action, DeleteKey):
            return int(await self.cache.delete(action.key, cache_type=action.cache_type))
        return await self.cache.clear()
