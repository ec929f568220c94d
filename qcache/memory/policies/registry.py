"""Eviction policies by name, so configuration and the simulator can pick one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from qcache.errors import ConfigError
from qcache.memory.policies.base import EvictionPolicy

P = TypeVar("P", bound=type[EvictionPolicy])

_REGISTRY: dict[str, type[EvictionPolicy]] = {}

#: The policy that ``MEMORY_CACHE_EVICTION_POLICY`` and the name ``default`` select.
DEFAULT_POLICY = "ADAPTIVE"


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator adding a policy to the registry under ``name``."""

    def decorate(cls: P) -> P:
        key = name.strip().upper()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"eviction policy {key!r} is already registered")
        cls.name = key
        _REGISTRY[key] = cls
        return cls

    return decorate


def resolve_policy_name(name: str) -> str:
    """Canonical registry name for ``name`` (case-insensitive; ``default`` allowed)."""
    key = name.strip().upper().replace("-", "_")
    if key == "DEFAULT":
        key = DEFAULT_POLICY
    if key not in _REGISTRY:
        known = ", ".join(available_policies())
        # ConfigError is a ValueError, so callers catching ValueError keep working.
        raise ConfigError(f"unknown eviction policy {name!r}; known: {known}, default")
    return key


def create_policy(name: str, capacity: int, **options: Any) -> EvictionPolicy:
    """A new policy instance for a cache holding at most ``capacity`` keys."""
    return _REGISTRY[resolve_policy_name(name)](capacity, **options)


def available_policies() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)
