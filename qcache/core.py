"""The cache logic shared by :class:`QueryCache` and :class:`AsyncQueryCache`.

Every operation is written once, as a *plan*: a generator that does all the
pure work (keys, TTLs, codec, L1, metrics, write-back bookkeeping) and yields an
:class:`L2Call` whenever it needs Redis. The sync facade runs the plan by
calling the sync tier, the async facade by awaiting the async tier; an L2
failure is thrown back into the plan, which turns it into a miss (or re-raises
it in strict mode). So the two facades hold no copy of the cache's behaviour,
only the few lines that differ between threads and coroutines.

``get`` is the exception, for speed: an L1 hit is served by :meth:`CacheCore.l1_lookup`
(no generator, lock-free metrics), and an L2 read is two plain steps,
:meth:`CacheCore.get_begin` and :meth:`CacheCore.get_end`, around the facade's
one L2 call.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from qcache.codec import CacheTypeCodec, Codec, CodecIntegrityError, CodecStats, build_codec, codec_for_type
from qcache.config import CacheConfig, ConfigSnapshot
from qcache.errors import BackendError, CacheClosedError, CircuitOpenError, QCacheError, ServerRefusal
from qcache.glob import compile_glob, escape_glob
from qcache.keys import GLOBAL_NAMESPACE, HASHED_MARK, KeyBuilder, check_name
from qcache.l2.protocol import L2Op
from qcache.memory.store import MemoryStore
from qcache.metrics import CacheMetrics, NullMetrics
from qcache.record import pack_record, parse_record, unpack_record
from qcache.types import WriteStrategy
from qcache.writeback import PendingWrite, WriteBackQueue

logger = logging.getLogger("qcache")

T = TypeVar("T")

#: The type used when a call names none; its TTL is ``CACHE_DEFAULT_TTL``.
DEFAULT_TYPE = "default"
#: Pending write-back writes kept at most (per cache); see :class:`WriteBackQueue`.
DEFAULT_MAX_PENDING_WRITES = 100_000
#: Longest TTL a caller may ask for (10 years): far inside what Redis accepts as ``PX``.
MAX_TTL = 10 * 365 * 24 * 3600.0
_ERROR_LOG_INTERVAL = 5.0
# Write generations: one counter per slot of storage-key hashes (see CacheCore.fill_token).
_GEN_SLOTS = 4096
_GEN_MASK = _GEN_SLOTS - 1
_MAX_REMEMBERED_NAMESPACES = 4096
_perf_ns = time.perf_counter_ns
# The generated NamedTuple __new__ is a Python-level call; hot paths build the tuples directly.
_new_call = tuple.__new__


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class L2Call(NamedTuple):
    """A request from a plan to the L2 tier: an operation and its arguments."""

    op: L2Op
    args: tuple[Any, ...]


Plan = Generator[L2Call, Any, T]


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """What one cache type needs on the hot path: its name, default TTL and codec."""

    name: str
    ttl: float
    codec: CacheTypeCodec


class SetState(NamedTuple):
    """What :meth:`CacheCore.set_end` needs from :meth:`CacheCore.set_begin`."""

    skey: str
    hashed: bool
    key: str
    value: Any
    seconds: float
    record: bytes
    expires_at_ms: int
    started: int
    cache_type: str  # the type's name, which is also its L1 partition


class GetState(NamedTuple):
    """What :meth:`CacheCore.get_end` needs from :meth:`CacheCore.get_begin`."""

    skey: str
    hashed: bool
    key: str
    spec: TypeSpec
    started: int
    token: int  # the key's write generation when the read began (see CacheCore.fill_token)


def _meta_key(entry: Any) -> str | None:
    """The caller key the facade keeps in an L1 entry's meta slot (hashed keys only)."""
    return entry.meta if entry is not None else None


def _record_key(record: bytes) -> str | None:
    """The caller key embedded in an L2 record, or None (plain key, or not a record)."""
    try:
        return unpack_record(record).caller_key
    except CodecIntegrityError:
        return None


def _check_key(key: object) -> str:
    """``key`` as a plain str (a str subclass such as a StrEnum member gives its text); TypeError otherwise."""
    if type(key) is not str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        key = str.__str__(key)  # the text itself, whatever the subclass's __str__ says
    if not key.isascii():
        # Redis keys travel as UTF-8: refuse here, not later in a write-back batch it would sink.
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("cache keys must be encodable as UTF-8; this one holds a lone surrogate") from None
    return key


def _check_ttl(ttl: object) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    # The cap keeps PX in Redis's range: a refused write would otherwise sit in a write-back batch.
    if not (0 < ttl <= MAX_TTL):
        raise ValueError(f"ttl must be a number of seconds > 0 and <= {MAX_TTL:.0f} (10 years), got {ttl!r}")
    return float(ttl)


