"""The contract every eviction policy fulfils.

A policy holds only ordering metadata about keys; it never sees values, sizes
or expiry times. That is what lets one policy object drive the L1 store, the
hit-ratio simulator and the benchmarks alike. The store tells the policy what
happened (``on_insert``, ``on_access``, ``on_remove``, ``on_miss``) and asks it
which key to give up (``victim``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import ClassVar, NamedTuple


class PolicyHooks(NamedTuple):
    """The four notifications a driver calls on the hot paths, as callables bound once."""

    on_insert: Callable[[Hashable], object]
    on_access: Callable[[Hashable], object]
    on_miss: Callable[[Hashable], object]
    on_remove: Callable[[Hashable], object]


class EvictionPolicy(ABC):
    """Ordering metadata for a bounded cache.

    Protocol followed by every driver (store or simulator):

    * ``on_insert(key)`` once when ``key`` enters the cache (it was absent);
    * ``on_access(key)`` on every hit on a present key, including an overwrite;
    * ``on_miss(key)`` on a lookup of an absent key (frequency-based policies
      learn from it; the default ignores it);
    * ``on_remove(key)`` when the driver drops a present key itself
      (delete, expiry, clear of one key);
    * ``victim()`` when the driver is over its bound: the policy picks a
      present key, forgets it and returns it; the driver then drops it
      without calling ``on_remove``. The victim may be the key inserted last
      (that is how admission policies such as TinyLFU reject a newcomer).

    Policies are not thread-safe; the driver serialises calls.
    """

    #: Registry name (upper case), set by :func:`register_policy`.
    name: ClassVar[str] = ""
    #: True when only the last of several ``on_access(key)`` calls matters (recency, or nothing):
    #: a driver replaying buffered hits may then drop the repeats and keep each key's last.
    last_access_only: ClassVar[bool] = False

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        self.capacity = capacity

    @abstractmethod
    def on_insert(self, key: Hashable) -> None:
        """``key`` entered the cache."""

    @abstractmethod
    def on_access(self, key: Hashable) -> None:
        """``key`` was read (or overwritten) while present."""

    def on_miss(self, key: Hashable) -> None:  # noqa: B027  # an optional hook: most policies ignore misses
        """``key`` was looked up while absent."""

    @abstractmethod
    def on_remove(self, key: Hashable) -> None:
        """The driver dropped ``key`` on its own account."""

    def hooks(self) -> PolicyHooks:
        """The notifications as callables, for a driver that binds them once (the L1 store does).

        They must behave exactly as the methods; a policy may hand out the
        underlying C methods of its containers instead, saving a Python call
        per operation.
        """
        return PolicyHooks(self.on_insert, self.on_access, self.on_miss, self.on_remove)

    @abstractmethod
    def victim(self) -> Hashable:
        """Choose a present key to evict, forget it and return it.

        Raises ``KeyError`` when the policy tracks no key.
        """

    @abstractmethod
    def __len__(self) -> int:
        """Number of keys tracked."""

    @abstractmethod
    def clear(self) -> None:
        """Forget every key."""


def replay_chunks(
    keys: Sequence[Hashable], chunk: int, progress: Callable[[int], None] | None
) -> Iterator[Sequence[Hashable]]:
    """``keys`` in slices of ``chunk``, for the policies' ``replay`` loops; each slice's length goes
    to ``progress`` once the loop has replayed it (the simulator's progress bar)."""
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        yield part
        if progress is not None:
            progress(len(part))
