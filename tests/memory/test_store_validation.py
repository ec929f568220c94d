"""Bad arguments to MemoryStore fail loudly and change nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from qcache.memory.clock import ManualClock
from qcache.memory.policies import DEFAULT_POLICY, create_policy
from qcache.memory.store import MemoryStore


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"max_entries": 0}, ValueError, "max_entries must be positive"),
        ({"max_entries": -3}, ValueError, "max_entries must be positive"),
        ({"max_entries": 2.5}, TypeError, "max_entries must be a positive int"),
        ({"max_entries": True}, TypeError, "max_entries must be a positive int"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be positive"),
        ({"max_bytes": "1MB"}, TypeError, "max_bytes must be a positive int"),
        ({"policy": "NOPE"}, ValueError, "unknown eviction policy"),
        ({"policy": 3}, TypeError, "policy must be"),
        ({"cleanup_interval": 0}, ValueError, "cleanup_interval"),
        ({"cleanup_interval": -1.0}, ValueError, "cleanup_interval"),
        ({"cleanup_interval": math.nan}, ValueError, "cleanup_interval"),
        ({"cleanup_interval": math.inf}, ValueError, "cleanup_interval"),
        ({"cleanup_interval": "60"}, TypeError, "cleanup_interval"),
        ({"clock": 5.0}, TypeError, "clock must be a callable"),
        ({"clock": lambda: "noon"}, TypeError, "clock must return"),
        ({"clock": lambda: math.nan}, TypeError, "clock must return"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, Any], error: type[Exception], fragment: str) -> None:
    args: dict[str, Any] = {"max_entries": 10, "max_bytes": 100, **kwargs}
    with pytest.raises(error, match=fragment):
        MemoryStore(**args)


def test_policy_names_are_resolved_like_the_registry() -> None:
    assert MemoryStore(10, 100, "lru").policy_name == "LRU"
    assert MemoryStore(10, 100, "default").policy_name == DEFAULT_POLICY
    assert MemoryStore(10, 100).policy_name == "LRU"


def test_a_policy_instance_must_be_empty() -> None:
    policy = create_policy("LRU", 10)
    policy.on_insert("ghost")
    with pytest.raises(ValueError, match="must be empty"):
        MemoryStore(10, 100, policy)


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (("k", 1, 1, 0), ValueError, "ttl must be a positive"),
        (("k", 1, 1, -5), ValueError, "ttl must be a positive"),
        (("k", 1, 1, math.nan), ValueError, "ttl must be a positive"),
        (("k", 1, 1, math.inf), ValueError, "ttl must be a positive"),
        (("k", 1, 1, "60"), TypeError, "ttl must be a number"),
        (("k", 1, 1, True), TypeError, "ttl must be a number"),
        (("k", 1, -1, None), ValueError, "size must be >= 0"),
        (("k", 1, 1.5, None), TypeError, "size must be an int"),
        (("k", 1, None, None), TypeError, "size must be an int"),
        ((42, 1, 1, None), TypeError, "keys must be str"),
        ((b"k", 1, 1, None), TypeError, "keys must be str"),
    ],
)
def test_set_rejects_bad_input_and_changes_nothing(
    call: tuple[Any, ...], error: type[Exception], fragment: str
) -> None:
    store = MemoryStore(10, 100, clock=ManualClock())
    store.set("k", "old", 5, None)
    with pytest.raises(error, match=fragment):
        store.set(*call)
    assert store.get("k") == "old"
    assert store.total_bytes == 5
    assert store.stats().rejected == 0
    store.check_invariants()


def test_check_invariants_reports_corruption() -> None:
    store = MemoryStore(10, 100)
    store.set("k", 1, 5, None)
    store.check_invariants()
    store._bytes += 1  # simulate a lost update
    with pytest.raises(RuntimeError, match="byte total"):
        store.check_invariants()
