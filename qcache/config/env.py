"""Building a configuration from layers: arguments, environment, ``.env``, profile, defaults.

Precedence, highest first, decided per setting:

1. explicit arguments (``CacheConfig.from_env(REDIS_PORT=7000)``, or a dotted
   path such as ``**{"memory.max_size": 5}``), including later ``update()`` calls;
2. the process environment (``os.environ``, or the ``environ`` mapping given);
3. the ``.env`` file;
4. the profile named by ``ENVIRONMENT`` (looked up in the three layers above,
   in the same order);
5. the built-in defaults.

``.env`` files are read with python-dotenv (comments, quotes, ``export``,
inline ``# comments`` after unquoted values). Variable interpolation is off:
values are taken literally, so a ``$`` in a password stays a ``$`` and the
result never depends on variables outside the layers above.

Every unparsable value of one load is collected and reported in one
:class:`ConfigError` whose ``problems`` list names each variable, the bad
value (never a secret's) and the layer it came from.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from qcache.config.profiles import profile_values
from qcache.config.schema import FieldIndex, FieldSpec, replace_values, values_by_spec
from qcache.config.sections import CacheTypeConfig, ConfigSnapshot
from qcache.config.values import parse
from qcache.errors import ConfigError

ENVIRONMENT_VARIABLE = "ENVIRONMENT"


class _DefaultEnvFile(str):
    """The default ``.env`` path: unlike an explicit path, it may be missing."""


#: ``.env`` in the working directory, read when present.
DEFAULT_ENV_FILE: str = _DefaultEnvFile(".env")


@dataclass(frozen=True)
class LoadSources:
    """What a configuration was built from, so a reload repeats the same layering.

    ``overrides`` are keyed by environment variable name; ``environ`` is a copy
    taken at load time (a reload does not pick up later changes of
    ``os.environ``, only of the ``.env`` file).
    """

    overrides: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    env_file: Path | None = None
    env_file_required: bool = False

    def with_overrides(self, values: Mapping[str, Any]) -> LoadSources:
        """These sources with ``values`` (env-name keyed) added to the explicit layer."""
        return replace(self, overrides={**self.overrides, **values})


def sources_for(
    env_file: str | Path | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any],
    index: FieldIndex,
) -> LoadSources:
    """Sources for ``from_env``; ConfigError for unknown override keys."""
    resolved, problems = values_by_spec(index, overrides)
    if problems:
        raise ConfigError(_summary(problems), problems)
    return LoadSources(
        overrides={spec.env: value for spec, value in resolved.items()},
        environ=dict(environ),
        env_file=None if env_file is None else Path(env_file),
        env_file_required=env_file is not None and not isinstance(env_file, _DefaultEnvFile),
    )


def read_env_file(path: Path | None, required: bool) -> dict[str, str]:
    """The variables of ``.env`` file ``path`` ({} when absent and not required)."""
    if path is None:
        return {}
    if not path.is_file():
        if required:
            raise ConfigError(f"env file not found: {path}")
        return {}
    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read env file {path}: {exc}") from None
    return _defined(values)


def parse_env_text(text: str) -> dict[str, str]:
    """The variables of ``.env`` content ``text`` (used to check an edit before writing it)."""
    return _defined(dotenv_values(stream=io.StringIO(text), interpolate=False))


def _defined(values: Mapping[str, str | None]) -> dict[str, str]:
    # A bare ``KEY`` line (no "=") defines nothing; it must not mask lower layers.
    return {key: value for key, value in values.items() if value is not None}


def load_snapshot(
    sources: LoadSources,
    cache_types: Mapping[str, CacheTypeConfig],
    *,
    file_values: Mapping[str, str] | None = None,
) -> ConfigSnapshot:
    """The snapshot the layers of ``sources`` produce over ``cache_types`` defaults.

    ``file_values`` replaces reading ``sources.env_file`` (used to check an
    edit of the file before it is written).
    """
    index = FieldIndex(cache_types)
    if file_values is None:
        file_values = read_env_file(sources.env_file, sources.env_file_required)
    file_label = f".env file {str(sources.env_file)!r}" if sources.env_file else ".env file"
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("explicit argument", sources.overrides),
        ("environment", sources.environ),
        (file_label, file_values),
    ]
    problems: list[str] = []
    profile = _profile_layer(index, layers, problems)
    if profile is not None:
        layers.append(profile)

    values: dict[FieldSpec, Any] = {}
    for spec in index:
        for label, layer in layers:
            if spec.env in layer:
                try:
                    values[spec] = parse(spec.kind, layer[spec.env])
                except ValueError as exc:
                    problems.append(f"{spec.env}: {exc} (from {label})")
                break
    if problems:
        # ENVIRONMENT is parsed twice (profile choice, then as a setting).
        problems = list(dict.fromkeys(problems))
        raise ConfigError(_summary(problems), problems)
    return replace_values(ConfigSnapshot(cache_types=cache_types), values)


def _profile_layer(
    index: FieldIndex, layers: list[tuple[str, Mapping[str, Any]]], problems: list[str]
) -> tuple[str, Mapping[str, Any]] | None:
    """The profile layer chosen by the highest layer that sets ``ENVIRONMENT``."""
    spec = index.resolve(ENVIRONMENT_VARIABLE)
    for label, layer in layers:
        if ENVIRONMENT_VARIABLE in layer:
            try:
                name = parse(spec.kind, layer[ENVIRONMENT_VARIABLE])
            except ValueError as exc:
                problems.append(f"{ENVIRONMENT_VARIABLE}: {exc} (from {label})")
                return None
            if name is None:
                return None
            return (f"profile {name!r}", profile_values(name))
    return None


def _summary(problems: list[str]) -> str:
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return f"invalid configuration ({count} {noun}): " + "; ".join(problems)
