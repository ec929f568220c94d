"""Invalidation events between processes, on a Redis Stream.

Why a Stream and not pub/sub: pub/sub delivers at most once, to whoever is
connected at that instant. A subscriber whose connection drops for a moment
(a network blip, a Redis restart, a failover) silently misses what was
published meanwhile, and its L1 then serves deleted entries until their TTL
runs out, 30 to 120 minutes for the built-in types. A Stream keeps the
events (``MAXLEN ~`` bounds it, 10,000 by default): a subscriber remembers the
ID of the last event it applied and, once reconnected, reads everything
after it. If it was away so long that the events it missed were trimmed,
Redis says so (``max-deleted-entry-id`` of ``XINFO STREAM`` lies after the
subscriber's position): the gap is logged as an error, counted, and handed
to ``on_gap`` so the process can drop what it holds. A process that starts
(or restarts) reads from the end of the stream: its L1 is empty, so older
events cannot concern it, and the shared tier was invalidated by the
publisher itself.

Events are JSON (``type``, ``data``, ``origin``), readable from any language,
never pickled; an entry that does not decode is logged, counted and skipped.
A subscriber skips the events its own invalidator published (already applied).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import redis
import redis.asyncio as aioredis

from qcache.config import CacheConfig
from qcache.l2 import ConnectionSettings
from qcache.ops.events import EventError, check_event_type
from qcache.ops.invalidator import AsyncEventInvalidator, EventInvalidator
from qcache.ops.redis_client import async_client, settings_of, sync_client

log = logging.getLogger("qcache.events")

DEFAULT_MAXLEN = 10_000
STREAM_SUFFIX = "events"
_MAX_RETRY_DELAY = 2.0


def stream_key(config: CacheConfig) -> str:
    """``<CACHE_KEY_PREFIX>:events``: beside the cache's keys, never matched by its globs.

    Cache keys are ``<prefix>:<project>:<type>:<key>`` and every invalidation
    matches ``<prefix>:<project>:...``, so this two-part key is never touched by one.
    """
    return f"{config.core.key_prefix}:{STREAM_SUFFIX}"


def encode_event(event_type: str, data: Mapping[str, Any], origin: str) -> dict[str, str]:
    """The stream entry's fields; data must be JSON (no NaN, no objects JSON cannot hold)."""
    check_event_type(event_type)
    try:
        encoded = json.dumps(dict(data), allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise EventError(f"event data must be JSON-serializable: {exc}") from exc
    return {"type": event_type, "data": encoded, "origin": origin}


@dataclass(frozen=True)
class ReceivedEvent:
    """One decoded stream entry."""

    entry_id: str
    event_type: str
    data: dict[str, Any]
    origin: str


def decode_entry(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> ReceivedEvent:
    """A stream entry as an event, or :class:`EventError` naming what is wrong."""
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        text = {k.decode(): v.decode() for k, v in fields.items()}
    except (AttributeError, UnicodeDecodeError) as exc:
        raise EventError(f"stream entry {ident} is not UTF-8 text") from exc
    try:
        event_type = check_event_type(text["type"])
        data = json.loads(text["data"])
    except KeyError as exc:
        raise EventError(f"stream entry {ident} lacks the {exc.args[0]!r} field") from exc
    except json.JSONDecodeError as exc:
        raise EventError(f"stream entry {ident} holds data that is not JSON") from exc
    if not isinstance(data, dict):
        raise EventError(f"stream entry {ident} holds data that is not an object")
    return ReceivedEvent(ident, event_type, data, text.get("origin", ""))


def _id_tuple(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(stream_info: Mapping[Any, Any]) -> dict[str, Any]:
    return {_text(k): v for k, v in stream_info.items()}


def is_gap(last_applied: str, seen: int | None, stream_info: Mapping[Any, Any]) -> bool:
    """Whether entries after ``last_applied`` were removed before this subscriber read them.

    ``seen`` counts the entries added up to and including ``last_applied``.
    Redis 7 counts every entry ever added (``entries-added``); those no longer
    in the stream (``entries-added - length``) were trimmed from its front or
    deleted. More of them than the subscriber had seen means some it had not
    seen are gone. Without those counters (Redis before 7) the first entry left
    lying after the subscriber's position is the conservative signal.
    """
    info = _info(stream_info)
    added, length = info.get("entries-added"), info.get("length")
    if added is not None and length is not None and seen is not None:
        deleted_after = info.get("max-deleted-entry-id")
        if deleted_after is not None and _id_tuple(_text(deleted_after)) > _id_tuple(last_applied):
            return True  # an XDEL after our position
        return int(added) - int(length) > seen
    first = info.get("first-entry")
    if not first:
        return False
    return _id_tuple(_text(first[0])) > _id_tuple(last_applied)


def start_position(stream_info: Mapping[Any, Any]) -> tuple[str, int | None]:
    """The last ID and the count of entries ever added, from one ``XINFO STREAM`` (one snapshot)."""
    info = _info(stream_info)
    added = info.get("entries-added")
    return _text(info.get("last-generated-id", "0-0")), None if added is None else int(added)


@dataclass
class SubscriberStats:
    """What a subscriber did, for logs, tests and metrics."""

    applied: int = 0
    own_skipped: int = 0
    malformed: int = 0
    handler_failures: int = 0
    gaps: int = 0
    errors: int = 0
    last_applied: str = "0-0"


class _Position:
    """The subscriber's bookkeeping, shared by the sync and the async loops (no I/O here)."""

    def __init__(self, origin: str, start: tuple[str, int | None]) -> None:
        self.origin = origin
        self.stats = SubscriberStats(last_applied=start[0])
        self.seen = start[1]  # entries added up to the position (None: the server does not count)
        self.failing = False
        self.delay = 0.0

    def events(self, entries: Any) -> list[ReceivedEvent]:
        """The events to apply from an XREAD reply; advances the position past every entry."""
        wanted: list[ReceivedEvent] = []
        for _stream, items in entries or ():
            for entry_id, fields in items:
                ident = _text(entry_id)
                self.stats.last_applied = ident
                if self.seen is not None:
                    self.seen += 1
                try:
                    event = decode_entry(ident, fields)
                except EventError as exc:
                    self.stats.malformed += 1
                    log.error("qcache: skipping a malformed invalidation event: %s", exc)
                    continue
                if event.origin == self.origin:
                    self.stats.own_skipped += 1
                    continue
                wanted.append(event)
        return wanted

    def failed(self, exc: Exception) -> float:
        """A read failed: log once per outage, back off (0.1 s doubling to 2 s)."""
        self.stats.errors += 1
        if not self.failing:
            log.warning("qcache: invalidation events unreachable, retrying: %s", exc)
        self.failing = True
        self.delay = min(_MAX_RETRY_DELAY, self.delay * 2 if self.delay else 0.1)
        return self.delay

    def recovered(self) -> bool:
        """A read worked again: True when the position must be checked for a gap."""
        was_failing = self.failing
        self.failing = False
        self.delay = 0.0
        return was_failing

    def gap(self) -> None:
        self.stats.gaps += 1
        log.error(
            "qcache: invalidation events after %s were trimmed while this process was disconnected; "
            "entries it holds in memory may be stale", self.stats.last_applied,
        )


def _block_ms(settings: ConnectionSettings) -> int:
    """How long one XREAD waits: well inside the socket timeout, so a quiet stream is not an error."""
    return max(10, min(1000, int(settings.socket_timeout * 500)))


class EventStream:
    """The stream, for publishing and reading (sync)."""

    def __init__(self, client: redis.Redis, key: str, *, maxlen: int = DEFAULT_MAXLEN, block_ms: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be positive, got {maxlen}")
        self.client = client
        self.key = key
        self.maxlen = maxlen
        self.block_ms = block_ms

    @classmethod
    def from_config(cls, config: CacheConfig, *, maxlen: int = DEFAULT_MAXLEN) -> EventStream:
        return cls(sync_client(config), stream_key(config), maxlen=maxlen, block_ms=_block_ms(settings_of(config)))

    def publish(self, event_type: str, data: Mapping[str, Any], *, origin: str) -> str:
        """Append an event (trimming the stream to about ``maxlen``); returns its entry ID."""
        entry_id = self.client.xadd(self.key, encode_event(event_type, data, origin),  # type: ignore[arg-type]  # redis-py's field type is too narrow
                                    maxlen=self.maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def position(self) -> tuple[str, int | None]:
        """Where a new subscriber starts: the newest ID and how many entries were ever added."""
        try:
            return start_position(self.client.xinfo_stream(self.key))
        except redis.ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            return "0-0", 0

    def close(self) -> None:
        self.client.close()


class EventSubscriber:
    """Applies the stream's events to this process's cache, in a daemon thread."""

    def __init__(
        self,
        invalidator: EventInvalidator,
        stream: EventStream,
        *,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        self.invalidator = invalidator
        self.stream = stream
        self.on_gap = on_gap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._position: _Position | None = None

    @property
    def stats(self) -> SubscriberStats:
        return self._position.stats if self._position is not None else SubscriberStats()

    def start(self) -> Self:
        """Begin after the newest event: what came before cannot concern a process starting now."""
        if self._thread is not None:
            raise RuntimeError("the subscriber is already running")
        self._position = _Position(self.invalidator.origin, self.stream.position())
        self._thread = threading.Thread(target=self._run, name="qcache-events", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        position = self._position
        assert position is not None
        while not self._stop.is_set():
            try:
                reply = self.stream.client.xread({self.stream.key: position.stats.last_applied},
                                                 block=self.stream.block_ms)
                if position.recovered() and is_gap(position.stats.last_applied, position.seen,
                                                   self.stream.client.xinfo_stream(self.stream.key)):
                    position.gap()
                    if self.on_gap is not None:
                        self.on_gap()
            except (redis.RedisError, OSError) as exc:
                self._stop.wait(position.failed(exc))
                continue
            for event in position.events(reply):
                outcome = self.invalidator.handle(event.event_type, event.data)
                position.stats.applied += 1
                position.stats.handler_failures += len(outcome.failures)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading (within one XREAD block) and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncEventStream:
    """The stream, for publishing and reading (asyncio)."""

    def __init__(self, client: aioredis.Redis, key: str, *, maxlen: int = DEFAULT_MAXLEN, block_ms: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be positive, got {maxlen}")
        self.client = client
        self.key = key
        self.maxlen = maxlen
        self.block_ms = block_ms

    @classmethod
    def from_config(cls, config: CacheConfig, *, maxlen: int = DEFAULT_MAXLEN) -> AsyncEventStream:
        return cls(async_client(config), stream_key(config), maxlen=maxlen, block_ms=_block_ms(settings_of(config)))

    async def publish(self, event_type: str, data: Mapping[str, Any], *, origin: str) -> str:
        entry_id = await self.client.xadd(self.key, encode_event(event_type, data, origin),  # type: ignore[arg-type]  # as the sync one
                                          maxlen=self.maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def position(self) -> tuple[str, int | None]:
        try:
            return start_position(await self.client.xinfo_stream(self.key))
        except redis.ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            return "0-0", 0

    async def close(self) -> None:
        await self.client.aclose()


class AsyncEventSubscriber:
    """Applies the stream's events to this process's async cache, in a task."""

    def __init__(
        self,
        invalidator: AsyncEventInvalidator,
        stream: AsyncEventStream,
        *,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        self.invalidator = invalidator
        self.stream = stream
        self.on_gap = on_gap
        self._task: asyncio.Task[None] | None = None
        self._position: _Position | None = None

    @property
    def stats(self) -> SubscriberStats:
        return self._position.stats if self._position is not None else SubscriberStats()

    async def start(self) -> Self:
        if self._task is not None:
            raise RuntimeError("the subscriber is already running")
        self._position = _Position(self.invalidator.origin, await self.stream.position())
        self._task = asyncio.create_task(self._run(), name="qcache-events")
        return self

    async def _run(self) -> None:
        position = self._position
        assert position is not None
        while True:
            try:
                reply = await self.stream.client.xread({self.stream.key: position.stats.last_applied},
                                                       block=self.stream.block_ms)
                if position.recovered() and is_gap(position.stats.last_applied, position.seen,
                                                   await self.stream.client.xinfo_stream(self.stream.key)):
                    position.gap()
                    if self.on_gap is not None:
                        self.on_gap()
            except (redis.RedisError, OSError) as exc:
                await asyncio.sleep(position.failed(exc))
                continue
            for event in position.events(reply):
                outcome = await self.invalidator.handle(event.event_type, event.data)
                position.stats.applied += 1
                position.stats.handler_failures += len(outcome.failures)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