class CacheCore:
    """State and plans of one cache; shared by every project view of it.

    ``clock`` gives wall-clock seconds (entry expiry stored in Redis must mean
    the same thing in every process); the L1 store has its own monotonic clock.
    """

    def __init__(
        self,
        config: CacheConfig,
        *,
        codec: Codec | None = None,
        l1: MemoryStore | None = None,
        clock: Callable[[], float] = time.time,
        strict: bool = False,
        max_pending_writes: int = DEFAULT_MAX_PENDING_WRITES,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.strict = strict
        self.clock = clock
        self._rng = rng or random.Random()
        snap = config.snapshot()
        self.codec = codec if codec is not None else build_codec(snap, clock=clock)
        self.keys = KeyBuilder(snap.core.key_prefix, snap.core.max_key_length)
        self._max_key_length = self.keys.max_key_length
        self.metrics: CacheMetrics = CacheMetrics() if snap.monitoring.metrics_enabled else NullMetrics()
        if l1 is None and snap.core.level.uses_l1:
            l1 = MemoryStore(
                max_entries=snap.memory.max_size,
                max_bytes=snap.memory.max_memory_mb * 1024 * 1024,
                policy=snap.memory.eviction_policy,
                cleanup_interval=float(snap.memory.cleanup_interval),
            )
        self.l1 = l1
        self.pending = WriteBackQueue(max_pending_writes)
        #: Set by the owning facade's close(); every later operation raises CacheClosedError.
        self.closed = False
        # Write generations: an L2 read notes its key's slot before it starts and fills L1 only if
        # no write, delete or invalidation touched the slot meanwhile (else it would put back the
        # value that was just deleted or overwritten). _epoch covers operations on many keys.
        self._gens = [0] * _GEN_SLOTS
        self._epoch = 0
        self._applied = False
        self._last_error_log = -math.inf
        self._types: dict[str, TypeSpec] = {}
        # ("<prefix>:<namespace>:<type>:", spec) per namespace and cache type, for the hot paths.
        self._bases: dict[str, dict[str | None, tuple[str, TypeSpec]]] = {}
        # One set of codec counters for every type, kept across configuration changes.
        self.codec_stats = CodecStats()
        self._apply(snap)
        self._unsubscribe = config.on_change(lambda cfg, _changes: self._apply(cfg.snapshot()))

    # -- configuration -------------------------------------------------------------

    def _apply(self, snap: ConfigSnapshot) -> None:
        """Adopt a (new) configuration snapshot: switches, levels, TTLs and per-type codecs."""
        core = snap.core
        use_l1 = core.level.uses_l1 and self.l1 is not None
        if self._applied and use_l1 and core.enabled and not (self.use_l1 and self.enabled):
            # L1 saw none of the writes and deletes made while it was off (or the cache was
            # disabled): whatever it still holds may be stale or deleted.
            self._epoch += 1
            self.l1.clear()  # type: ignore[union-attr]
        self._applied = True
        self.enabled = core.enabled
        self.level = core.level
        self.use_l1 = use_l1
        self.use_l2 = core.level.uses_l2
        strategy = core.write_strategy
        if strategy is WriteStrategy.WRITE_BACK and not self.use_l1:
            strategy = WriteStrategy.WRITE_THROUGH  # nothing to write back from
        self.strategy = strategy
        #: Whether a ``set`` writes L2 during the call (else it only touches L1 and the queue).
        self.writes_l2_now = self.use_l2 and strategy is not WriteStrategy.WRITE_BACK
        self.isolation = snap.security.project_isolation
        self.ttl_jitter = snap.performance.ttl_jitter
        self.batch_size = snap.performance.batch_size
        self.latency_threshold_ms = float(snap.monitoring.latency_threshold_ms)
        self.hit_rate_threshold = float(snap.monitoring.hit_rate_threshold)
        types = {
            DEFAULT_TYPE: TypeSpec(
                DEFAULT_TYPE, float(core.default_ttl), codec_for_type(self.codec, snap, None, stats=self.codec_stats)
            )
        }
        for name, settings in snap.cache_types.items():
            codec = codec_for_type(self.codec, snap, name, stats=self.codec_stats)
            types[name] = TypeSpec(name, float(settings.ttl), codec)
        self._types = types
        self._bases = {}
        if self.l1 is not None:
            # Each type's entries form an L1 partition capped by {TYPE}_CACHE_MAX_SIZE (a store
            # passed in gets the caps too); the untyped "default" one is bounded only globally.
            for name, settings in snap.cache_types.items():
                self.l1.set_partition_cap(name, settings.max_size)

    def close(self) -> None:
        """Stop following the configuration and refuse every later operation."""
        self.closed = True
        self.enabled = False  # the facades' disabled branch is where a closed cache raises
        self._unsubscribe()

    def check_open(self) -> None:
        """Raise :class:`CacheClosedError` once the cache is closed."""
        if self.closed:
            raise CacheClosedError("the cache is closed")

    # -- write generations -------------------------------------------------------------

    def fill_token(self, skey: str) -> int:
        """The write generation of ``skey``: changes whenever a write or delete of the key may have landed."""
        return self._gens[hash(skey) & _GEN_MASK] + self._epoch  # both only grow: the sum changes too

    def bump(self, skey: str) -> None:
        """Mark ``skey`` written: L2 reads already in flight must not fill L1 with what they got."""
        self._gens[hash(skey) & _GEN_MASK] += 1

    def bump_all(self) -> None:
        """As :meth:`bump`, for every key (pattern invalidation, clear, level switches)."""
        self._epoch += 1

    def spec(self, cache_type: str | None) -> TypeSpec:
        """The settings of ``cache_type`` (None: the default type); ValueError if unknown."""
        if cache_type is None:
            return self._types[DEFAULT_TYPE]
        spec = self._types.get(cache_type)
        if spec is None:
            known = ", ".join(sorted(self._types))
            raise ValueError(f"unknown cache type {cache_type!r}; known: {known}")
        return spec

    def namespace_for(self, project: str) -> str:
        """The key namespace of a project view (the global one when isolation is off)."""
        check_name("project name", project)
        return project if self.isolation else GLOBAL_NAMESPACE

    # -- small pure helpers ----------------------------------------------------------

    def resolve_ttl(self, spec: TypeSpec, ttl: object) -> float:
        """The TTL to store: the caller's or the type's, shortened by the configured jitter."""
        seconds = spec.ttl if ttl is None else _check_ttl(ttl)
        if self.ttl_jitter:
            seconds *= 1.0 - self.ttl_jitter * self._rng.random()
        return seconds

    def storage_key(self, namespace: str, spec: TypeSpec, key: str) -> tuple[str, bool]:
        return self.keys.build(namespace, spec.name, _check_key(key))

    def encode(self, skey: str, hashed: bool, key: str, spec: TypeSpec, value: Any, ttl: float) -> tuple[bytes, int]:
        """The L2 record for ``value`` and its absolute expiry in epoch milliseconds."""
        payload = spec.codec.encode(value, skey)
        expires_at_ms = int((self.clock() + ttl) * 1000) + 1
        record = pack_record(payload, expires_at_ms, key if hashed else None, math.ceil(ttl * 1000))
        return record, expires_at_ms

    def decode(self, skey: str, hashed: bool, key: str, spec: TypeSpec, raw: bytes) -> tuple[Any, float]:
        """Value and remaining lifetime (s) of an L2 record; MISSING if unusable."""
        try:
            expires_at_ms, ttl_ms, caller_key, payload = parse_record(raw)
            if hashed and caller_key != key:
                return MISSING, 0.0  # another key with the same hash: never its value
            remaining = expires_at_ms / 1000.0 - self.clock()
            if remaining <= 0:
                return MISSING, 0.0
            if ttl_ms and remaining * 1000.0 > ttl_ms:
                # The writer's clock runs ahead of ours: never keep a copy longer than it was set for.
                remaining = ttl_ms / 1000.0
            return spec.codec.decode(payload, skey), remaining
        except CodecIntegrityError as exc:
            self.metrics.error(f"integrity_{exc.reason.value}")
            logger.warning("qcache: rejected a stored %r entry (%s)", spec.name, exc.reason.value)
            return MISSING, 0.0

    def l2_failed(self, operation: str, exc: BaseException) -> None:
        """Count and log an L2 failure; in strict mode re-raise it."""
        self.note_l2_failure(operation, exc)
        if self.strict:
            raise exc

    def note_l2_failure(self, operation: str, exc: BaseException) -> None:
        """Count an L2 failure and log it (at most one line every few seconds)."""
        kind = "l2_circuit_open" if isinstance(exc, CircuitOpenError) else "l2_error"
        self.metrics.error(kind)
        now = time.monotonic()
        if not isinstance(exc, CircuitOpenError) and now - self._last_error_log >= _ERROR_LOG_INTERVAL:
            self._last_error_log = now
            logger.warning("qcache: L2 %s failed, treated as a miss: %s", operation, exc)

    # -- plans -------------------------------------------------------------------------

    def l1_lookup(self, namespace: str, key: str, cache_type: str | None) -> Any:
        """The hot path of ``get``: the L1 value of a plain key, or MISSING.

        It does only what an L1 hit needs (no generator; the key was checked
        when it was set) and records the hit without taking the metrics lock.
        On MISSING the caller goes on with ``get_begin(..., l1_checked=True)``:
        a plain key's L1 miss is already counted here; hashed keys (long, or
        starting with ``#``) are left to ``get_begin``, which compares the
        caller key.
        """
        if not self.use_l1:
            return MISSING
        started = _perf_ns()
        try:
            base = self._bases[namespace][cache_type][0]
        except KeyError:
            base = self._type_base(namespace, cache_type)[0]
        if type(key) is not str:
            key = _check_key(key)  # a str subclass becomes its text; anything else raises TypeError
        skey = base + key
        entry = self.l1.get_entry(skey)  # type: ignore[union-attr]
        # No plain entry lives under a too-long key, and a hashed entry (meta holds its
        # caller key) found under base + key can only be another key's: both go to get_begin.
        if entry is None or entry[3] is not None:
            if len(skey) <= self._max_key_length and key[:1] != HASHED_MARK:
                self.metrics.tier_miss("l1")
            return MISSING
        self.metrics.l1_hit(_perf_ns() - started)
        return entry[0]

    def _type_base(self, namespace: str, cache_type: str | None) -> tuple[str, TypeSpec]:
        """``<prefix>:<namespace>:<type>:`` and the type's spec (remembered); ValueError for an unknown type."""
        spec = self.spec(cache_type)
        found = (self.keys.namespace_base(namespace) + spec.name + ":", spec)
        bases = self._bases
        if len(bases) >= _MAX_REMEMBERED_NAMESPACES:
            bases.clear()  # namespaces are per project; bound the memory if there are very many
        bases.setdefault(namespace, {})[cache_type] = found
        return found

    def locate(self, namespace: str, key: str, cache_type: str | None) -> tuple[TypeSpec, str, bool]:
        """The type's spec, the storage key of ``key`` and whether it is hashed (as ``storage_key``)."""
        try:
            base, spec = self._bases[namespace][cache_type]
        except KeyError:
            base, spec = self._type_base(namespace, cache_type)
        if type(key) is not str:
            key = _check_key(key)
        elif not key.isascii():
            _check_key(key)
        skey = base + key
        if len(skey) <= self._max_key_length and key[:1] != HASHED_MARK:
            return spec, skey, False
        return (spec, *self.keys.build(namespace, spec.name, key))

    # ``get`` is the one operation written as two plain steps instead of a plan: on an L2 hit,
    # driving a generator (creation, send, StopIteration) costs as much as all the rest of the
    # facade's own work, so both facades call get_begin, make their one L2 call, then get_end.

    def get_begin(
        self, namespace: str, key: str, cache_type: str | None, default: Any, l1_checked: bool = False
    ) -> tuple[Any, GetState | None]:
        """First step of a read: L1 (skipped for a plain key ``l1_lookup`` already tried).

        Returns ``(result, None)`` when the read is over (an L1 hit, or a miss
        without L2), or ``(None, state)`` when the caller must fetch
        ``state.skey`` from L2 and pass the bytes (None on a miss or an L2
        failure, after :meth:`l2_failed`) to :meth:`get_end`.
        """
        if type(key) is not str:
            key = _check_key(key)
        spec, skey, hashed = self.locate(namespace, key, cache_type)
        started = _perf_ns()
        # Noted before anything is read: see fill_token.
        token = self._gens[hash(skey) & _GEN_MASK] + self._epoch
        if self.use_l1 and (hashed or not l1_checked):
            entry = self.l1.get_entry(skey)  # type: ignore[union-attr]
            if entry is not None and (not hashed or entry.meta == key):
                self.metrics.hit("l1", "get", _perf_ns() - started)
                return entry.value, None
            self.metrics.tier_miss("l1")
        if len(self.pending):
            value = self.pending_value(skey, hashed, key, spec, token)
            if value is not MISSING:
                self.metrics.hit("l1", "get", _perf_ns() - started)
                return value, None
        if not self.use_l2:
            self.metrics.miss("get", _perf_ns() - started)
            return default, None
        return None, _new_call(GetState, (skey, hashed, key, spec, started, token))

    def pending_value(self, skey: str, hashed: bool, key: str, spec: TypeSpec, token: int) -> Any:
        """The value of a write-back write not yet flushed (evicted from L1 meanwhile), or MISSING.

        Without this, a value L1 evicted before the flusher sent it to L2
        would read as a miss, or worse, as the older value still in L2. It is
        put back into L1 for its remaining lifetime.
        """
        write = self.pending.get(skey)
        if write is None:
            return MISSING
        value, remaining = self.decode(skey, hashed, key, spec, write.record)
        if value is not MISSING and self.use_l1:
            self.l1_fill_checked(skey, hashed, key, value, len(write.record), remaining, spec.name, token)
        return value

    def get_end(self, state: GetState, raw: bytes | None, default: Any) -> Any:
        """Last step of a read: decode what L2 returned; an L2 hit fills L1 for its remaining lifetime."""
        skey, hashed, key, spec, started, token = state
        if raw is not None:
            value, remaining = self.decode(skey, hashed, key, spec, raw)
            if value is not MISSING:
                if self.use_l1:
                    self.l1_fill_checked(skey, hashed, key, value, len(raw), remaining, spec.name, token)
                self.metrics.l2_hit(_perf_ns() - started)
                return value
        self.metrics.tier_miss("l2")
        self.metrics.miss("get", _perf_ns() - started)
        return default

    def plan_peek(self, namespace: str, key: str, cache_type: str | None) -> Plan[Any]:
        """The value of ``key``, or MISSING, without counting a lookup.

        ``get_or_set``'s leader checks once more whether another caller filled
        the key meanwhile; counting that as a second lookup would halve the
        hit rate that stats() and health() report for read-through use.
        """
        if not self.enabled:
            return MISSING
        if type(key) is not str:
            key = _check_key(key)
        spec, skey, hashed = self.locate(namespace, key, cache_type)
        token = self.fill_token(skey)
        if self.use_l1:
            entry = self.l1.peek(skey)  # type: ignore[union-attr]
            if entry is not None and (not hashed or entry.meta == key):
                return entry.value
        if len(self.pending):
            value = self.pending_value(skey, hashed, key, spec, token)
            if value is not MISSING:
                return value
        if self.use_l2:
            try:
                raw = yield _new_call(L2Call, (L2Op.GET, (skey,)))
            except BackendError as exc:
                self.l2_failed("get", exc)
                return MISSING
            if raw is not None:
                value, remaining = self.decode(skey, hashed, key, spec, raw)
                if value is not MISSING:
                    if self.use_l1:
                        self.l1_fill_checked(skey, hashed, key, value, len(raw), remaining, spec.name, token)
                    return value
        return MISSING

    def l1_fill_checked(
        self, skey: str, hashed: bool, key: str, value: Any, size: int, ttl: float, cache_type: str, token: int
    ) -> None:
        """Fill L1 from an L2 hit (or a pending write), remembering the caller key of hashed entries.

        ``token`` is :meth:`fill_token` from before the read. A write or delete
        of the key since then means ``value`` may be older than what the key
        now holds: it is not put into L1, or taken out again if the write
        landed while it was being put there (writers bump the generation
        before touching L1, so one of the two checks sees it).
        """
        if not self.use_l1:
            return
        gens = self._gens
        slot = hash(skey) & _GEN_MASK
        if gens[slot] + self._epoch != token:
            return
        l1 = self.l1
        l1.set(skey, value, size, ttl, meta=key if hashed else None, partition=cache_type)  # type: ignore[union-attr]
        if gens[slot] + self._epoch != token:
            l1.delete(skey)  # type: ignore[union-attr]

    def plan_get_many(self, namespace: str, keys: Iterable[str], cache_type: str | None) -> Plan[dict[str, Any]]:
        if isinstance(keys, (str, bytes, bytearray)):
            # Iterating "abc" would look up "a", "b" and "c": surely not what was meant.
            raise TypeError(f"get_many takes an iterable of keys, not a single {type(keys).__name__}")
        spec = self.spec(cache_type)
        started = time.perf_counter_ns()
        found: dict[str, Any] = {}
        wanted: list[tuple[str, str, bool, int]] = []
        seen: set[str] = set()
        locate = self.locate
        fill_token = self.fill_token
        l1 = self.l1 if self.use_l1 else None
        for key in keys:
            if type(key) is not str:
                key = _check_key(key)
            if key in seen:
                continue
            seen.add(key)
            _, skey, hashed = locate(namespace, key, cache_type)
            token = fill_token(skey)
            if l1 is not None:
                entry = l1.get_entry(skey)
                if entry is not None and (not hashed or entry.meta == key):
                    found[key] = entry.value
                    continue
            if len(self.pending):
                value = self.pending_value(skey, hashed, key, spec, token)
                if value is not MISSING:
                    found[key] = value
                    continue
            wanted.append((key, skey, hashed, token))
        l1_hits = len(found)
        if wanted and self.use_l2:
            try:
                raws = yield L2Call(L2Op.GET_MANY, ([w[1] for w in wanted],))
            except BackendError as exc:
                self.l2_failed("get_many", exc)
                raws = [None] * len(wanted)
            for (key, skey, hashed, token), raw in zip(wanted, raws):
                if raw is None:
                    continue
                value, remaining = self.decode(skey, hashed, key, spec, raw)
                if value is not MISSING:
                    found[key] = value
                    if l1 is not None:
                        self.l1_fill_checked(skey, hashed, key, value, len(raw), remaining, spec.name, token)
        elapsed = time.perf_counter_ns() - started
        l2_hits = len(found) - l1_hits
        self.metrics.batch_lookup(
            l1_hits,
            l2_hits,
            len(seen) - len(found),
            elapsed,
            l1_misses=len(seen) - l1_hits if self.use_l1 else 0,
            l2_misses=len(wanted) - l2_hits if self.use_l2 else 0,
        )
        return found

    # ``set`` is split like ``get``: set_begin (keys, TTL, encoding: bad input raises before any
    # tier is touched) and set_end (L1, the write-back queue, metrics). plan_set puts the L2
    # write between them; when nothing goes to L2 during the call (write-back, memory-only)
    # the facades call the two steps directly and skip driving a generator.

    def set_begin(self, namespace: str, key: str, value: Any, ttl: object, cache_type: str | None) -> SetState:
        """First step of a write: storage key, TTL and the encoded record."""
        if type(key) is not str:
            key = _check_key(key)
        spec, skey, hashed = self.locate(namespace, key, cache_type)
        seconds = self.resolve_ttl(spec, ttl)
        started = _perf_ns()
        record, expires_at_ms = self.encode(skey, hashed, key, spec, value, seconds)
        return _new_call(
            SetState, (skey, hashed, key, value, seconds, record, expires_at_ms, started, spec.name)
        )

    def set_end(self, state: SetState) -> None:
        """Last step of a write: L1 (or dropping its copy), the write-back queue, metrics."""
        skey, hashed, key, value, seconds, record, expires_at_ms, started, cache_type = state
        if self.use_l1:
            # After the L2 write, before L1: reads in flight must not fill L1 with an older value.
            self._gens[hash(skey) & _GEN_MASK] += 1
            strategy = self.strategy
            # The L1 copy lives as long as the record says, counted from now (the L2 write took time).
            remaining = expires_at_ms / 1000.0 - self.clock()
            if (strategy is WriteStrategy.WRITE_AROUND and self.use_l2) or remaining <= 0:
                self.l1.delete(skey)  # type: ignore[union-attr]
            else:
                self.l1.set(  # type: ignore[union-attr]
                    skey, value, len(record), min(seconds, remaining), meta=key if hashed else None,
                    partition=cache_type,
                )
                if strategy is WriteStrategy.WRITE_BACK and self.use_l2:
                    self.pending.put(_new_call(PendingWrite, (skey, record, expires_at_ms)))
                self.metrics.l1_set(_perf_ns() - started)
                return
        self.metrics.timed("set", _perf_ns() - started)

    def plan_set(
        self, namespace: str, key: str, value: Any, ttl: object, cache_type: str | None
    ) -> Plan[None]:
        state = self.set_begin(namespace, key, value, ttl, cache_type)
        if self.writes_l2_now:
            if len(self.pending):
                # Left over from WRITE_BACK before a live strategy switch: it must not land after
                # this newer write. The facades hold the flush lock whenever writes are pending.
                self.pending.discard(state.skey)
            try:
                yield _new_call(L2Call, (L2Op.SET, (state.skey, state.record, state.seconds)))
            except BackendError as exc:
                self.l2_failed("set", exc)
            else:
                self.metrics.stored("l2")
        self.set_end(state)
        return None

    def plan_set_many(
        self, namespace: str, items: Mapping[str, Any], ttl: object, cache_type: str | None
    ) -> Plan[None]:
        if not isinstance(items, Mapping):
            raise TypeError(f"set_many takes a mapping of key -> value, got {type(items).__name__}")
        spec = self.spec(cache_type)
        started = time.perf_counter_ns()
        # Encode everything first: a value the codec refuses fails the call before anything is written.
        prepared = []
        for key, value in items.items():
            key = _check_key(key)
            skey, hashed = self.storage_key(namespace, spec, key)
            seconds = self.resolve_ttl(spec, ttl)
            record, expires_at_ms = self.encode(skey, hashed, key, spec, value, seconds)
            prepared.append((key, skey, hashed, value, seconds, record, expires_at_ms))
        strategy = self.strategy
        if self.use_l2 and strategy is not WriteStrategy.WRITE_BACK and prepared:
            if len(self.pending):  # as in plan_set: an older write-back write must not land later
                for p in prepared:
                    self.pending.discard(p[1])
            try:
                yield L2Call(L2Op.SET_MANY, ([(p[1], p[5], p[4]) for p in prepared],))
            except BackendError as exc:
                self.l2_failed("set_many", exc)
            else:
                self.metrics.stored("l2", len(prepared))
        if self.use_l1:
            l1 = self.l1
            kept = 0
            now = self.clock()
            for key, skey, hashed, value, seconds, record, expires_at_ms in prepared:
                self.bump(skey)  # as in set_end
                remaining = expires_at_ms / 1000.0 - now
                if (strategy is WriteStrategy.WRITE_AROUND and self.use_l2) or remaining <= 0:
                    l1.delete(skey)  # type: ignore[union-attr]
                    continue
                l1.set(  # type: ignore[union-attr]
                    skey, value, len(record), min(seconds, remaining), meta=key if hashed else None,
                    partition=spec.name,
                )
                kept += 1
                if strategy is WriteStrategy.WRITE_BACK and self.use_l2:
                    self.pending.put(_new_call(PendingWrite, (skey, record, expires_at_ms)))
            if kept:
                self.metrics.stored("l1", kept)
        self.metrics.timed("set_many", time.perf_counter_ns() - started)
        return None

    def plan_delete(self, namespace: str, key: str, cache_type: str | None) -> Plan[bool]:
        """Delete one key. The caller holds the write-back flush lock (see the facades)."""
        spec = self.spec(cache_type)
        skey, _hashed = self.storage_key(namespace, spec, key)
        started = time.perf_counter_ns()
        removed = self.pending.discard(skey)
        try:
            if self.use_l2:
                try:
                    count = yield L2Call(L2Op.DELETE, (skey,))
                except BackendError as exc:
                    self.l2_failed("delete", exc)
                else:
                    removed = bool(count) or removed
        finally:
            # L1 last, after the bump: an L2 read that got the old value before the UNLINK either
            # filled L1 before this delete or sees the new generation (see l1_fill_checked).
            self.bump(skey)
            if self.use_l1:
                removed = self.l1.delete(skey) or removed  # type: ignore[union-attr]
        self.metrics.deleted(int(removed))
        self.metrics.timed("delete", time.perf_counter_ns() - started)
        return removed

    def namespace_base(self, namespace: str) -> str:
        return self.keys.namespace_base(namespace)

    def plan_invalidate(self, namespace: str, pattern: str, cache_type: str | None) -> Plan[int]:
        """Delete the namespace's keys whose ``type:key`` (or ``key`` within ``cache_type``) matches.

        ``pattern`` is a Redis glob. On L2 it is appended to the escaped
        namespace base, so it can never reach keys of another namespace.
        Returns how many distinct keys were removed from any tier.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty str")
        visible = pattern if cache_type is None else f"{escape_glob(self.spec(cache_type).name)}:{pattern}"
        return (yield from self._remove_matching(namespace, visible))

    def plan_clear(self, namespace: str) -> Plan[int]:
        """Delete every key of ``namespace`` in both tiers (SCAN + UNLINK, never FLUSHDB)."""
        return (yield from self._remove_matching(namespace, "*"))

    def _remove_matching(self, namespace: str, visible: str) -> Plan[int]:
        """Remove keys of ``namespace`` whose ``type:key`` matches the glob ``visible``, in every tier."""
        base = self.keys.namespace_base(namespace)
        regex = compile_glob(visible)
        removed: set[str] = set()

        def matches(skey: str, caller_key: Callable[[], str | None]) -> bool:
            if not skey.startswith(base):
                return False
            type_name, _, key_part = skey[len(base) :].partition(":")
            if key_part.startswith(HASHED_MARK):  # a hashed key: match the caller's key, not the hash
                original = caller_key()
                if original is None:
                    return False
                key_part = original
            return regex.fullmatch(f"{type_name}:{key_part}") is not None

        def l1_doomed(skey: str) -> bool:
            hit = matches(skey, lambda: _meta_key(l1.peek(skey)))  # type: ignore[union-attr]
            if hit:
                removed.add(skey)
            return hit

        l1 = self.l1 if self.use_l1 else None
        if l1 is not None:
            l1.delete_where(l1_doomed)
        removed.update(
            self.pending.discard_where(lambda w: matches(w.key, lambda: _record_key(w.record)))
        )
        # Keys removed only from L2: with the L1 and queue ones they make the exact distinct count.
        l2_only = 0
        try:
            if self.use_l2:
                l2_only = yield from self._remove_matching_l2(base, visible, removed, matches)
        finally:
            # Reads in flight may have fetched a doomed value from L2: no fill from them, and a
            # second pass over L1 drops what they filled before the bump (see l1_fill_checked).
            self.bump_all()
            if l1 is not None:
                l1.delete_where(lambda skey: matches(skey, lambda: _meta_key(l1.peek(skey))))
        count = len(removed) + l2_only
        self.metrics.deleted(count)
        return count

    def _remove_matching_l2(
        self, base: str, visible: str, removed: set[str], matches: Callable[[str, Callable[[], str | None]], bool]
    ) -> Plan[int]:
        """The L2 part of :meth:`_remove_matching`; returns how many keys only L2 held."""
        l2_only = 0
        try:
            scanned = yield L2Call(L2Op.SCAN_KEYS, (escape_glob(base) + visible,))
            # Hashed keys are judged by the caller key in their record, below, never by the hash.
            plain = [k for k in scanned if not k[len(base) :].partition(":")[2].startswith(HASHED_MARK)]
            hashed = yield L2Call(L2Op.SCAN_KEYS, (escape_glob(base) + "*:" + escape_glob(HASHED_MARK) + "*",))
            # Hashed keys already judged through L1 or the write-back queue need no record
            # read, but their L2 copies must go too.
            plain.extend(k for k in hashed if k in removed)
            candidates = [k for k in hashed if k not in removed]
            for start in range(0, len(candidates), self.batch_size):
                chunk = candidates[start : start + self.batch_size]
                raws = yield L2Call(L2Op.GET_MANY, (chunk,))
                plain.extend(
                    skey
                    for skey, raw in zip(chunk, raws)
                    if raw is not None and matches(skey, lambda raw=raw: _record_key(raw))
                )
            # UNLINK answers with a count, not with which keys existed: keys already counted
            # (removed from L1 or the queue) go in their own batches so the count stays exact.
            known = [k for k in plain if k in removed]
            fresh = [k for k in plain if k not in removed]
            for keys, counted in ((known, True), (fresh, False)):
                for start in range(0, len(keys), self.batch_size):
                    chunk = keys[start : start + self.batch_size]
                    gone = yield L2Call(L2Op.DELETE, tuple(chunk))
                    if not counted:
                        l2_only += int(gone)
        except BackendError as exc:
            self.l2_failed("invalidate", exc)
        return l2_only

    def plan_flush_batch(self, limit: int) -> Plan[int]:
        """Send up to ``limit`` pending writes to L2; on failure put them back. Returns how many went.

        While the batch is being sent it stays readable (see :class:`WriteBackQueue`).
        """
        batch = self.pending.take(limit)
        if not batch:
            return 0
        try:
            return (yield from self._send_batch(batch))
        finally:
            self.pending.complete(batch)

    def _send_batch(self, batch: list[PendingWrite]) -> Plan[int]:
        """The L2 part of :meth:`plan_flush_batch`."""
        now_ms = int(self.clock() * 1000)
        live = [w for w in batch if w.expires_at_ms > now_ms + 1]
        if not live:
            return 0
        started = time.perf_counter_ns()
        items = [(w.key, w.record, (w.expires_at_ms - now_ms) / 1000.0) for w in live]
        try:
            yield L2Call(L2Op.SET_MANY, (items,))
        except BaseException as exc:
            if not isinstance(exc, ServerRefusal):
                # A batch that failed, or was cut short by cancellation (the async close() may
                # cancel the flusher), goes back to the queue: a taken batch must never just vanish.
                if isinstance(exc, BackendError) or not isinstance(exc, Exception):
                    self.pending.requeue(live)
                raise
            # The server refused something in the batch (it answered, so retrying the whole
            # batch would fail again forever): send the writes one by one below.
            sent = None
        else:
            sent = len(live)
        if sent is None:
            sent = yield from self._send_one_by_one(live, items)
        self.metrics.stored("l2", sent)
        self.metrics.timed("writeback_flush", time.perf_counter_ns() - started)
        return sent

    def _send_one_by_one(self, live: list[PendingWrite], items: list[tuple[str, bytes, float]]) -> Plan[int]:
        """Write each entry on its own, dropping (and counting) those the server refuses; how many went."""
        sent = 0
        for index, item in enumerate(items):
            try:
                yield L2Call(L2Op.SET, item)
            except BaseException as exc:
                if isinstance(exc, ServerRefusal):
                    self.metrics.error("writeback_rejected")
                    logger.warning("qcache: L2 refused a write-back write, dropped: %s", exc)
                    continue
                if isinstance(exc, BackendError) or not isinstance(exc, Exception):
                    self.pending.requeue(live[index:])
                raise
            sent += 1
        return sent

    def plan_probe(self) -> Plan[dict[str, Any]]:
        """Health of both tiers: a probe key set, read and deleted in each, with latencies."""
        report: dict[str, Any] = {"status": "healthy", "reasons": []}
        reasons: list[str] = report["reasons"]
        probe_key = f"{self.keys.prefix}:__health__:{random.getrandbits(64):016x}"
        probe_value = b"qcache-health-probe"
        if self.use_l1:
            l1 = self.l1
            assert l1 is not None
            started = time.perf_counter()
            try:
                stats = l1.stats()
                if stats.entries < stats.max_entries and stats.bytes + len(probe_value) <= stats.max_bytes:
                    l1.set(probe_key, probe_value, len(probe_value), 10.0)
                    ok = l1.get(probe_key) == probe_value
                    l1.delete(probe_key)
                else:
                    # A full L1 would evict a real entry to make room for the probe: read only.
                    ok = l1.peek(probe_key) is None
            except Exception as exc:  # a broken L1 is exactly what health must report
                ok = False
                reasons.append(f"L1 probe raised {type(exc).__name__}: {exc}")
            report["l1"] = {
                "status": "healthy" if ok else "unhealthy",
                "latency_ms": (time.perf_counter() - started) * 1000,
                **dataclasses.asdict(l1.stats()),
            }
            if not ok:
                report["status"] = "unhealthy"
                reasons.append("L1 probe did not read back its value")
        if self.use_l2:
            started = time.perf_counter()
            record = pack_record(probe_value, int((self.clock() + 10) * 1000))
            try:
                yield L2Call(L2Op.SET, (probe_key, record, 10.0))
                ok = (yield L2Call(L2Op.GET, (probe_key,))) == record
                yield L2Call(L2Op.DELETE, (probe_key,))
                error = None if ok else "L2 probe did not read back its value"
            except QCacheError as exc:
                ok, error = False, f"L2 unreachable: {exc}"
            latency_ms = (time.perf_counter() - started) * 1000 / 3
            report["l2"] = {"status": "healthy" if ok else "unhealthy", "latency_ms": latency_ms}
            if not ok:
                reasons.append(error or "L2 probe failed")
                # With L1 in front the cache still serves; without it, it cannot.
                report["status"] = "degraded" if self.use_l1 and report["status"] == "healthy" else "unhealthy"
            elif latency_ms > self.latency_threshold_ms:
                reasons.append(
                    f"L2 latency {latency_ms:.1f} ms above CACHE_LATENCY_THRESHOLD {self.latency_threshold_ms:g} ms"
                )
                if report["status"] == "healthy":
                    report["status"] = "degraded"
        stats = self.metrics.snapshot()
        report["hit_rate"] = stats["hit_rate"]
        report["lookups"] = stats["lookups"]
        if stats["lookups"] >= 100 and stats["hit_rate"] < self.hit_rate_threshold:
            reasons.append(
                f"hit rate {stats['hit_rate']:.2f} below CACHE_HIT_RATE_THRESHOLD {self.hit_rate_threshold:g}"
            )
            if report["status"] == "healthy":
                report["status"] = "degraded"
        report["pending_writes"] = len(self.pending)
        return report

    def stats(self) -> dict[str, Any]:
        """Metrics plus tier sizes and write-back state."""
        out = self.metrics.snapshot()
        codec = self.codec_stats.snapshot()
        # Serialized bytes over stored bytes, every value included (None before the first write).
        out["compression_ratio"] = codec.storage_ratio if codec.encoded else None
        out["enabled"] = self.enabled
        out["level"] = self.level.value
        out["write_strategy"] = self.strategy.value
        if self.l1 is not None:
            out["l1"] = dataclasses.asdict(self.l1.stats())
        out["pending_writes"] = len(self.pending)
        out["writeback_dropped"] = self.pending.dropped
        return out
