"""Helpers shared by the memory-store tests."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from qcache.memory.policies import EvictionPolicy
from qcache.memory.policies.classic import LRUPolicy
from qcache.memory.store import StoredEntry


class RecordingLRU(LRUPolicy):
    """LRU that logs every call the store makes, to check the driver protocol."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.calls: list[tuple[str, Hashable | None]] = []

    def on_insert(self, key: Hashable) -> None:
        self.calls.append(("insert", key))
        super().on_insert(key)

    def on_access(self, key: Hashable) -> None:
        self.calls.append(("access", key))
        super().on_access(key)

    def on_miss(self, key: Hashable) -> None:
        self.calls.append(("miss", key))

    def on_remove(self, key: Hashable) -> None:
        self.calls.append(("remove", key))
        super().on_remove(key)

    def victim(self) -> Hashable:
        key = super().victim()
        self.calls.append(("victim", key))
        return key

    def clear(self) -> None:
        self.calls.append(("clear", None))
        super().clear()

    def take(self) -> list[tuple[str, Hashable | None]]:
        calls, self.calls = self.calls, []
        return calls


class RejectNewcomer(EvictionPolicy):
    """An admission policy at its harshest: the key inserted last is always the victim."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.order: dict[Hashable, None] = {}

    def on_insert(self, key: Hashable) -> None:
        self.order[key] = None

    def on_access(self, key: Hashable) -> None:
        pass

    def on_remove(self, key: Hashable) -> None:
        del self.order[key]

    def victim(self) -> Hashable:
        return self.order.popitem()[0]

    def __len__(self) -> int:
        return len(self.order)

    def clear(self) -> None:
        self.order.clear()


def named(entry: tuple[Any, ...] | None) -> StoredEntry | None:
    """An entry ``get_entry`` handed out (a plain tuple), with its fields named."""
    return None if entry is None else StoredEntry._make(entry)
