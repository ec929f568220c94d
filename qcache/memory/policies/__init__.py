"""Eviction policies: one small ordering hook each, looked up by name."""

# Importing the implementation modules registers their policies.
from qcache.memory.policies import adaptive as _adaptive  # noqa: F401
from qcache.memory.policies import arc as _arc  # noqa: F401
from qcache.memory.policies import classic as _classic  # noqa: F401
from qcache.memory.policies import lfu as _lfu  # noqa: F401
from qcache.memory.policies import random_policy as _random  # noqa: F401
from qcache.memory.policies import s3fifo as _s3fifo  # noqa: F401
from qcache.memory.policies import sieve as _sieve  # noqa: F401
from qcache.memory.policies import wtinylfu as _wtinylfu  # noqa: F401
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
