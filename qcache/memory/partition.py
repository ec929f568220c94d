"""Partitions of the L1 store: one share per cache type, each with its own cap and policy.

A :class:`Partition` is the store's bookkeeping for one group of keys (in the
facade, one cache type): how many entries and bytes it holds, the most
entries it may hold, and the eviction policy instance that orders its keys.
Every stored entry points at its partition, so a hit reaches the right policy
without a lookup. :func:`fullest` is the rule that picks which partition gives
way when the store's *global* bounds, rather than a partition's own cap, are
exceeded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from qcache.memory.policies import EvictionPolicy

__all__ = ["DEFAULT_PARTITION", "Partition", "fullest"]

#: The partition of entries written without one (``partition=None``); the
#: facade's untyped calls use the same name, so they share it.
DEFAULT_PARTITION = "default"


class Partition:
    """One partition's counters, cap and policy; owned and mutated by its store only.

    Why a class of its own: the store's hot paths reach the partition through
    the entry itself (``entry.partition.on_access(key)``), so the policy hooks
    are kept as slots holding bound methods, one attribute load away. Callers
    may read ``name``, ``cap``, ``capacity``, ``entries`` and ``bytes``; the
    store's lock guards every change.

    ``cap`` is the configured limit (``None``: none of its own); ``capacity``
    is what the partition can really hold, the cap clipped to the store's
    entry bound, and is the capacity its policy was built for.
    """

    __slots__ = (
        "bytes",
        "cap",
        "capacity",
        "entries",
        "name",
        "on_access",
        "on_insert",
        "on_miss",
        "on_remove",
        "policy",
    )

    def __init__(self, name: str, cap: int | None, capacity: int, policy: EvictionPolicy) -> None:
        """An empty partition whose keys ``policy`` (built for ``capacity``) will order."""
        self.name = name
        self.cap = cap
        self.capacity = capacity
        self.entries = 0
        self.bytes = 0
        self.adopt(policy)

    def adopt(self, policy: EvictionPolicy) -> None:
        """Make ``policy`` the one ordering this partition's keys (hooks bound once, for the hot path)."""
        self.policy = policy
        self.on_insert, self.on_access, self.on_miss, self.on_remove = policy.hooks()

    def rebuild(self, capacity: int, make_policy: Callable[[int], EvictionPolicy]) -> list[Hashable]:
        """Switch to a new policy built for ``capacity``; return the keys that no longer fit.

        The old policy is drained through ``victim()``, so keys come out in
        its own eviction order, least worth keeping first: the first ones
        beyond the new capacity are returned for the store to drop (the
        policy's choice, as with any eviction), the rest enter the new policy
        in that same order. Recency and insertion order therefore survive a
        resize; frequency estimates start afresh.
        """
        policy = make_policy(capacity)  # first: if building fails, nothing has changed
        old = self.policy
        order = [old.victim() for _ in range(len(old))]
        excess = max(0, len(order) - capacity)
        for key in order[excess:]:
            policy.on_insert(key)
        self.capacity = capacity
        self.adopt(policy)
        return order[:excess]

    def __repr__(self) -> str:
        cap = "none" if self.cap is None else self.cap
        return f"Partition({self.name!r}, entries={self.entries}, cap={cap}, bytes={self.bytes})"


def fullest(partitions: Iterable[Partition], by_entries: bool) -> Partition | None:
    """The partition that must give way when a global bound is exceeded (None if every fill is zero).

    Each partition's fair share of a global bound is proportional to its
    ``capacity``: a type capped at 1,000 entries is entitled to a tenth of
    what one capped at 10,000 gets, and an uncapped one to as much as the
    store holds. The partition whose fill is largest relative to that share
    (``entries / capacity`` for the entry bound, ``bytes / capacity`` for the
    byte bound) gives way. Since the fullest partition is at least as full as
    the average, it is always one above its fair share while the bound is
    exceeded: a hot type can never squeeze a quieter one below its share,
    which evicting from the largest partition (or through one global policy)
    would allow. Ties go to the partition opened first.
    """
    best: Partition | None = None
    best_fill = 0.0  # strictly above: an empty partition (or one of zero bytes) never gives way
    for part in partitions:
        fill = (part.entries if by_entries else part.bytes) / part.capacity
        if fill > best_fill:
            best, best_fill = part, fill
    return best
