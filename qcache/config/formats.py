"""Rendering a configuration as JSON, YAML or ``.env`` text (secrets masked)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qcache.config.cache_config import CacheConfig
from qcache.config.envfile import quote_value

FORMATS: tuple[str, ...] = ("json", "yaml", "env")


def render(config: CacheConfig, fmt: str) -> str:
    """``config`` in format ``fmt`` (json, yaml or env); secrets are always masked."""
    if fmt == "json":
        return json.dumps(config.to_dict(), indent=2)
    if fmt == "yaml":
        return to_yaml(config.to_dict())
    if fmt == "env":
        return "\n".join(f"{k}={quote_value(v)}" for k, v in config.to_env().items())
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def to_yaml(data: Mapping[str, Any]) -> str:
    """YAML for a nested mapping of scalars; PyYAML when installed (it is optional)."""
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return emit_yaml(data)
    return str(yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)).rstrip("\n")


def emit_yaml(data: Mapping[str, Any], indent: int = 0) -> str:
    """Minimal YAML emitter for nested mappings of scalars (the fallback without PyYAML)."""
    lines: list[str] = []
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, Mapping):
            if value:
                lines.append(f"{pad}{_scalar(str(key))}:")
                lines.append(emit_yaml(value, indent + 1))
            else:
                lines.append(f"{pad}{_scalar(str(key))}: {{}}")
        else:
            lines.append(f"{pad}{_scalar(str(key))}: {_scalar(value)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A JSON string is a valid double-quoted YAML scalar; quoting every string
    # avoids YAML reading "yes", "1.0" or "null" as something else.
    return json.dumps(str(value))
