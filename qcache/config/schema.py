"""The flat list of settings: each with its section, attribute path and env name.

Loading, overrides, ``update()``, diffs, ``show --format env``, templates and
``qcache config set`` all look settings up here, by environment variable name
(``REDIS_PORT``) or by dotted path (``redis.port``, ``cache_types.search.ttl``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any

from qcache.config.sections import (
    SECTIONS,
    CacheTypeConfig,
    ConfigSnapshot,
    cache_type_env,
    field_kinds,
)
from qcache.config.values import ValueKind
from qcache.errors import ConfigError


@dataclass(frozen=True)
class FieldSpec:
    """One setting: where it lives in a snapshot and how it is named outside."""

    section: str  # "core", "redis", ... or "cache_types"
    name: str  # attribute name in the section dataclass
    env: str  # environment variable name
    doc: str = field(compare=False)
    kind: ValueKind = field(compare=False)
    cache_type: str | None = None  # the type name for cache_types settings

    @property
    def path(self) -> str:
        """Dotted path, e.g. ``redis.port`` or ``cache_types.search.ttl``."""
        if self.cache_type is not None:
            return f"cache_types.{self.cache_type}.{self.name}"
        return f"{self.section}.{self.name}"

    @property
    def is_secret(self) -> bool:
        return self.kind.is_secret

    def get(self, snapshot: ConfigSnapshot) -> Any:
        """This setting's value in ``snapshot``."""
        if self.cache_type is not None:
            return getattr(snapshot.cache_types[self.cache_type], self.name)
        return getattr(getattr(snapshot, self.section), self.name)


@cache
def _section_specs() -> tuple[FieldSpec, ...]:
    specs = []
    for section, cls in SECTIONS.items():
        kinds = dict(field_kinds(cls))
        for f in fields(cls):
            specs.append(
                FieldSpec(section, f.name, f.metadata["env"], f.metadata["doc"], kinds[f.name])
            )
    return tuple(specs)


@cache
def _type_specs(type_name: str) -> tuple[FieldSpec, ...]:
    kinds = dict(field_kinds(CacheTypeConfig))
    return tuple(
        FieldSpec(
            "cache_types",
            f.name,
            cache_type_env(type_name, f.metadata["env_suffix"]),
            f"{type_name} cache: {f.metadata['doc']}",
            kinds[f.name],
            cache_type=type_name,
        )
        for f in fields(CacheTypeConfig)
    )


class FieldIndex:
    """Every setting of a configuration with the given cache types, in display order."""

    def __init__(self, cache_types: Iterable[str]) -> None:
        specs: list[FieldSpec] = []
        type_names = list(cache_types)
        for spec in _section_specs():
            specs.append(spec)
            if spec.section == "memory" and spec.name == "cleanup_interval":
                # Cache types follow the memory section, as in the guide.
                for type_name in type_names:
                    specs.extend(_type_specs(type_name))
        self.specs: tuple[FieldSpec, ...] = tuple(specs)
        self._by_env: dict[str, FieldSpec] = {}
        for spec in specs:
            clash = self._by_env.setdefault(spec.env, spec)
            if clash is not spec:
                raise ConfigError(
                    f"{spec.path} would use {spec.env}, which already names {clash.path}"
                )
        self._by_path = {spec.path: spec for spec in specs}

    @classmethod
    def for_snapshot(cls, snapshot: ConfigSnapshot) -> FieldIndex:
        """The index of ``snapshot``'s settings (its cache types included)."""
        return cls(snapshot.cache_types)

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.specs)

    def env_names(self) -> list[str]:
        return [spec.env for spec in self.specs]

    def by_env(self, env: str) -> FieldSpec | None:
        return self._by_env.get(env)

    def resolve(self, key: str) -> FieldSpec:
        """The setting named by ``key`` (env name or dotted path); ConfigError otherwise."""
        spec = self._by_env.get(key) or self._by_path.get(key)
        if spec is None and isinstance(key, str):
            spec = self._by_env.get(key.upper())
        if spec is None:
            raise ConfigError(self.unknown_key_message(key))
        return spec

    def unknown_key_message(self, key: object) -> str:
        """'unknown setting' message with the closest known names, for typos."""
        text = str(key)
        pool = [*self._by_env, *self._by_path]
        close = difflib.get_close_matches(text.upper() if "." not in text else text, pool, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown setting {text!r}{hint}"


def values_by_spec(
    index: FieldIndex, raw: Mapping[str, Any]
) -> tuple[dict[FieldSpec, Any], list[str]]:
    """Resolve ``raw`` keys (env names or dotted paths); unknown or duplicate keys are problems."""
    resolved: dict[FieldSpec, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        try:
            spec = index.resolve(key)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if spec in resolved:
            problems.append(f"{spec.env}: given twice (as {spec.env} and {spec.path})")
            continue
        resolved[spec] = value
    return resolved, problems


def replace_values(snapshot: ConfigSnapshot, values: Mapping[FieldSpec, Any]) -> ConfigSnapshot:
    """A copy of ``snapshot`` with the given settings replaced (values already parsed)."""
    sections: dict[str, dict[str, Any]] = {}
    types: dict[str, dict[str, Any]] = {}
    for spec, value in values.items():
        if spec.cache_type is not None:
            types.setdefault(spec.cache_type, {})[spec.name] = value
        else:
            sections.setdefault(spec.section, {})[spec.name] = value
    changes: dict[str, Any] = {
        name: replace(getattr(snapshot, name), **attrs) for name, attrs in sections.items()
    }
    if types:
        merged = dict(snapshot.cache_types)
        for type_name, attrs in types.items():
            merged[type_name] = replace(merged[type_name], **attrs)
        changes["cache_types"] = merged
    return replace(snapshot, **changes)
