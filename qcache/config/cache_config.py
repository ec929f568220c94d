"""``CacheConfig``: the mutable holder of an immutable configuration snapshot."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcache.config.dynamic import (
    CallbackRegistry,
    ChangeCallback,
    Changes,
    apply_changes,
    describe,
    diff,
    reject_errors,
)
from qcache.config.env import DEFAULT_ENV_FILE, LoadSources, load_snapshot, sources_for
from qcache.config.profiles import canonical_profile_name
from qcache.config.schema import FieldIndex
from qcache.config.sections import (
    BUILTIN_CACHE_TYPES,
    CacheTypeConfig,
    ConfigSnapshot,
    CoreConfig,
    MemoryConfig,
    MonitoringConfig,
    PerformanceConfig,
    RedisConfig,
    SecurityConfig,
    check_cache_type_name,
)
from qcache.config.validation import ConfigIssue, Severity, validate
from qcache.config.values import to_env_text, to_plain
from qcache.errors import ConfigError

if TYPE_CHECKING:
    from qcache.config.watch import EnvFileWatcher

logger = logging.getLogger("qcache.config")


class CacheConfig:
    """The cache's configuration: typed sections, validation and live updates.

    Build one with :meth:`from_env` (environment and ``.env`` file, the usual
    way), :meth:`from_profile` (a named profile, no environment) or the
    constructor (sections given in code; missing ones take their defaults,
    ``cache_types`` are merged over the built-in four).

    The settings live in an immutable :class:`ConfigSnapshot`. ``update()``
    and the ``.env`` watcher replace the whole snapshot at once, so the
    section properties always return a consistent section, and code that
    needs several sections to agree takes :meth:`snapshot` once.

    Precedence of :meth:`from_env`, per setting: explicit arguments > process
    environment > ``.env`` file > profile (chosen by ``ENVIRONMENT``) >
    defaults. Loading does not validate; call :meth:`validate` or
    :meth:`check` (the cache facade does).
    """

    def __init__(
        self,
        *,
        core: CoreConfig | None = None,
        redis: RedisConfig | None = None,
        memory: MemoryConfig | None = None,
        cache_types: Mapping[str, CacheTypeConfig] | None = None,
        security: SecurityConfig | None = None,
        performance: PerformanceConfig | None = None,
        monitoring: MonitoringConfig | None = None,
    ) -> None:
        types = {**BUILTIN_CACHE_TYPES, **(cache_types or {})}
        snapshot = ConfigSnapshot(
            core=core if core is not None else CoreConfig(),
            redis=redis if redis is not None else RedisConfig(),
            memory=memory if memory is not None else MemoryConfig(),
            cache_types=types,
            security=security if security is not None else SecurityConfig(),
            performance=performance if performance is not None else PerformanceConfig(),
            monitoring=monitoring if monitoring is not None else MonitoringConfig(),
        )
        self._setup(snapshot, None, types)

    def _setup(
        self,
        snapshot: ConfigSnapshot,
        sources: LoadSources | None,
        type_defaults: Mapping[str, CacheTypeConfig],
    ) -> None:
        # Serialises writers only; readers take self._snapshot without locking.
        self._lock = threading.RLock()
        self._snapshot = snapshot
        self._sources = sources
        self._type_defaults = dict(type_defaults)
        self._callbacks = CallbackRegistry()

    @classmethod
    def _loaded(cls, sources: LoadSources) -> CacheConfig:
        types = dict(BUILTIN_CACHE_TYPES)
        config = cls.__new__(cls)
        config._setup(load_snapshot(sources, types), sources, types)
        return config

    # -- construction -------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        env_file: str | Path | None = DEFAULT_ENV_FILE,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> CacheConfig:
        """Load from the process environment and a ``.env`` file.

        ``env_file``: by default ``.env`` in the working directory if it
        exists; an explicitly given path must exist; None reads no file.
        ``environ``: the environment to read (default ``os.environ``; copied,
        so a later reload does not see changes to it). ``overrides``: explicit
        values keyed by environment variable name (``REDIS_PORT=7000``) or
        dotted path (``**{"memory.max_size": 5}``), typed or as text; they
        beat every other layer.

        Raises ConfigError listing every unknown key and unparsable value.
        """
        index = FieldIndex(BUILTIN_CACHE_TYPES)
        source_environ = os.environ if environ is None else environ
        return cls._loaded(sources_for(env_file, source_environ, overrides, index))

    @classmethod
    def from_profile(cls, name: str, **overrides: Any) -> CacheConfig:
        """Profile ``name`` over the defaults, with ``overrides`` on top; no environment.

        Names: development, testing, staging, production, high-performance
        (aliases dev, test, prod, high_performance).
        """
        try:
            canonical = canonical_profile_name(name)
        except ValueError as exc:
            raise ConfigError(f"{name!r}: {exc}") from None
        index = FieldIndex(BUILTIN_CACHE_TYPES)
        sources = sources_for(None, {}, overrides, index)
        if "ENVIRONMENT" in sources.overrides:
            raise ConfigError("from_profile(): give the profile as `name`, not as ENVIRONMENT")
        return cls._loaded(sources.with_overrides({"ENVIRONMENT": canonical}))

    # -- reading --------------------------------------------------------------

    def snapshot(self) -> ConfigSnapshot:
        """The current immutable snapshot (read several settings consistently from it)."""
        return self._snapshot

    @property
    def core(self) -> CoreConfig:
        return self._snapshot.core

    @property
    def redis(self) -> RedisConfig:
        return self._snapshot.redis

    @property
    def memory(self) -> MemoryConfig:
        return self._snapshot.memory

    @property
    def cache_types(self) -> Mapping[str, CacheTypeConfig]:
        """Read-only mapping of cache type name -> settings."""
        return self._snapshot.cache_types

    @property
    def security(self) -> SecurityConfig:
        return self._snapshot.security

    @property
    def performance(self) -> PerformanceConfig:
        return self._snapshot.performance

    @property
    def monitoring(self) -> MonitoringConfig:
        return self._snapshot.monitoring

    def cache_type(self, name: str) -> CacheTypeConfig:
        """Settings of cache type ``name``; ConfigError naming the known types otherwise."""
        return self._snapshot.cache_type(name)

    # -- validation -----------------------------------------------------------

    def validate(self) -> list[ConfigIssue]:
        """Every problem of the current configuration, errors and warnings alike."""
        return validate(self._snapshot)

    def errors(self) -> list[ConfigIssue]:
        """The issues that make this configuration unusable."""
        return [i for i in self.validate() if i.severity is Severity.ERROR]

    def warnings(self) -> list[ConfigIssue]:
        """The issues worth fixing that do not stop the cache."""
        return [i for i in self.validate() if i.severity is Severity.WARNING]

    def check(self) -> CacheConfig:
        """Raise ConfigError listing every error; returns self so calls can chain."""
        errors = self.errors()
        if errors:
            problems = [str(issue) for issue in errors]
            raise ConfigError("invalid configuration: " + "; ".join(problems), problems)
        return self

    # -- rendering ------------------------------------------------------------

    def to_dict(self, reveal_secrets: bool = False) -> dict[str, Any]:
        """Nested plain dict (enums as strings, secrets masked unless revealed)."""
        snapshot = self._snapshot
        out: dict[str, Any] = {}
        for spec in FieldIndex.for_snapshot(snapshot):
            value = to_plain(spec.get(snapshot), reveal_secrets)
            if spec.cache_type is not None:
                out.setdefault("cache_types", {}).setdefault(spec.cache_type, {})[spec.name] = value
            else:
                out.setdefault(spec.section, {})[spec.name] = value
        return out

    def to_env(self, reveal_secrets: bool = False) -> dict[str, str]:
        """Environment variable name -> value as text (unset is empty, secrets masked)."""
        snapshot = self._snapshot
        return {
            spec.env: to_env_text(spec.get(snapshot), reveal_secrets)
            for spec in FieldIndex.for_snapshot(snapshot)
        }

    def __repr__(self) -> str:
        s = self._snapshot
        return (
            f"CacheConfig(core={s.core!r}, redis={s.redis!r}, memory={s.memory!r}, "
            f"cache_types={dict(s.cache_types)!r}, security={s.security!r}, "
            f"performance={s.performance!r}, monitoring={s.monitoring!r})"
        )

    # -- changes --------------------------------------------------------------

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(config, changes)`` after every applied change.

        ``changes`` maps dotted paths to ``(old, new)``. Sync and async
        callbacks are accepted; a failing callback is logged and neither undoes
        the change nor stops the other callbacks. Returns an unsubscribe
        function.
        """
        return self._callbacks.add(callback)

    def update(self, mapping: Mapping[str, Any] | None = None, /, **changes: Any) -> Changes:
        """Change settings atomically; returns ``{dotted path: (old, new)}``.

        Keys are environment variable names or dotted paths; text values are
        parsed like environment values. The new configuration is validated
        first: any error (or unparsable value) raises ConfigError and changes
        nothing. Otherwise the snapshot is swapped at once and the callbacks
        run (async ones as tasks when an event loop runs in this thread, with
        ``asyncio.run`` otherwise; use :meth:`aupdate` to await them).
        Updated values also join the explicit layer, so a later reload of the
        ``.env`` file keeps them.
        """
        applied = self._prepare({**(mapping or {}), **changes})
        if applied:
            self._callbacks.dispatch(self, applied)
        return applied

    async def aupdate(self, mapping: Mapping[str, Any] | None = None, /, **changes: Any) -> Changes:
        """:meth:`update` for coroutines: awaits async callbacks before returning."""
        applied = self._prepare({**(mapping or {}), **changes})
        if applied:
            await self._callbacks.dispatch_async(self, applied)
        return applied

    def _prepare(self, raw: Mapping[str, Any]) -> Changes:
        """The step ``update`` and ``aupdate`` share: parse, validate, swap, log."""
        parsed_envs: dict[str, Any] = {}

        def build(current: ConfigSnapshot) -> ConfigSnapshot:
            new, parsed = apply_changes(current, raw)
            parsed_envs.update({spec.env: value for spec, value in parsed.items()})
            return new

        def remember() -> None:
            if self._sources is not None:
                self._sources = self._sources.with_overrides(parsed_envs)

        return self._swap(build, reason="update", after=remember)

    def _swap(
        self,
        build: Callable[[ConfigSnapshot], ConfigSnapshot],
        *,
        reason: str,
        blocking: Callable[[ConfigIssue], bool] | None = None,
        after: Callable[[], None] | None = None,
    ) -> Changes:
        """Build a snapshot from the current one, reject errors, swap it in; the diff."""
        with self._lock:
            current = self._snapshot
            new = build(current)
            reject_errors(new, blocking)
            changes = diff(current, new)
            if after is not None:
                after()
            if changes:
                self._snapshot = new
        if changes:
            logger.info("configuration %s: %s", reason, describe(changes, new))
        return changes

    def reload(self) -> Changes:
        """Rebuild from the sources this config was loaded from and apply the difference.

        Repeats the layering of :meth:`from_env` / :meth:`from_profile` (same
        explicit values and environment copy, the ``.env`` file read again).
        Raises ConfigError, keeping the current configuration, if the result
        cannot be parsed or has errors. Runs the change callbacks.
        """
        sources = self._sources
        if sources is None:
            raise ConfigError(
                "reload() needs a configuration built by from_env() or from_profile()"
            )

        def build(_current: ConfigSnapshot) -> ConfigSnapshot:
            # Read under the lock: an update() racing this reload must not be lost.
            return load_snapshot(self._sources or sources, self._type_defaults)

        label = f"reload from {sources.env_file}" if sources.env_file else "reload"
        changes = self._swap(build, reason=label)
        if changes:
            self._callbacks.dispatch(self, changes)
        return changes

    def register_cache_type(self, name: str, settings: CacheTypeConfig) -> None:
        """Add cache type ``name`` (a lower-case identifier) with ``settings``.

        ``settings`` act as the type's defaults: from the next :meth:`reload`
        (or ``.env`` watcher event) on, ``{NAME}_CACHE_TTL``,
        ``{NAME}_CACHE_MAX_SIZE``, ``{NAME}_CACHE_COMPRESSION`` and
        ``{NAME}_CACHE_ENCRYPTION`` override them like any other variable.
        Raises ConfigError for a bad or taken name, a name whose variables
        would collide with existing ones, or invalid settings.
        """
        check_cache_type_name(name)
        if not isinstance(settings, CacheTypeConfig):
            raise ConfigError(f"cache type {name!r}: expected a CacheTypeConfig")

        def build(current: ConfigSnapshot) -> ConfigSnapshot:
            if name in current.cache_types:
                raise ConfigError(f"cache type {name!r} is already registered")
            return replace(current, cache_types={**current.cache_types, name: settings})

        # Building the index raises if the type's variables collide with existing ones.
        new_fields = {spec.env for spec in FieldIndex([name]) if spec.cache_type == name}

        def remember() -> None:
            self._type_defaults[name] = settings

        changes = self._swap(
            build,
            reason=f"register_cache_type({name!r})",
            # Only problems of the new type block it; existing ones are the caller's business.
            blocking=lambda issue: issue.field in new_fields,
            after=remember,
        )
        if changes:
            self._callbacks.dispatch(self, changes)

    def watch_env_file(self, path: str | Path, interval: float = 1.0) -> EnvFileWatcher:
        """Reload whenever ``.env`` file ``path`` changes; returns the running watcher.

        The file becomes this configuration's ``.env`` layer (it is applied
        right away, raising ConfigError if it is invalid). Afterwards a daemon
        thread polls it every ``interval`` seconds; a valid change is applied
        like :meth:`update` (callbacks fire, the diff is logged), an invalid one
        is logged and the current configuration is kept. Stop it with
        ``.stop()`` or use it as a context manager.
        """
        from qcache.config.watch import EnvFileWatcher

        if self._sources is None:
            raise ConfigError(
                "watch_env_file() needs a configuration built by from_env() or from_profile()"
            )
        watcher = EnvFileWatcher(self, path, interval)  # fingerprints before the first load
        with self._lock:
            previous = self._sources
            self._sources = LoadSources(
                overrides=previous.overrides,
                environ=previous.environ,
                env_file=Path(path),
                env_file_required=True,
            )
        try:
            self.reload()
        except ConfigError:
            with self._lock:
                self._sources = previous
            raise
        return watcher.start()
