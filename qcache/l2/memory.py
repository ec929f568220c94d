"""In-memory L2 backends: the L2 contract without a server, for tests and demos.

They keep bytes with a millisecond expiry in a dict and follow the Redis
tier's contract (namespace-confined patterns, TTLs as ``PX``, bytes only,
:class:`qcache.errors.BackendError` once closed), so cache logic can be
checked without Redis wherever a real server adds nothing. They are not
shared between processes and hold everything in memory: not an L2 for
production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from qcache.errors import BackendError
from qcache.l2.batching import SetManyItems, check_data, key_list, normalize_items, ttl_to_px
from qcache.l2.breaker import BreakerStats, CircuitBreaker
from qcache.l2.glob import compile_glob, escape_glob
from qcache.l2.patterns import check_namespace, check_pattern
from qcache.l2.responses import ServerInfo
from qcache.l2.tagging import GRACE_MS, Membership, tag_updates


class MemoryBackend:
    """A thread-safe, bytes-only L2 store in a dict (implements :class:`qcache.l2.protocol.L2Backend`).

    ``clock`` gives monotonic seconds, so expiry tests can move time by hand.
    """

    def __init__(self, *, namespace: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._namespace = check_namespace(namespace)
        self._escaped_namespace = escape_glob(namespace)
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}  # key -> (data, expiry in clock seconds)
        # Tag sets (see qcache.l2.tagging): key -> ({member: expiry epoch ms}, set expiry in clock seconds).
        self._tags: dict[str, tuple[dict[str, int], float]] = {}
        self._lock = threading.Lock()
        self._breaker = CircuitBreaker()  # never trips: nothing here fails for connectivity
        self._closed = False

    @property
    def namespace(self) -> str:
        """The prefix every key of this cache starts with; pattern operations stay inside it."""
        return self._namespace

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise BackendError(f"L2 {operation} refused: the L2 tier is closed")

    def _live(self, key: str, now: float) -> bytes | None:
        """The data under ``key`` unless absent or expired (an expired entry is dropped); lock held."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry[0]

    def _live_tag(self, key: str, now: float) -> dict[str, int] | None:
        """The members of the tag set ``key`` unless absent or expired; lock held."""
        entry = self._tags.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._tags[key]
            return None
        return entry[0]

    def _matching(self, pattern: str) -> list[str]:
        """Live keys (tag sets included) matching the glob ``pattern`` inside the namespace; lock held."""
        check_pattern(pattern, self._escaped_namespace)
        regex = compile_glob(pattern)
        now = self._clock()
        keys = [key for key in list(self._data) if self._live(key, now) is not None and regex.fullmatch(key)]
        keys += [key for key in list(self._tags) if self._live_tag(key, now) is not None and regex.fullmatch(key)]
        return keys

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` when absent."""
        self._check_open("GET")
        with self._lock:
            return self._live(key, self._clock())

    def set(self, key: str, data: bytes, ttl: float) -> None:
        """Store ``data`` for ``ttl`` seconds (whole milliseconds, rounded up, as the Redis tier)."""
        px = ttl_to_px(ttl)
        check_data(key, data)
        self._check_open("SET")
        with self._lock:
            self._data[key] = (data, self._clock() + px / 1000.0)

    def pttl(self, key: str) -> int | None:
        """Remaining lifetime in ms, or ``None`` if absent (every entry here has an expiry)."""
        self._check_open("PTTL")
        with self._lock:
            now = self._clock()
            if self._live(key, now) is None:
                return None
            return max(0, round((self._data[key][1] - now) * 1000.0))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for ``keys`` in the same order, ``None`` for each missing key."""
        keys = key_list(keys)
        self._check_open("MGET")
        with self._lock:
            now = self._clock()
            return [self._live(key, now) for key in keys]

    def set_many(self, items: SetManyItems, ttl: float | None = None) -> None:
        """Store many entries; everything is validated before anything is written."""
        entries = normalize_items(items, ttl)
        if not entries:
            return
        self._check_open("PIPELINE SET")
        with self._lock:
            now = self._clock()
            for key, data, px in entries:
                self._data[key] = (data, now + px / 1000.0)

    def delete(self, *keys: str) -> int:
        """Remove ``keys``; returns how many existed."""
        if not keys:
            return 0
        self._check_open("UNLINK")
        with self._lock:
            now = self._clock()
            return sum(self._remove(key, now) for key in keys)

    def _remove(self, key: str, now: float) -> bool:
        """Drop ``key`` (an entry or a tag set); whether it was there; lock held."""
        if self._live(key, now) is not None:
            del self._data[key]
            return True
        if self._live_tag(key, now) is not None:
            del self._tags[key]
            return True
        return False

    def delete_pattern(self, pattern: str) -> int:
        """Remove every key matching ``pattern`` (which must start with the escaped namespace)."""
        self._check_open("SCAN+UNLINK")
        with self._lock:
            doomed = self._matching(pattern)
            now = self._clock()
            for key in doomed:
                self._remove(key, now)
            return len(doomed)

    def scan_keys(self, pattern: str) -> list[str]:
        """Every live key matching ``pattern`` inside the namespace."""
        self._check_open("SCAN")
        with self._lock:
            return self._matching(pattern)

    def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """Store entries and add them to their tags' sets, as the Redis tier's pipeline does."""
        entries = normalize_items(items, None)
        updates = tag_updates(memberships)
        self._check_open("SET+TAGS")
        with self._lock:
            now = self._clock()
            for tag_key, members, expire_at_ms in updates:
                current = self._live_tag(tag_key, now)
                kept = {m: score for m, score in (current or {}).items() if score >= now_ms - GRACE_MS}
                kept.update(members)
                # The set's expiry, moved from epoch ms to this store's clock; extended, never shortened.
                expiry = now + (expire_at_ms - now_ms) / 1000.0
                old = self._tags.get(tag_key)
                self._tags[tag_key] = (kept, max(expiry, old[1]) if old is not None and current is not None else expiry)
            for key, data, px in entries:
                self._data[key] = (data, now + px / 1000.0)

    def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]:
        """The members of ``tag_keys`` whose entries may still be alive, distinct, in first-seen order."""
        self._check_open("TAG MEMBERS")
        with self._lock:
            now = self._clock()
            seen: dict[str, None] = {}
            for tag_key in tag_keys:
                for member, score in (self._live_tag(tag_key, now) or {}).items():
                    if score >= now_ms - GRACE_MS:
                        seen[member] = None
            return list(seen)

    def ping(self) -> float:
        """Always reachable: 0 seconds."""
        self._check_open("PING")
        return 0.0

    def server_info(self) -> ServerInfo:
        """What INFO would say of an in-process store: the bytes it holds, no limit, no clients."""
        self._check_open("INFO")
        with self._lock:
            used = sum(len(key) + len(data) for key, (data, _) in self._data.items())
        return ServerInfo(version="memory", used_memory=used, maxmemory=0, maxmemory_policy="noeviction",
                          mode="memory")

    def breaker_stats(self) -> BreakerStats:
        """The stats of a breaker that never opens."""
        return self._breaker.stats()

    def close(self) -> None:
        """Refuse every later operation. Idempotent."""
        self._closed = True

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncMemoryBackend:
    """:class:`MemoryBackend` behind coroutines (implements :class:`qcache.l2.protocol.AsyncL2Backend`).

    Every call completes without suspending; ``sync`` is the store itself,
    which a test may share with a sync cache to see both flavours meet.
    """

    def __init__(self, *, namespace: str, clock: Callable[[], float] = time.monotonic,
                 sync: MemoryBackend | None = None) -> None:
        self.sync = sync if sync is not None else MemoryBackend(namespace=namespace, clock=clock)

    @property
    def namespace(self) -> str:
        """See :attr:`MemoryBackend.namespace`."""
        return self.sync.namespace

    @property
    def closed(self) -> bool:
        """See :attr:`MemoryBackend.closed`."""
        return self.sync.closed

    async def get(self, key: str) -> bytes | None:
        """See :meth:`MemoryBackend.get`."""
        return self.sync.get(key)

    async def set(self, key: str, data: bytes, ttl: float) -> None:
        """See :meth:`MemoryBackend.set`."""
        self.sync.set(key, data, ttl)

    async def pttl(self, key: str) -> int | None:
        """See :meth:`MemoryBackend.pttl`."""
        return self.sync.pttl(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """See :meth:`MemoryBackend.get_many`."""
        return self.sync.get_many(keys)

    async def set_many(self, items: SetManyItems, ttl: float | None = None) -> None:
        """See :meth:`MemoryBackend.set_many`."""
        self.sync.set_many(items, ttl)

    async def delete(self, *keys: str) -> int:
        """See :meth:`MemoryBackend.delete`."""
        return self.sync.delete(*keys)

    async def delete_pattern(self, pattern: str) -> int:
        """See :meth:`MemoryBackend.delete_pattern`."""
        return self.sync.delete_pattern(pattern)

    async def scan_keys(self, pattern: str) -> list[str]:
        """See :meth:`MemoryBackend.scan_keys`."""
        return self.sync.scan_keys(pattern)

    async def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """See :meth:`MemoryBackend.set_tagged`."""
        self.sync.set_tagged(items, memberships, now_ms)

    async def tag_members(self, tag_keys: Sequence[str], now_ms: int) -> list[str]:
        """See :meth:`MemoryBackend.tag_members`."""
        return self.sync.tag_members(tag_keys, now_ms)

    async def ping(self) -> float:
        """See :meth:`MemoryBackend.ping`."""
        return self.sync.ping()

    async def server_info(self) -> ServerInfo:
        """See :meth:`MemoryBackend.server_info`."""
        return self.sync.server_info()

    def breaker_stats(self) -> BreakerStats:
        """See :meth:`MemoryBackend.breaker_stats`."""
        return self.sync.breaker_stats()

    async def close(self) -> None:
        """See :meth:`MemoryBackend.close`."""
        self.sync.close()

    async def __aenter__(self) -> AsyncMemoryBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

