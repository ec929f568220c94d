"""Runtime changes: applying updates to a snapshot, diffing, and change callbacks.

An update is all-or-nothing: the new snapshot is built and validated aside,
and only a snapshot without errors replaces the current one (by a single
reference swap, so readers see either the old or the new configuration,
never a mix). Callbacks then receive ``(config, changes)`` where ``changes``
maps dotted paths to ``(old, new)``; secrets stay :class:`Secret` objects,
so logging ``changes`` shows masks only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from qcache.config.env import ENVIRONMENT_VARIABLE
from qcache.config.schema import FieldIndex, FieldSpec, replace_values, values_by_spec
from qcache.config.sections import ConfigSnapshot
from qcache.config.validation import ConfigIssue, errors_of, validate
from qcache.config.values import parse, to_env_text
from qcache.errors import ConfigError

logger = logging.getLogger("qcache.config")

#: dotted path -> (old value, new value)
Changes = dict[str, tuple[Any, Any]]
ChangeCallback = Callable[[Any, Changes], Awaitable[None] | None]


def apply_changes(
    snapshot: ConfigSnapshot, raw: Mapping[str, Any]
) -> tuple[ConfigSnapshot, dict[FieldSpec, Any]]:
    """``snapshot`` with ``raw`` applied (keys: env names or dotted paths; values typed or text).

    Raises one ConfigError listing every unknown key and unparsable value.
    """
    index = FieldIndex.for_snapshot(snapshot)
    resolved, problems = values_by_spec(index, raw)
    parsed: dict[FieldSpec, Any] = {}
    for spec, value in resolved.items():
        if spec.env == ENVIRONMENT_VARIABLE:
            # The profile is a load-time layer; swapping the label alone would
            # leave the settings of the old profile under the new name.
            problems.append(
                f"{spec.env}: the profile is chosen when loading; "
                "use CacheConfig.from_env() or from_profile() to switch it"
            )
            continue
        try:
            parsed[spec] = parse(spec.kind, value)
        except ValueError as exc:
            problems.append(f"{spec.env}: {exc}")
    if problems:
        raise ConfigError("configuration change rejected: " + "; ".join(problems), problems)
    return replace_values(snapshot, parsed), parsed


def reject_errors(
    snapshot: ConfigSnapshot, blocking: Callable[[ConfigIssue], bool] | None = None
) -> None:
    """Raise ConfigError listing the errors of ``snapshot`` (those ``blocking`` selects)."""
    errors = [e for e in errors_of(validate(snapshot)) if blocking is None or blocking(e)]
    if errors:
        problems = [str(issue) for issue in errors]
        raise ConfigError("configuration change rejected: " + "; ".join(problems), problems)


def diff(old: ConfigSnapshot, new: ConfigSnapshot) -> Changes:
    """Settings whose value differs; a cache type absent on one side counts as None."""
    changes: Changes = {}
    added = [name for name in new.cache_types if name not in old.cache_types]
    index = FieldIndex([*old.cache_types, *added])
    for spec in index:
        before = _value_or_none(spec, old)
        after = _value_or_none(spec, new)
        if before != after:
            changes[spec.path] = (before, after)
    return changes


def _value_or_none(spec: FieldSpec, snapshot: ConfigSnapshot) -> Any:
    if spec.cache_type is not None and spec.cache_type not in snapshot.cache_types:
        return None
    return spec.get(snapshot)


def describe(changes: Changes, snapshot: ConfigSnapshot) -> str:
    """``"CACHE_DEFAULT_TTL: 3600 -> 7200; ..."`` with secrets masked, for logs."""
    index = FieldIndex(snapshot.cache_types)
    by_path = {spec.path: spec for spec in index}
    parts = []
    for path, (before, after) in changes.items():
        spec = by_path.get(path)
        name = spec.env if spec is not None else path
        parts.append(f"{name}: {_shown(before)} -> {_shown(after)}")
    return "; ".join(parts)


def _shown(value: Any) -> str:
    return "(unset)" if value is None else to_env_text(value)  # masks secrets


class CallbackRegistry:
    """Change callbacks, sync or async, each isolated from the others' failures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[ChangeCallback] = []
        # The event loop running where each callback was registered: an async callback
        # fired from another thread (the .env watcher) runs there, beside the objects
        # it was written to touch, not on a throwaway loop.
        self._home_loops: dict[int, asyncio.AbstractEventLoop] = {}
        # Tasks scheduled on a running loop; kept so they are not garbage-collected.
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, callback: ChangeCallback) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it (idempotent)."""
        if not callable(callback):
            raise TypeError("a change callback must be callable")
        try:
            home: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            home = None
        with self._lock:
            self._callbacks.append(callback)
            if home is not None:
                self._home_loops[id(callback)] = home

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
                if callback not in self._callbacks:
                    self._home_loops.pop(id(callback), None)

        return unsubscribe

    def _invoke(
        self, callback: ChangeCallback, config: Any, changes: Changes
    ) -> Awaitable[None] | None:
        """Call ``callback``; its awaitable if it is async, None otherwise or when it failed."""
        try:
            result = callback(config, changes)
        except Exception:
            logger.exception("configuration change callback %r failed", callback)
            return None
        return result if inspect.isawaitable(result) else None

    async def _guarded(self, callback: ChangeCallback, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("configuration change callback %r failed", callback)

    def dispatch(self, config: Any, changes: Changes) -> None:
        """Run every callback from synchronous code.

        Async callbacks become tasks when an event loop runs in this thread
        (``update()`` called from a coroutine); from another thread (the
        ``.env`` watcher) they are handed to the loop that was running where
        they were registered, if it still runs; otherwise they run to
        completion with ``asyncio.run``.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for callback in self._snapshot():
            awaitable = self._invoke(callback, config, changes)
            if awaitable is None:
                continue
            if loop is None:
                with self._lock:
                    home = self._home_loops.get(id(callback))
                if home is not None and home.is_running() and not home.is_closed():
                    asyncio.run_coroutine_threadsafe(self._guarded(callback, awaitable), home)
                else:
                    asyncio.run(self._guarded(callback, awaitable))
            else:
                task = loop.create_task(self._guarded(callback, awaitable))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def dispatch_async(self, config: Any, changes: Changes) -> None:
        """Run every callback, awaiting the async ones in registration order."""
        for callback in self._snapshot():
            awaitable = self._invoke(callback, config, changes)
            if awaitable is not None:
                await self._guarded(callback, awaitable)

    def _snapshot(self) -> list[ChangeCallback]:
        with self._lock:
            return list(self._callbacks)
