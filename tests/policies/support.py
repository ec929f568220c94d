"""Helpers shared by the policy tests."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any


def by_hooks(policy: Any, keys: Sequence[Hashable]) -> int:
    """"Get, insert on miss" through the hooks, from whatever the policy holds (run_policy starts empty)."""
    hits = 0
    for key in keys:
        if key in policy:
            hits += 1
            policy.on_access(key)
        else:
            policy.on_miss(key)
            policy.on_insert(key)
            if len(policy) > policy.capacity:
                policy.victim()
    return hits
