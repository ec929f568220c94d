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


def chunk_ends(total: int, chunk: int) -> list[int]:
    """Where slices of ``chunk`` requests end, over ``total`` requests (the last may be shorter)."""
    return [*range(chunk, total, chunk), total] if total > 0 else []


class SegmentedReplay:
    """The simulator's replay of a policy, whole or cut into segments.

    A policy mixes this in and implements ``_replay_loop(keys, progress,
    chunk)``: its hooks inlined into one loop, which starts from, and leaves,
    the policy's state (the tests compare the two hit for hit). ADAPTIVE
    scores its candidates period by period through :meth:`replay_segments`.
    """

    def _replay_loop(self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int) -> int:
        raise NotImplementedError

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
        *,
        job: int | None = None,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        ``progress`` gets the number of requests done every ``chunk``
        requests; ``job`` is the length of the whole replay this one is part
        of (a policy with a compiled twin decides by it whether to use it).
        """
        return sum(self.replay_segments(keys, chunk_ends(len(keys), chunk), progress, job=job))

    def replay_segments(
        self,
        keys: Sequence[Hashable],
        ends: Sequence[int],
        progress: Callable[[int], None] | None = None,
        *,
        job: int | None = None,
    ) -> list[int]:
        """:meth:`replay` cut at ``ends`` (ascending, the last ``len(keys)``): the hits of each segment.

        ``progress`` gets the length of each segment that holds requests.
        """
        check_segment_ends(len(keys), ends)
        return self._replay_pieces(keys, ends, progress)

    def _replay_pieces(
        self, keys: Sequence[Hashable], ends: Sequence[int], progress: Callable[[int], None] | None
    ) -> list[int]:
        """The pure loop over each segment in turn (ends already checked)."""
        hits = []
        start = 0
        for end in ends:
            hits.append(self._replay_loop(keys[start:end], progress, max(end - start, 1)))
            start = end
        return hits


def check_segment_ends(total: int, ends: Sequence[int]) -> None:
    """Refuse segment ends that do not ascend from 0 to ``total``."""
    descending = any(end < start for start, end in zip([0, *ends], ends, strict=False))
    if descending or (ends[-1] if ends else 0) != total:
        raise ValueError(f"segment ends must ascend from 0 to len(keys) = {total}")
