"""The L1 tier: an in-process, thread-safe store bounded by entries and bytes.

The cache facade builds full string keys, encodes each value once (to learn
its size and to feed L2) and hands the store the *Python object* together with
that encoded size. Keeping the object rather than the bytes is what makes an
L1 hit cost no decoding at all; keeping the encoded size is what lets the
store honour a byte budget without guessing at the in-memory footprint of
arbitrary objects.

Expiry uses ``(time, key)`` pairs with lazy deletion. The invariant is that
every entry with an expiry has a pair at or before its ``expires_at``: an
overwrite that does not bring the expiry forward (the common case: the same
TTL, later) pushes nothing, and a popped pair whose entry now expires later is
pushed again at that time. A pair whose key is gone or no longer expires is
stale and dropped when popped; deletes leave such pairs behind, and the pairs
are compacted once they outnumber the live ones. A popped pair expires its
entry only when the entry's own ``expires_at`` has passed, so no pair can
expire a newer write. Pairs are popped in bounded batches, so no single call
scans the whole store.

Most pairs do not need a heap: writes with the same TTL expire in the order
they were made (the clock is monotonic), so each of the few TTLs in use (a
cache type's, the caller's usual one) gets a FIFO queue of its own
(:class:`_ExpiryQueue`): a deque of keys, and one time per run of keys that
share it, about 8 bytes a pair instead of a heap's 64 (a tuple and its
slot). A pair that does not fit a queue in order (a TTL beyond the first
:data:`_MAX_QUEUES` in use, as jittered TTLs are, a pair pushed again, a
clock that went back) goes to a min-heap of tuples as before. A new
entry whose expiry falls within a thousandth of its TTL after its queue's
last one takes that time, the same float (see ``_SHARED_EXPIRY``): entries
written close together keep one expiry object, not one each.

Keys live in *partitions* (the facade uses one per cache type, see
:mod:`qcache.memory.partition`): each has its own entry cap and its own policy
instance, while the entry and byte bounds hold for the store as a whole.

Entries are held as plain tuples in :class:`StoredEntry`'s field order
(``get_entry`` hands them out as they are; ``peek`` as a StoredEntry). A store
of the LRU policy with one partition keeps them in an ordered dict whose order *is* the LRU order, instead of a
plain dict beside the policy's own ordered map (see :class:`_DataOrderLRU`);
it moves to the general layout when a second partition opens.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush
from itertools import islice
from typing import Any, NamedTuple

from qcache.memory.clock import Clock
from qcache.memory.partition import DEFAULT_PARTITION, Partition, fullest
from qcache.memory.policies import EvictionPolicy, create_policy
from qcache.memory.policies.base import PolicyHooks
from qcache.memory.policies.classic import LRUPolicy

__all__ = ["DEFAULT_PARTITION", "MAX_PARTITIONS", "HitPath", "MemoryStats", "MemoryStore", "Partition", "StoredEntry"]

#: Most heap pairs one drain step pops while holding the lock; bounds the
#: latency a periodic cleanup adds to the ``set`` that triggers it.
_DRAIN_BATCH = 256
#: Most keys :meth:`MemoryStore.delete_where` removes per lock acquisition,
#: so a large invalidation does not stall concurrent readers.
_DELETE_BATCH = 1024
_INF = math.inf
#: Hits buffered for the policies before the reader that fills the buffer replays them (see get_entry).
_READ_BUFFER = 64
#: Stale heap pairs tolerated beyond one per timed entry before compaction;
#: avoids rebuilding a tiny heap over and over.
_HEAP_SLACK = 64
#: The fraction of its TTL by which a new entry may expire early: when its expiry falls at most
#: that far after the last one queued for its TTL, it takes that time, the same float object.
#: Entries of one TTL written close together then share one float (24 bytes, 32 after the
#: allocator's rounding) instead of one each: with a TTL of an hour, those of each 3.6 s.
_SHARED_EXPIRY = 0.001
#: Most TTLs with an expiry queue of their own at a time (see the module docstring); a queue
#: goes when it empties. Pairs of other TTLs go to the heap.
_MAX_QUEUES = 16
#: Sizes above this are separate int objects (CPython shares the small ones): the store
#: shares equal ones instead (see MemoryStore._put), remembering at most _SHARED_SIZES of them.
_SMALL_INT = 256
_SHARED_SIZES = 4096
#: Most partitions one store opens. Partitions stand for cache types, which
#: are few; each costs a policy instance and a step in every global eviction.
MAX_PARTITIONS = 256


class StoredEntry(NamedTuple):
    """The fields of an L1 entry, by name (entries are immutable).

    The store holds each entry as a plain tuple of these fields in this order,
    and :meth:`MemoryStore.get_entry` hands that tuple out (``peek`` hands out a
    StoredEntry; ``StoredEntry._make(entry)`` names the fields of any entry).

    ``value`` is the caller's object itself, not a copy: a hit returns the same
    object every time, so callers must not mutate it (as with cachetools).
    ``size`` is the encoded length the caller declared, counted against the
    byte bound. ``expires_at`` is a reading of the store's clock, or ``None``
    for no expiry. ``meta`` is an opaque slot for the facade (tags, flags).
    ``partition`` is the :class:`Partition` the entry counts against (its
    ``name`` is what :meth:`MemoryStore.set` was given); every entry the store
    hands out has one.
    """

    # Why plain tuples (0 value, 1 size, 2 expires_at, 3 meta, 4 partition): an instance
    # of this class is allocated one slot larger (16 bytes more after the allocator's
    # rounding), takes a second tuple to build, and the interpreter's fast path for
    # indexing a tuple takes exact tuples only, so every hit and write indexing one
    # pays for it.
    value: Any
    size: int
    expires_at: float | None
    meta: Any = None
    partition: Partition | None = None


#: An entry as the store holds it: a plain tuple of :class:`StoredEntry`'s fields, in its order.
Entry = tuple[Any, int, "float | None", Any, Partition]


class HitPath(NamedTuple):
    """What :meth:`MemoryStore.hit_path` hands out: a hit without a call into the store."""

    lookup: Callable[[str], Entry | None]
    clock: Clock
    reads: list[str]
    replay: Callable[[], None]
    batch: int


# The generated ``StoredEntry.__new__`` is a Python-level call: ``peek`` makes its
# StoredEntry of a held entry with ``tuple.__new__(StoredEntry, entry)``, one C call.
_new_entry = tuple.__new__


#: A C callable taking a key and doing nothing with it: the hooks of the data's own LRU order
#: that have nothing to do (the store's write or delete already did it).
_IGNORE_KEY = frozenset().__contains__


class _DataOrderLRU(EvictionPolicy):
    """LRU kept in the order of the store's own data (an OrderedDict), not in a second map.

    While a store of the LRU policy has one partition, every key is that
    partition's, so the data's order can be the recency order: a write of a
    new key already puts it last, a hit or an overwrite moves it there
    (``move_to_end``), and a delete takes it out. That saves the second
    ordered map, about 40 bytes an entry. Hit for hit the same decisions as
    :class:`LRUPolicy` (tested); the store switches to a plain dict and a
    separate :class:`LRUPolicy` (:meth:`MemoryStore._split_order`) before a
    second partition opens or this one is resized. Only the store drives it:
    ``victim`` names the least recent key and the store deletes it at once.
    """

    name = LRUPolicy.name
    last_access_only = True

    def __init__(self, capacity: int, order: OrderedDict[str, Any]) -> None:
        super().__init__(capacity)
        self._order = order

    def on_insert(self, key: Hashable) -> None:
        """The store's write put ``key`` last already."""

    def on_access(self, key: Hashable) -> None:
        self._order.move_to_end(key)  # type: ignore[arg-type]  # the store's keys are str

    def on_remove(self, key: Hashable) -> None:
        """The store's delete took ``key`` out already."""

    def hooks(self) -> PolicyHooks:
        return PolicyHooks(_IGNORE_KEY, self._order.move_to_end, _IGNORE_KEY, _IGNORE_KEY)  # type: ignore[arg-type]  # as above

    def victim(self) -> Hashable:
        return next(iter(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        """The store clears its data itself."""


class _ExpiryQueue:
    """The expiry pairs of one TTL in the order they were pushed: keys, and the time of each run of keys.

    Entries written close together share one expiry float (``_SHARED_EXPIRY``), so their pairs
    share one time: the queue keeps a run's time once, as ``(number of its first key, time)``,
    and each pair costs the keys deque's pointer only. Keys are numbered from the first ever
    pushed; ``popped`` of them have left the front. Times never decrease (the store pushes a
    pair here only when it does not come before ``last``), and a queue is never left empty.
    """

    __slots__ = ("keys", "last", "popped", "runs")

    def __init__(self) -> None:
        self.keys: deque[str] = deque()
        self.runs: deque[tuple[int, float]] = deque()
        self.last = -_INF  # the time of the last run: the store reads it inline on every timed write
        self.popped = 0

    def append(self, at: float, key: str) -> None:
        """Queue ``key`` at ``at`` (not before ``last``); a time that is ``last`` itself joins its run."""
        if at is not self.last:
            self.runs.append((self.popped + len(self.keys), at))
            self.last = at
        self.keys.append(key)

    @property
    def first(self) -> float:
        """The time of the front pair (the queue is not empty)."""
        return self.runs[0][1]

    def popleft(self) -> str:
        """Take the front pair's key."""
        key = self.keys.popleft()
        self.popped += 1
        runs = self.runs
        if len(runs) > 1 and runs[1][0] == self.popped:
            runs.popleft()
        elif not self.keys:
            runs.clear()
            self.last = -_INF
        return key

    def pairs(self) -> Iterator[tuple[float, str]]:
        """Every pair, front first (in one pass over the keys: a deque's indexing is linear)."""
        keys = iter(self.keys)
        runs = list(self.runs)
        if not runs:  # empty
            return
        ends = [start - self.popped for start, _ in runs[1:]] + [len(self.keys)]
        begin = 0
        for (_, at), end in zip(runs, ends, strict=True):
            for key in islice(keys, end - begin):
                yield at, key
            begin = end

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """A consistent snapshot of the store's size and lifetime counters.

    ``evictions`` counts entries the policy chose to drop to respect a bound;
    ``expirations`` counts entries dropped because their TTL ran out (on read,
    by cleanup, or under pressure); ``rejected`` counts writes that were not
    kept: larger than the whole byte bound, or refused by the policy itself
    (an admission policy naming the newcomer as the victim). ``partitions``
    maps each partition opened or given a cap to the entries it holds.
    """

    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    evictions: int
    expirations: int
    rejected: int
    partitions: dict[str, int] = field(default_factory=dict)


class MemoryStore:
    """Thread-safe in-process key/value store with TTL, two bounds, partitions and a policy.

    Why it exists: the L1 tier must answer a hit in a fraction of a
    microsecond while never exceeding either ``max_entries`` entries or
    ``max_bytes`` bytes, never returning an expired value, and letting the
    eviction order be chosen by name from the policy registry (the same policy
    objects drive the simulator, so what is tuned there is what runs here).

    Bytes are *declared*, not measured: an entry weighs the ``size`` passed to
    :meth:`set`, which the facade sets to the encoded length of the value. The
    byte bound therefore tracks what the data would cost on the wire, not the
    Python object's footprint (which the store cannot know cheaply).

    Partitions let one store honour per-type limits (``{TYPE}_CACHE_MAX_SIZE``)
    inside the global ones: :meth:`set` names the partition an entry counts
    against, and a partition may have an entry cap of its own
    (``partition_caps``, :meth:`set_partition_cap`). Each partition has its
    own instance of the configured policy, built for its capacity (the cap,
    clipped to ``max_entries``), so a burst in one type cannot push another
    type's keys through a shared eviction order. Then:

    * a write that takes its partition past the cap evicts that partition's
      policy victim (which may be the newcomer: admission still works);
    * a write that takes the store past ``max_entries`` or ``max_bytes``
      evicts from the partition that is fullest relative to its capacity
      (see :func:`qcache.memory.partition.fullest` for why), again by that
      partition's policy.

    Writes without a partition go to :data:`DEFAULT_PARTITION`, uncapped
    unless given a cap: a store used without partitions behaves as one cache
    under one policy. A lookup of an absent key is reported to the default
    partition's policy (the store cannot know which partition an absent key
    would join); the policies that learn from misses (W-TinyLFU) count an
    insert without a preceding lookup as the request, so a partitioned key is
    still counted once per request.

    Values are stored and returned by reference: a hit hands back the very
    object that was set, so callers must treat it as read-only.

    Every operation holds one :class:`threading.Lock` for its duration (the
    bulk ones, :meth:`delete_where` and :meth:`cleanup`, for each batch), so
    concurrent callers never observe a bound or a cap exceeded, a lost update
    or a policy out of step with the data. The exception is a hit: one
    atomic dict lookup finds the live entry without the lock, and the access
    waits in a read buffer that is replayed to the policies, in order,
    before any operation that consults or changes them (as Caffeine does).
    Expired entries are never
    returned; they are reclaimed when read, in bounded batches on ``set``
    once ``cleanup_interval`` seconds have passed on ``clock``, before any
    live entry is evicted, or by an explicit :meth:`cleanup` (which a
    background thread may call).
    """

    __slots__ = (
        "_bytes",
        "_caps",
        "_clock",
        "_cleanup_interval",
        "_data",
        "_default",
        "_evictions",
        "_expirations",
        "_followers",
        "_heap",
        "_lock",
        "_max_bytes",
        "_max_entries",
        "_new_policy",
        "_next_cleanup",
        "_next_due",
        "_on_miss",
        "_pairs",
        "_partitions",
        "_plain_up_to",
        "_queues",
        "_reads",
        "_rejected",
        "_sizes",
        "_timed",
    )

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        policy: str | EvictionPolicy = "LRU",
        *,
        clock: Clock = time.monotonic,
        cleanup_interval: float = 300.0,
        partition_caps: Mapping[str, int] | None = None,
    ) -> None:
        """Create an empty store.

        ``policy`` is a registry name (case-insensitive, ``"default"``
        allowed), or an *empty* :class:`EvictionPolicy` instance the store
        will drive exclusively for the default partition; other partitions
        then get instances of the same class built as ``type(policy)(capacity)``.
        ``clock`` returns seconds as a float; only differences matter.
        ``cleanup_interval`` is how often, on that clock, a ``set`` also
        reclaims a batch of expired entries. ``partition_caps`` maps partition
        names to their entry caps (see :meth:`set_partition_cap`). Raises
        ``ValueError`` or ``TypeError`` naming the first bad argument.
        """
        _require_positive_int(max_entries, "max_entries")
        _require_positive_int(max_bytes, "max_bytes")
        if isinstance(cleanup_interval, bool) or not isinstance(cleanup_interval, (int, float)):
            raise TypeError(
                f"cleanup_interval must be a number of seconds, got {type(cleanup_interval).__name__}"
            )
        if not (math.isfinite(cleanup_interval) and cleanup_interval > 0):
            raise ValueError(
                f"cleanup_interval must be a positive finite number of seconds, got {cleanup_interval!r}"
            )
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        now = clock()
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise TypeError(f"clock must return a finite number of seconds, it returned {now!r}")
        caps: dict[str, int] = {}
        if partition_caps is not None:
            if not isinstance(partition_caps, Mapping):
                raise TypeError(
                    f"partition_caps must be a mapping of partition names to caps, "
                    f"got {type(partition_caps).__name__}"
                )
            for name, cap in partition_caps.items():
                _require_partition_name(name)
                _require_positive_int(cap, f"the cap of partition {name!r}")
                caps[name] = cap
        if len(caps.keys() | {DEFAULT_PARTITION}) > MAX_PARTITIONS:
            raise ValueError(f"a store holds at most {MAX_PARTITIONS} partitions, got caps for {len(caps)}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        # A size up to this is below the byte bound and too small to share (see _put).
        self._plain_up_to = min(_SMALL_INT, max_bytes)
        self._caps = caps
        default_cap = caps.get(DEFAULT_PARTITION)
        default_capacity = _capacity(default_cap, max_entries)
        first = _make_policy(policy, default_capacity)
        self._new_policy = _policy_factory(policy, first)
        data: dict[str, Entry]
        if type(first) is LRUPolicy and isinstance(policy, str):
            # One partition so far: the data's own order is the LRU order (see _DataOrderLRU).
            data = OrderedDict()
            first = _DataOrderLRU(default_capacity, data)
        else:
            data = {}
        self._data = data
        #: Called with the data's new ``get`` when the data moves to another dict (_split_order).
        self._followers: list[Callable[[Callable[[str], Entry | None]], None]] = []
        self._default = Partition(DEFAULT_PARTITION, default_cap, default_capacity, first)
        self._partitions: dict[str, Partition] = {DEFAULT_PARTITION: self._default}
        self._clock = clock
        self._cleanup_interval = float(cleanup_interval)
        self._next_cleanup = now + self._cleanup_interval
        self._lock = threading.Lock()
        self._reads: list[str] = []  # hits not told to the policies yet (list.append is atomic)
        self._heap: list[tuple[float, str]] = []  # pairs that fit no queue
        self._queues: dict[float, _ExpiryQueue] = {}  # by TTL: its pairs, in order
        self._pairs = 0  # in the heap and the queues
        self._sizes: dict[int, int] = {}  # one int object per size in use (see _put)
        self._next_due = _INF  # the earliest pair's time
        self._timed = 0  # entries with an expiry (each has a heap pair at or before it)
        self._bytes = 0
        self._evictions = 0
        self._expirations = 0
        self._rejected = 0
        # Looked up once: a miss then pays one call, not attribute lookups plus a call.
        self._on_miss = self._default.on_miss

    # ------------------------------------------------------------------ reads

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when absent or expired.

        A hit counts as an access for the policy (told before the next
        decision, see :meth:`get_entry`); an expired entry found here is
        removed on the spot. The returned object is shared, not copied.
        """
        entry = self._data.get(key)
        if entry is not None:
            expires_at = entry[2]
            if expires_at is None or expires_at > self._clock():
                reads = self._reads
                reads.append(key)
                if len(reads) >= _READ_BUFFER:
                    self._replay_now()
                return entry[0]
        entry = self._locked_get_entry(key)
        return default if entry is None else entry[0]

    def get_entry(self, key: str) -> Entry | None:
        """The whole entry for ``key`` as held (a plain tuple in :class:`StoredEntry`'s field order), or ``None``.

        Counts as a read exactly like :meth:`get` does. A live entry is found
        without the lock (one dict lookup is atomic, and entries are
        immutable), and the hit goes to a read buffer rather than straight to
        the policy: the lock and the policy call would double the cost of a
        hit. The buffer is replayed to the policies, in order, under the lock
        before any other operation of the store touches a policy (so every
        eviction sees every hit before it), and by the reader that fills it.
        The two methods are written out rather than one calling the other:
        the extra call would add about a sixth to a hit.
        """
        entry = self._data.get(key)
        if entry is not None:
            expires_at = entry[2]
            if expires_at is None or expires_at > self._clock():
                reads = self._reads
                reads.append(key)
                if len(reads) >= _READ_BUFFER:
                    self._replay_now()
                return entry
        return self._locked_get_entry(key)

    def hit_path(self) -> HitPath:
        """The pieces of a lock-free hit, for a caller that inlines :meth:`get_entry`'s fast path.

        The facade's L1 lookup is judged in nanoseconds, and one more Python
        call is a tenth of it. A caller using these must do exactly what
        :meth:`get_entry` does: treat an entry found by ``lookup`` as a hit
        only while ``expires_at`` is None or after ``clock()``; then append
        the key to ``reads`` and call ``replay`` once ``reads`` holds
        ``batch`` keys; and hand everything else (absent, expired) to
        :meth:`get_entry`, which expires, counts the miss and tells the policy.
        """
        return HitPath(self._data.get, self._clock, self._reads, self._replay_now, _READ_BUFFER)

    def follow_lookup(self, follower: Callable[[Callable[[str], Entry | None]], None]) -> None:
        """Have ``follower`` called with the new ``lookup`` of :meth:`hit_path` whenever it changes.

        A store of the LRU policy keeps its data in an ordered dict while it
        has one partition, and moves it to a plain one when a second partition
        opens or that one is resized (see :class:`_DataOrderLRU`). A caller
        holding ``lookup`` must take the new one: ``follower`` is called under
        the store's lock, before any write to the new dict. A read that took
        the old ``lookup`` just before finds nothing there (the old dict is
        emptied) and takes the store's locked path.
        """
        with self._lock:
            self._followers.append(follower)

    def _replay_now(self) -> None:
        with self._lock:
            self._replay()

    def _locked_get_entry(self, key: str) -> Entry | None:
        """A read the lock-free path could not serve: absent, expired, or written meanwhile."""
        with self._lock:
            self._replay()
            entry = self._data.get(key)
            if entry is not None:
                expires_at = entry[2]
                if expires_at is None or expires_at > self._clock():
                    entry[4].on_access(key)
                    return entry
                self._expire(key, entry)
            self._on_miss(key)
            return None

    def peek(self, key: str) -> StoredEntry | None:
        """The live entry for ``key`` without counting a read (no policy update, no removal).

        For maintenance scans (pattern invalidation) that must look at an
        entry's metadata without disturbing the eviction order.
        """
        with self._lock:
            entry = self._data.get(key)
            if entry is None or (entry[2] is not None and entry[2] <= self._clock()):
                return None
        return _new_entry(StoredEntry, entry)

    def remaining_ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or ``None`` if it never expires.

        Raises ``KeyError`` when ``key`` is absent or already expired, so that
        "no expiry" and "no entry" cannot be confused (a caller copying the
        entry elsewhere would otherwise make it immortal). Does not count as
        an access.
        """
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                raise KeyError(key)
            expires_at = entry[2]
            if expires_at is None:
                return None
            left = expires_at - self._clock()
            if left <= 0:
                raise KeyError(key)
            return left

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a non-expired entry; does not count as an access."""
        with self._lock:
            entry = self._data.get(key)  # type: ignore[call-overload]  # any object may be asked for; keys are str
            if entry is None:
                return False
            expires_at = entry[2]
            return expires_at is None or expires_at > self._clock()

    def __len__(self) -> int:
        """Entries held, including expired ones not reclaimed yet (see :meth:`cleanup`)."""
        return len(self._data)

    def keys(self) -> list[str]:
        """A snapshot of the keys holding non-expired entries (a full scan)."""
        with self._lock:
            now = self._clock()
            return [k for k, e in self._data.items() if e[2] is None or e[2] > now]

    @property
    def total_bytes(self) -> int:
        """Sum of the declared sizes of the entries held."""
        return self._bytes

    @property
    def max_entries(self) -> int:
        """The entry-count bound."""
        return self._max_entries

    @property
    def max_bytes(self) -> int:
        """The byte bound."""
        return self._max_bytes

    @property
    def policy_name(self) -> str:
        """Registry name of the eviction policy (class name if unregistered)."""
        policy = self._default.policy
        return policy.name or type(policy).__name__

    def partition_cap(self, name: str) -> int | None:
        """The entry cap of partition ``name``, or ``None`` when it has none of its own."""
        with self._lock:
            return self._caps.get(name)

    def stats(self) -> MemoryStats:
        """Sizes, bounds, lifetime counters and entries per partition, read atomically."""
        with self._lock:
            partitions = dict.fromkeys(self._caps, 0)
            partitions.update((name, part.entries) for name, part in self._partitions.items())
            return MemoryStats(
                entries=len(self._data),
                bytes=self._bytes,
                max_entries=self._max_entries,
                max_bytes=self._max_bytes,
                evictions=self._evictions,
                expirations=self._expirations,
                rejected=self._rejected,
                partitions=partitions,
            )

    # ----------------------------------------------------------------- writes

    def set(
        self,
        key: str,
        value: Any,
        size: int,
        ttl: float | None,
        meta: Any = None,
        partition: str | None = None,
    ) -> bool:
        """Store ``value`` under ``key``, weighing ``size`` bytes, for ``ttl`` seconds.

        ``size`` is the value's encoded length (what the byte bound counts);
        ``ttl`` is ``None`` for no expiry and must otherwise be positive;
        ``meta`` is kept alongside, untouched. ``partition`` names the
        partition the entry counts against (``None``: the default one); a
        partition not seen before is opened on the spot, with the cap set for
        it if any. An overwrite may move a key to another partition. Entries
        are evicted through the policies until the partition's cap and both
        global bounds hold, expired ones first.

        Returns ``False`` when the value was not kept: it alone exceeds
        ``max_bytes`` (never worth evicting everything else for) or the policy
        refused it as the victim. Either way a previous value under ``key`` is
        gone too, since serving it after a newer write would be stale.
        """
        # The common case in one expression (exact types, a positive finite float TTL); anything
        # else gets the full check, which names what is wrong.
        if not (
            type(key) is str
            and type(size) is int
            and size >= 0
            and (ttl is None or (type(ttl) is float and 0.0 < ttl < _INF))
            and (partition is None or (type(partition) is str and partition))
        ):
            _check_set_arguments(key, size, ttl, partition)
        return self._put(key, value, size, ttl, meta, partition)

    def set_path(self) -> Callable[[str, Any, int, float | None, Any, str | None], bool]:
        """:meth:`set` without its argument checks, for a caller that already passes exact types.

        The memory-only ``set`` of the facade is judged in nanoseconds against
        ``cachetools``; it builds the key, the size and the TTL itself, so the
        checks of :meth:`set` would only repeat its own. The caller must pass
        ``set``'s arguments positionally, as exact types: a ``str`` key, an
        ``int`` size >= 0, ``None`` or a positive finite ``float`` TTL, and
        ``None`` or a non-empty ``str`` partition. Anything else breaks the
        store's accounting. A subclass that overrides :meth:`set` gets its own ``set``.
        """
        return self._put if type(self).set is MemoryStore.set else self.set

    def _put(
        self, key: str, value: Any, size: int, ttl: float | None, meta: Any, partition: str | None
    ) -> bool:
        """:meth:`set` once its arguments are known to be right."""
        lock = self._lock
        lock.acquire()
        try:
            if self._reads:
                self._replay()
            if partition is None:
                part = self._default
            else:
                part = self._partitions.get(partition) or self._open(partition)
            data = self._data
            old = data.get(key)
            if size > self._plain_up_to:  # above what a small, always-kept size can be
                if size > self._max_bytes:
                    self._rejected += 1
                    if old is not None:
                        del data[key]
                        self._forget(key, old)
                    return False
                if size > _SMALL_INT:
                    # Values of one kind often weigh the same (embeddings, fixed-size chunks): their
                    # entries share one int object rather than 32 bytes each.
                    sizes = self._sizes
                    shared = sizes.get(size)
                    if shared is None:
                        if len(sizes) >= _SHARED_SIZES:
                            sizes.clear()
                        sizes[size] = size
                    else:
                        size = shared
            now = self._clock()
            expires_at = None if ttl is None else now + ttl
            if old is None:
                queue = None
                if expires_at is not None:
                    # _push's common case inlined: the TTL's queue exists (a queue is never left
                    # empty) and this pair is not earlier than its last, so it is not the earliest.
                    queue = self._queues.get(ttl)  # type: ignore[arg-type]  # a TTL gives an expiry
                    if queue is not None:
                        last = queue.last
                        if last > expires_at:
                            queue = None
                        elif expires_at - last <= ttl * _SHARED_EXPIRY:  # type: ignore[operator]  # as above
                            expires_at = last  # the float of the last entry: see _SHARED_EXPIRY
                entry = (value, size, expires_at, meta, part)
                data[key] = entry
                self._bytes += size
                part.entries += 1
                part.bytes += size
                part.on_insert(key)
                if expires_at is not None:
                    self._timed += 1
                    if queue is not None:
                        if expires_at is not last:  # _ExpiryQueue.append inlined (last: queue.last, read above)
                            queue.runs.append((queue.popped + len(queue.keys), expires_at))
                            queue.last = expires_at
                        queue.keys.append(key)
                        self._pairs += 1
                        if self._pairs > 2 * self._timed + _HEAP_SLACK:
                            self._compact_pairs()
                    else:
                        self._push(expires_at, key, ttl)  # type: ignore[arg-type]  # as above
                if (
                    part.entries > part.capacity
                    or len(data) > self._max_entries
                    or self._bytes > self._max_bytes
                ):
                    self._shrink(key, part, now)
                elif now < self._next_cleanup:
                    return True  # nothing evicted or reclaimed: the entry is in
            else:
                entry = (value, size, expires_at, meta, part)
                data[key] = entry
                # An overwrite in the same partition that does not grow cannot break a bound
                # (they held before it): the common case skips the bound checks below.
                delta = size - old[1]
                was = old[4]
                if was is part:
                    if delta:
                        self._bytes += delta
                        part.bytes += delta
                    part.on_access(key)
                    grew = delta > 0
                else:
                    self._bytes += delta
                    was.entries -= 1
                    was.bytes -= old[1]
                    was.on_remove(key)
                    part.entries += 1
                    part.bytes += size
                    part.on_insert(key)
                    grew = True
                before = old[2]
                if before is None:
                    if expires_at is not None:
                        self._timed += 1
                        self._push(expires_at, key, ttl)  # type: ignore[arg-type]  # as above
                elif expires_at is None:
                    self._timed -= 1
                elif expires_at < before:
                    # An entry that had an expiry has a pair at or before it, which still
                    # does unless the new expiry comes sooner (see the module docstring).
                    self._push(expires_at, key, ttl)  # type: ignore[arg-type]  # as above
                if grew and (
                    part.entries > part.capacity
                    or len(data) > self._max_entries
                    or self._bytes > self._max_bytes
                ):
                    self._shrink(key, part, now)
                elif now < self._next_cleanup:
                    return True
            if now >= self._next_cleanup:
                self._drain(now, _DRAIN_BATCH)
            return data.get(key) is entry
        finally:
            lock.release()

    def set_partition_cap(self, name: str, cap: int | None) -> None:
        """Limit partition ``name`` to ``cap`` entries (``None``: only the global bounds).

        Caps change at runtime (a cache type registered, a configuration
        reloaded), so this may be called at any time, before or after the
        partition holds anything. When the partition's capacity changes, its
        policy is rebuilt for the new capacity (policies size their internals
        by it): keys move over in the old policy's eviction order, and the
        ones beyond a smaller cap are evicted, that order's first ones first.
        """
        _require_partition_name(name)
        if cap is not None:
            _require_positive_int(cap, f"the cap of partition {name!r}")
        with self._lock:
            self._replay()
            part = self._partitions.get(name)
            if part is None:
                if cap is None:
                    self._caps.pop(name, None)
                else:
                    if name not in self._caps:
                        self._check_room()
                    self._caps[name] = cap
                return  # opened with this cap by its first write
            capacity = _capacity(cap, self._max_entries)
            if capacity != part.capacity:
                self._resize(part, capacity)
            part.cap = cap
            if cap is None:
                self._caps.pop(name, None)
            else:
                self._caps[name] = cap

    def delete(self, key: str) -> bool:
        """Drop ``key``; ``True`` if a non-expired entry was removed."""
        with self._lock:
            self._replay()
            entry = self._data.pop(key, None)
            if entry is None:
                return False
            self._forget(key, entry)
            expires_at = entry[2]
            if expires_at is not None and expires_at <= self._clock():
                self._expirations += 1
                return False
            return True

    def delete_where(
        self, predicate: Callable[..., bool], *, with_meta: bool = False
    ) -> int:
        """Drop every key for which ``predicate`` is true; return how many live ones went.

        ``predicate(key)`` is called per key, or ``predicate(key, meta)`` with
        ``with_meta=True`` (for invalidation that must look at what the facade
        stored beside the value, such as the caller's key behind a hashed one).

        This is the full scan behind pattern and tag invalidation and
        namespace clears. The snapshot is taken under the lock but
        ``predicate`` runs outside it, and deletions happen in batches, so a
        slow predicate or a huge match does not stall other threads (and the
        predicate may itself use the store). The price: a matching key first
        written while this runs may survive, which is indistinguishable from
        it being written just afterwards.
        """
        if with_meta:
            with self._lock:
                pairs = [(k, e[3]) for k, e in self._data.items()]
            matched = [key for key, meta in pairs if predicate(key, meta)]
        else:
            with self._lock:
                snapshot = list(self._data)
            matched = [key for key in snapshot if predicate(key)]
        removed = 0
        for start in range(0, len(matched), _DELETE_BATCH):
            with self._lock:
                self._replay()
                now = self._clock()
                data = self._data
                for key in matched[start : start + _DELETE_BATCH]:
                    entry = data.pop(key, None)
                    if entry is None:
                        continue
                    self._forget(key, entry)
                    if entry[2] is not None and entry[2] <= now:
                        self._expirations += 1
                    else:
                        removed += 1
        if matched:
            with self._lock:
                if self._pairs > 2 * self._timed + _HEAP_SLACK:
                    self._compact_pairs()
        return removed

    def clear(self) -> None:
        """Drop everything; lifetime counters are kept."""
        with self._lock:
            self._data.clear()
            self._reads.clear()
            for part in self._partitions.values():
                part.policy.clear()
                part.entries = part.bytes = 0
            self._heap.clear()
            self._queues.clear()
            self._pairs = 0
            self._next_due = _INF
            self._timed = 0
            self._bytes = 0

    def cleanup(self) -> int:
        """Reclaim every entry expired by now; return how many went.

        Works in batches, releasing the lock between them, so a background
        thread can call it without blocking readers for the whole sweep. Cost
        is proportional to the expired entries, not to the store.
        """
        total = 0
        while True:
            with self._lock:
                self._replay()
                removed, done = self._drain(self._clock(), _DRAIN_BATCH)
            total += removed
            if done:
                return total

    def check_invariants(self) -> None:
        """Raise ``RuntimeError`` listing every broken internal invariant.

        A diagnostic (a full scan) for tests and debugging: bounds and caps
        respected, byte totals and policy sizes in step with the data (for
        the store and for each partition), and the expiry heap holding
        a pair at or before every timed entry's expiry.
        """
        with self._lock:
            problems = self._invariant_problems()
        if problems:
            raise RuntimeError("MemoryStore invariants broken: " + "; ".join(problems))

    # ---------------------------------------------------------------- helpers
    # Everything below runs with self._lock held.

    def _push(self, expires_at: float, key: str, ttl: float) -> None:
        """Give the timed entry ``key`` a pair at ``expires_at`` (written for ``ttl``); compact stale pairs."""
        queues = self._queues
        queue = queues.get(ttl)
        if queue is None and len(queues) < _MAX_QUEUES:
            queue = queues[ttl] = _ExpiryQueue()
        if queue is not None and queue.last <= expires_at:
            queue.append(expires_at, key)
        else:
            heappush(self._heap, (expires_at, key))
        self._pairs += 1
        if expires_at < self._next_due:
            self._next_due = expires_at
        if self._pairs > 2 * self._timed + _HEAP_SLACK:
            self._compact_pairs()

    def _replay(self) -> None:
        """Tell the policies about the hits buffered since the last replay, in order.

        A key dropped meanwhile is skipped (its policy forgot it); one written
        again counts for the partition that now holds it.
        """
        reads = self._reads
        if not reads:
            return
        # copy() and the slice deletion are single C calls and appends only extend the end,
        # so exactly the copied hits are removed; racing appends wait for the next replay.
        batch = reads.copy()
        del reads[: len(batch)]
        if self._default.policy.last_access_only:  # every partition runs the same policy class
            # Each key once, at its last hit: what recency alone remembers. Hot keys repeat a lot.
            batch = list(dict.fromkeys(reversed(batch)))
            batch.reverse()
        data = self._data
        for key in batch:
            entry = data.get(key)
            if entry is not None:
                entry[4].on_access(key)

    def _forget(self, key: str, entry: Entry) -> None:
        """Account for ``entry`` having been popped from the data by the store itself."""
        self._drop(entry)
        entry[4].on_remove(key)

    def _drop(self, entry: Entry) -> None:
        """Take a popped ``entry`` out of the totals (its policy already forgot it, or will)."""
        size = entry[1]
        part = entry[4]
        self._bytes -= size
        part.entries -= 1
        part.bytes -= size
        if entry[2] is not None:
            self._timed -= 1

    def _expire(self, key: str, entry: Entry) -> None:
        """Drop ``key`` whose ``entry`` was found expired."""
        del self._data[key]
        self._forget(key, entry)
        self._expirations += 1

    def _drain(self, now: float, budget: int) -> tuple[int, bool]:
        """Pop up to ``budget`` pairs due by ``now``; return (entries removed, nothing left due)."""
        removed = 0
        queues = self._queues
        for ttl, queue in list(queues.items()):
            while budget and queue and queue.first <= now:
                budget -= 1
                removed += self._settle(queue.popleft(), now)
            if not queue:
                del queues[ttl]
        heap = self._heap
        while budget and heap and heap[0][0] <= now:
            budget -= 1
            removed += self._settle(heappop(heap)[1], now)
        self._next_due = self._earliest()
        done = self._next_due > now
        if done:
            self._next_cleanup = now + self._cleanup_interval
        return removed, done

    def _settle(self, key: str, now: float) -> int:
        """The pair of ``key`` just popped at or before ``now``: expire its entry (1), or drop or move the pair (0)."""
        self._pairs -= 1
        entry = self._data.get(key)
        if entry is None or entry[2] is None:
            return 0  # stale: the key went, or no longer expires
        expires_at = entry[2]
        if expires_at <= now:
            self._expire(key, entry)
            return 1
        heappush(self._heap, (expires_at, key))  # rewritten to expire later: its pair moves there
        self._pairs += 1
        return 0

    def _earliest(self) -> float:
        """The time of the earliest pair (infinity when there is none)."""
        heap = self._heap
        earliest = heap[0][0] if heap else _INF
        for queue in self._queues.values():
            if queue.first < earliest:  # (a queue is never left empty)
                earliest = queue.first
        return earliest

    def _shrink(self, key: str, part: Partition, now: float) -> None:
        """Evict until ``part``'s cap and both global bounds hold; ``key`` was just written to ``part``."""
        if self._next_due <= now:
            # Entries that must go anyway are cheaper to lose than live ones.
            self._drain(now, _DRAIN_BATCH)
        data = self._data
        partitions = self._partitions
        # One loop with the eviction inlined: this runs once per write in a full store.
        while True:
            if part.entries > part.capacity:
                target = part
            elif len(data) > self._max_entries or self._bytes > self._max_bytes:
                if len(partitions) == 1:
                    target = part
                else:
                    fullest_part = fullest(partitions.values(), by_entries=len(data) > self._max_entries)
                    if fullest_part is None:
                        raise RuntimeError(
                            f"every partition is empty while the store holds {len(data)} entries; "
                            "the partitions are out of step with the store"
                        )
                    target = fullest_part
            else:
                return
            try:
                victim = target.policy.victim()
            except KeyError:
                raise RuntimeError(
                    f"eviction policy {self.policy_name} of partition {target.name!r} tracks no key "
                    f"while the partition holds {target.entries}; the policy is out of step with the store"
                ) from None
            entry = data.get(victim)  # type: ignore[call-overload]  # policies track Hashable keys; this store gives them str
            if entry is None or entry[4] is not target:
                raise RuntimeError(
                    f"eviction policy {self.policy_name} of partition {target.name!r} chose {victim!r}, "
                    "which the partition does not hold; the policy is out of step with the store"
                )
            del data[victim]  # type: ignore[arg-type]  # as above: the victim is one of this store's str keys
            size = entry[1]
            self._bytes -= size
            target.entries -= 1
            target.bytes -= size
            if entry[2] is not None:
                self._timed -= 1
            if victim == key:
                self._rejected += 1  # admission refused the newcomer
            else:
                self._evictions += 1

    def _split_order(self) -> None:
        """Move the LRU order out of the data into an :class:`LRUPolicy` of its own, and the data to a plain dict.

        The order and the entries stay as they are; callers of :meth:`hit_path`
        get the new ``lookup`` (see :meth:`follow_lookup`). The old ordered
        dict is emptied: a read that took its ``get`` just before finds
        nothing and takes the locked path, which reads the new dict (left
        full, it would still hand out an entry deleted after the move).
        """
        default = self._default
        if type(default.policy) is not _DataOrderLRU:
            return
        ordered = self._data
        policy = LRUPolicy(default.capacity)
        insert = policy.on_insert
        for key in ordered:  # least recent first
            insert(key)
        plain = dict(ordered)
        self._data = plain
        default.adopt(policy)
        self._on_miss = default.on_miss
        for follower in self._followers:
            follower(plain.get)
        ordered.clear()

    def _resize(self, part: Partition, capacity: int) -> None:
        """Give ``part`` a policy built for ``capacity``, evicting what no longer fits."""
        self._split_order()  # a rebuild drains the policy through victim()
        now = self._clock()
        if capacity < part.entries and self._next_due <= now:
            # Entries that must go anyway are cheaper to lose than live ones.
            self._drain(now, _DRAIN_BATCH)
        data = self._data
        for victim in part.rebuild(capacity, self._new_policy):
            entry = data.get(victim)  # type: ignore[call-overload]  # policies track Hashable keys; this store gives them str
            if entry is None or entry[4] is not part:
                raise RuntimeError(
                    f"eviction policy {self.policy_name} of partition {part.name!r} tracked {victim!r}, "
                    "which the partition does not hold; the policy is out of step with the store"
                )
            del data[victim]  # type: ignore[arg-type]  # as above: the victim is one of this store's str keys
            self._drop(entry)
            self._evictions += 1
        if part is self._default:
            self._on_miss = part.on_miss

    def _open(self, name: str) -> Partition:
        """Open partition ``name`` (its first write), with its cap if one was set."""
        if name not in self._caps:
            self._check_room()
        self._split_order()  # the data's order can only be one partition's
        cap = self._caps.get(name)
        capacity = _capacity(cap, self._max_entries)
        part = Partition(name, cap, capacity, self._new_policy(capacity))
        self._partitions[name] = part
        return part

    def _check_room(self) -> None:
        """ValueError when one more partition would exceed :data:`MAX_PARTITIONS`."""
        known = len(self._partitions) + sum(1 for name in self._caps if name not in self._partitions)
        if known >= MAX_PARTITIONS:
            raise ValueError(
                f"a store holds at most {MAX_PARTITIONS} partitions (one per cache type); "
                "partition names must not be derived from keys or other unbounded data"
            )

    def _compact_pairs(self) -> None:
        """Keep one pair per timed entry, at its expiry; drop the rest.

        Callers compact only once there are more than twice as many pairs as
        timed entries (plus slack), so the O(pairs) rebuild is paid for by the
        pushes and removals that made pairs stale: amortised O(1) each. Every
        timed entry has a pair (the invariant), so walking the pairs finds them
        all. A queue keeps the pairs already at their entry's expiry, in order;
        the others go to the heap at that expiry.
        """
        data = self._data
        live: list[tuple[float, str]] = []
        seen: set[str] = set()
        queues = self._queues
        kept = 0
        for ttl, queue in list(queues.items()):
            kept_queue = _ExpiryQueue()
            for at, key in queue.pairs():
                entry = data.get(key)
                if entry is not None and entry[2] is not None and key not in seen:
                    seen.add(key)
                    if at == entry[2]:
                        kept_queue.append(at, key)
                    else:
                        live.append((entry[2], key))
            if kept_queue:
                queues[ttl] = kept_queue
                kept += len(kept_queue)
            else:
                del queues[ttl]
        for _, key in self._heap:
            entry = data.get(key)
            if entry is not None and entry[2] is not None and key not in seen:
                seen.add(key)
                live.append((entry[2], key))
        heapify(live)
        self._heap = live
        self._pairs = kept + len(live)
        self._next_due = self._earliest()

    def _invariant_problems(self) -> list[str]:
        """Every broken invariant, described; empty when all hold."""
        data = self._data
        problems = []
        if len(data) > self._max_entries:
            problems.append(f"{len(data)} entries exceed max_entries={self._max_entries}")
        if self._bytes > self._max_bytes:
            problems.append(f"{self._bytes} bytes exceed max_bytes={self._max_bytes}")
        actual_bytes = sum(e[1] for e in data.values())
        if actual_bytes != self._bytes:
            problems.append(f"byte total {self._bytes} != sum of sizes {actual_bytes}")
        counted: dict[Partition, list[int]] = {part: [0, 0] for part in self._partitions.values()}
        for key, entry in data.items():
            tally = counted.get(entry[4])
            if tally is None:
                problems.append(f"{key!r} belongs to no partition of this store")
                continue
            tally[0] += 1
            tally[1] += entry[1]
        for part, (entries, size) in counted.items():
            name = part.name
            if part.entries != entries or part.bytes != size:
                problems.append(
                    f"partition {name!r} counts {part.entries} entries / {part.bytes} bytes, "
                    f"holds {entries} / {size}"
                )
            if entries > part.capacity:
                problems.append(f"partition {name!r} holds {entries} entries, capacity {part.capacity}")
            configured = self._caps.get(name)
            if part.cap != configured or part.capacity != _capacity(configured, self._max_entries):
                problems.append(
                    f"partition {name!r} has cap {part.cap} and capacity {part.capacity}, "
                    f"configured cap {configured}"
                )
            if len(part.policy) != entries:
                problems.append(f"partition {name!r}: policy tracks {len(part.policy)} keys, holds {entries}")
        timed = sum(1 for e in data.values() if e[2] is not None)
        if timed != self._timed:
            problems.append(f"timed count {self._timed} != entries with expiry {timed}")
        pairs = list(self._heap)
        for ttl, queue in self._queues.items():
            starts = [start for start, _ in queue.runs]
            times = [at for _, at in queue.runs]
            if not queue or not starts or starts[0] > queue.popped or starts[-1] >= queue.popped + len(queue):
                problems.append(
                    f"the expiry queue of TTL {ttl} holds {len(queue)} keys in runs from {starts[:1]} to "
                    f"{starts[-1:]}, {queue.popped} popped"
                )
            if any(a >= b for a, b in zip(starts, starts[1:])) or any(a > b for a, b in zip(times, times[1:])):
                problems.append(f"the expiry queue of TTL {ttl} is out of order")
            if times and queue.last is not times[-1]:
                problems.append(f"the expiry queue of TTL {ttl} has last {queue.last}, its last run {times[-1]}")
            pairs.extend(queue.pairs())
        if len(pairs) != self._pairs:
            problems.append(f"pair count {self._pairs} != pairs held {len(pairs)}")
        if self._next_due != min((at for at, _ in pairs), default=_INF):
            problems.append(f"next due time {self._next_due} is not the earliest pair's")
        earliest: dict[str, float] = {}
        for at, key in pairs:
            if at < earliest.get(key, _INF):
                earliest[key] = at
        unanchored = [
            key for key, e in data.items() if e[2] is not None and not earliest.get(key, _INF) <= e[2]
        ]
        if unanchored:
            problems.append(f"{len(unanchored)} timed entries without a heap pair at or before their expiry")
        return problems

    def __repr__(self) -> str:
        return (
            f"MemoryStore(entries={len(self._data)}/{self._max_entries}, "
            f"bytes={self._bytes}/{self._max_bytes}, policy={self.policy_name}, "
            f"partitions={len(self._partitions)})"
        )


def _check_set_arguments(key: object, size: object, ttl: object, partition: object) -> None:
    """TypeError/ValueError naming the first bad argument of :meth:`MemoryStore.set`."""
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, got {type(key).__name__}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int number of bytes, got {type(size).__name__}")
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise TypeError(f"ttl must be a number of seconds or None, got {type(ttl).__name__}")
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"ttl must be a positive finite number of seconds or None, got {ttl!r}")
    if partition is not None:
        _require_partition_name(partition)


def _require_positive_int(value: object, name: str) -> None:
    """ValueError/TypeError unless ``value`` is a positive int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _make_policy(policy: str | EvictionPolicy, capacity: int) -> EvictionPolicy:
    """The policy instance the store will drive."""
    if isinstance(policy, str):
        return create_policy(policy, capacity)
    if isinstance(policy, EvictionPolicy):
        if len(policy):
            raise ValueError(
                f"an eviction policy passed in must be empty; this one tracks {len(policy)} keys "
                "the store does not hold"
            )
        return policy
    raise TypeError(f"policy must be a policy name or an EvictionPolicy, got {type(policy).__name__}")


def _require_partition_name(name: object) -> None:
    """TypeError/ValueError unless ``name`` is a non-empty str."""
    if not isinstance(name, str):
        raise TypeError(f"partition names must be str, got {type(name).__name__}")
    if not name:
        raise ValueError("partition names must not be empty")


def _capacity(cap: int | None, max_entries: int) -> int:
    """Most entries a partition with ``cap`` can hold in a store of ``max_entries``."""
    return max_entries if cap is None else min(cap, max_entries)


def _policy_factory(
    policy: str | EvictionPolicy, first: EvictionPolicy
) -> Callable[[int], EvictionPolicy]:
    """How the store builds a policy for a partition of a given capacity."""
    if isinstance(policy, str):
        name = first.name or policy

        def by_name(capacity: int) -> EvictionPolicy:
            return create_policy(name, capacity)

        return by_name
    cls = type(first)

    def like_first(capacity: int) -> EvictionPolicy:
        try:
            return cls(capacity)
        except TypeError as exc:
            raise TypeError(
                f"partitions need {cls.__name__}(capacity) to build their own policy instances; "
                f"pass a registry name instead, or a policy class taking only a capacity: {exc}"
            ) from exc

    return like_first
