"""Reference policies that exist for comparison only: LIRS and 2Q.

They follow the published algorithms (with libCacheSim's parameters, so
reports line up with its tables) and implement the same
:class:`~qcache.memory.policies.EvictionPolicy` hooks as the L1 policies, so
the simulator drives them with the same loop. They are not L1 policies: they
are looked up here, by the simulator, and never by ``MEMORY_CACHE_EVICTION_POLICY``.
ARC, the third reference of the reports, is an L1 policy
(:mod:`qcache.memory.policies.arc`): the simulator finds it in the registry.
"""

from __future__ import annotations

from typing import Any

from qcache.memory.policies import EvictionPolicy
from qcache.sim.reference.lirs import LIRSPolicy
from qcache.sim.reference.twoq import TwoQPolicy

#: Reference policies by canonical (upper-case) name.
REFERENCE_POLICIES: dict[str, type[EvictionPolicy]] = {
    "LIRS": LIRSPolicy,
    "TWO_Q": TwoQPolicy,
}
_ALIASES = {"2Q": "TWO_Q", "TWOQ": "TWO_Q"}


def reference_name(name: str) -> str | None:
    """Canonical name of a reference policy (``lirs``, ``2q``, ``two-q``...), or None."""
    key = name.strip().upper().replace("-", "_")
    key = _ALIASES.get(key, key)
    return key if key in REFERENCE_POLICIES else None


def create_reference_policy(name: str, capacity: int, **options: Any) -> EvictionPolicy:
    """A reference policy for a cache of ``capacity`` keys (``name`` canonical or an alias)."""
    canonical = reference_name(name)
    if canonical is None:
        raise KeyError(f"no reference policy {name!r}; known: {', '.join(REFERENCE_POLICIES)}")
    return REFERENCE_POLICIES[canonical](capacity, **options)


__all__ = [
    "REFERENCE_POLICIES",
    "LIRSPolicy",
    "TwoQPolicy",
    "create_reference_policy",
    "reference_name",
]
