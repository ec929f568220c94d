"""Rendering a configuration as JSON, YAML or ``.env`` text (secrets masked)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qcache.config.cache_config import CacheConfig
from qcache.config.envfile import quote_value
from qcache.errors import MissingDependency

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
    """YAML for a nested mapping of scalars, by PyYAML (the ``yaml`` extra)."""
    try:
        import yaml
    except ImportError:
        raise MissingDependency(
            "YAML output needs PyYAML: pip install 'qcache[yaml]' (or use --format json or env)"
        ) from None
    return str(yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)).rstrip("\n")
