"""Eviction policies: one small ordering hook each, looked up by name."""

from qcache.memory.policies import classic as _classic  # noqa: F401  (registers policies)
from qcache.memory.policies.base import EvictionPolicy
from qcache.memory.policies.registry import (
    DEFAULT_POLICY,
    available_policies,
    create_policy,
    register_policy,
    resolve_policy_name,
)

__all__ = [
    "DEFAULT_POLICY",
    "EvictionPolicy",
    "available_policies",
    "create_policy",
    "register_policy",
    "resolve_policy_name",
]
