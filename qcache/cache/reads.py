"""Reads: ``get`` (L1 hot path, then one L2 call), the single-flight re-check and ``get_many``.

``get`` is written as plain steps instead of a plan, for speed: an L1 hit is
served by :meth:`ReadPlans.l1_lookup` (no generator, lock-free metrics), and
an L2 read is :meth:`ReadPlans.get_begin` and :meth:`ReadPlans.get_end`
around the facade's one L2 call; driving a generator (creation, send,
StopIteration) would cost as much as all the rest of the facade's own work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

from qcache.cache.inputs import check_key
from qcache.cache.keys import HASHED_MARK
from qcache.cache.l1path import l1_hit_paths
from qcache.cache.locator import TypeSpec
from qcache.cache.plans import GONE, MISSING, L2Call, Plan, new_tuple
from qcache.errors import BackendError
from qcache.l2.protocol import L2Op

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

_perf_ns = time.perf_counter_ns


class GetState(NamedTuple):
    """What :meth:`ReadPlans.get_end` needs from :meth:`ReadPlans.get_begin`."""

    skey: str
    hashed: bool
    key: str
    spec: TypeSpec
    started: int
    token: int  # the key's write generation when the read began (see WriteGenerations)


class ReadPlans:
    """The read operations of one cache."""

    __slots__ = (
        "_core", "_gens", "_l1", "_locator", "_metrics", "_pending", "l1_lookup", "view_get",
    )

    def __init__(self, core: CacheCore) -> None:
        self._core = core
        # Objects fixed for the cache's lifetime, held here so the hot path reaches them in one step.
        self._l1 = core.l1
        self._metrics = core.metrics
        self._pending = core.pending
        self._gens = core.generations
        self._locator = core.locator
        # get's L1 hit, and the sync facade's get of one view: see qcache.cache.l1path.
        self.l1_lookup, self.view_get = l1_hit_paths(core)

    def get_begin(
        self, namespace: str, key: str, cache_type: str | None, default: Any, l1_checked: bool = False
    ) -> tuple[Any, GetState | None]:
        """First step of a read: L1 (skipped for a plain key ``l1_lookup`` already tried).

        Returns ``(result, None)`` when the read is over (an L1 hit, or a miss
        without L2), or ``(None, state)`` when the caller must fetch
        ``state.skey`` from L2 and pass the bytes (None on a miss or an L2
        failure, after ``failures.l2_failed``) to :meth:`get_end`.
        """
        core = self._core
        if type(key) is not str:
            key = check_key(key)
        spec, skey, hashed = self._locator.locate(namespace, key, cache_type)
        started = _perf_ns()
        token = self._gens.token(skey)  # noted before anything is read
        l1 = self._l1
        if l1 is not None and core.use_l1 and (hashed or not l1_checked):
            entry = l1.get_entry(skey)
            if entry is not None and (not hashed or entry.meta == key):
                self._metrics.hit("l1", "get", _perf_ns() - started)
                return entry.value, None
            self._metrics.tier_miss("l1")
        if len(self._pending):
            value = self.pending_value(skey, hashed, key, spec, token)
            if value is GONE:  # deleted; L2 may still hold the value until the delete lands
                self._metrics.miss("get", _perf_ns() - started)
                return default, None
            if value is not MISSING:
                self._metrics.hit("l1", "get", _perf_ns() - started)
                return value, None
        if not core.use_l2:
            self._metrics.miss("get", _perf_ns() - started)
            return default, None
        return None, new_tuple(GetState, (skey, hashed, key, spec, started, token))

    def get_end(self, state: GetState, raw: bytes | None, default: Any) -> Any:
        """Last step of a read: decode what L2 returned; an L2 hit fills L1 for its remaining lifetime."""
        skey, hashed, key, spec, started, token = state
        if raw is not None:
            value, remaining = self._core.entries.decode(skey, hashed, key, spec, raw)
            if value is not MISSING:
                self.fill_l1(skey, hashed, key, value, len(raw), remaining, spec.name, token)
                self._metrics.l2_hit(_perf_ns() - started)
                return value
        self._metrics.tier_miss("l2")
        self._metrics.miss("get", _perf_ns() - started)
        return default

    def pending_value(self, skey: str, hashed: bool, key: str, spec: TypeSpec, token: int) -> Any:
        """The value of a write not yet in L2 (evicted from L1 meanwhile), GONE, or MISSING.

        Without this, a value L1 evicted before the flusher sent it to L2
        would read as a miss, or worse, as the older value still in L2. It is
        put back into L1 for its remaining lifetime. GONE: a delete or pattern
        invalidation of the key has not reached L2 yet, so L2 must not be read.
        """
        pending = self._pending
        write = pending.get(skey)
        if write is None:
            return GONE if pending.blocked(skey, key) else MISSING
        if not write.record:
            return GONE
        value, remaining = self._core.entries.decode(skey, hashed, key, spec, write.record)
        if value is not MISSING:
            self.fill_l1(skey, hashed, key, value, len(write.record), remaining, spec.name, token)
        return value

    def fill_l1(
        self, skey: str, hashed: bool, key: str, value: Any, size: int, ttl: float, cache_type: str, token: int
    ) -> None:
        """Fill L1 from an L2 hit (or a pending write), remembering the caller key of hashed entries.

        ``token`` is the key's write generation from before the read. A write
        or delete of the key since then means ``value`` may be older than what
        the key now holds: it is not put into L1, or taken out again if the
        write landed while it was being put there (writers bump the
        generation before touching L1, so one of the two checks sees it).
        """
        l1 = self._l1
        if l1 is None or not self._core.use_l1:
            return
        gens = self._gens
        if gens.token(skey) != token:
            return
        ttl = min(ttl, self._core.l1_max_ttl)
        l1.set(skey, value, size, ttl, meta=key if hashed else None, partition=cache_type)
        if gens.token(skey) != token:
            l1.delete(skey)

    def plan_peek(self, namespace: str, key: str, cache_type: str | None) -> Plan[Any]:
        """The value of ``key``, or MISSING, without counting a lookup.

        ``get_or_set``'s leader checks once more whether another caller filled
        the key meanwhile; counting that as a second lookup would halve the
        hit rate that stats() and health() report for read-through use.
        """
        core = self._core
        if not core.enabled:
            return MISSING
        if type(key) is not str:
            key = check_key(key)
        spec, skey, hashed = self._locator.locate(namespace, key, cache_type)
        token = self._gens.token(skey)
        l1 = self._l1
        if l1 is not None and core.use_l1:
            entry = l1.peek(skey)
            if entry is not None and (not hashed or entry.meta == key):
                return entry.value
        if len(self._pending):
            value = self.pending_value(skey, hashed, key, spec, token)
            if value is GONE:
                return MISSING
            if value is not MISSING:
                return value
        if core.use_l2:
            try:
                raw = yield new_tuple(L2Call, (L2Op.GET, (skey,)))
            except BackendError as exc:
                core.failures.l2_failed("get", exc)
                return MISSING
            if raw is not None:
                value, remaining = core.entries.decode(skey, hashed, key, spec, raw)
                if value is not MISSING:
                    self.fill_l1(skey, hashed, key, value, len(raw), remaining, spec.name, token)
                    return value
        return MISSING

    def plan_get_many(self, namespace: str, keys: Iterable[str], cache_type: str | None) -> Plan[dict[str, Any]]:
        """``{key: value}`` for the keys that hit: L1 and pending writes first, then one L2 batch read.

        Written for batches of a hundred keys and more: per key only what that
        key needs (its storage key, L1, the pending queue), one metrics update
        and one clock reading per batch, and the records decoded in one loop
        (:meth:`EntryCodec.decode_many`).
        """
        if isinstance(keys, (str, bytes, bytearray)):
            # Iterating "abc" would look up "a", "b" and "c": surely not what was meant.
            raise TypeError(f"get_many takes an iterable of keys, not a single {type(keys).__name__}")
        core = self._core
        started = _perf_ns()
        try:
            base, spec = self._locator.bases[namespace][cache_type]
        except KeyError:
            base, spec = self._locator.type_base(namespace, cache_type)
        found: dict[str, Any] = {}
        locate = self._locator.locate
        max_key_length = self._locator.max_key_length
        token_of = self._gens.token
        l1 = self._l1 if core.use_l1 else None
        # Looked at once per batch: a write-back write queued meanwhile is one made after this read.
        pending = len(self._pending) > 0
        gone = 0  # keys deleted while the delete has not reached L2: misses, L2 not asked
        unique = unique_keys(keys)
        hashed_keys: set[str] = set()
        tokens: dict[str, int] = {}  # the keys' write generations, for L1 fills (fill_l1)
        if l1 is None and not pending and plain_keys(unique, len(base), max_key_length):
            # Nothing to look up before L2, and every storage key is base + key: built in C loops.
            wanted: Iterable[str] = unique
            skeys = [base + key for key in unique]
        else:
            listed: list[str] = []
            skeys = []
            for key in unique:
                skey = base + key
                if len(skey) <= max_key_length and key[:1] != HASHED_MARK and key.isascii():
                    hashed = False
                else:
                    _, skey, hashed = locate(namespace, key, cache_type)
                # The generation guards L1 fills only (fill_l1): without L1 there is none to take.
                token = token_of(skey) if l1 is not None else 0
                if l1 is not None:
                    entry = l1.get_entry(skey)
                    if entry is not None and (not hashed or entry[3] == key):
                        found[key] = entry[0]
                        continue
                if pending:
                    value = self.pending_value(skey, hashed, key, spec, token)
                    if value is GONE:
                        gone += 1
                        continue
                    if value is not MISSING:
                        found[key] = value
                        continue
                listed.append(key)
                skeys.append(skey)
                if hashed:
                    hashed_keys.add(key)
                if l1 is not None:
                    tokens[key] = token
            wanted = listed
        looked_up = len(found) + len(skeys) + gone
        l1_hits = len(found)
        if skeys and core.use_l2:
            try:
                raws = yield new_tuple(L2Call, (L2Op.GET_MANY, (skeys,)))
            except BackendError as exc:
                core.failures.l2_failed("get_many", exc)
                raws = ()
            fills: list[tuple[str, str, Any, int, float]] | None = [] if l1 is not None else None
            core.entries.decode_many(spec, wanted, skeys, raws, found, fills, hashed_keys)
            if fills:
                fill_l1, name = self.fill_l1, spec.name
                for key, skey, value, size, remaining in fills:
                    fill_l1(skey, key in hashed_keys, key, value, size, remaining, name, tokens[key])
        l2_hits = len(found) - l1_hits
        self._metrics.batch_lookup(
            l1_hits,
            l2_hits,
            looked_up - len(found),
            _perf_ns() - started,
            l1_misses=looked_up - l1_hits if core.use_l1 else 0,
            l2_misses=len(skeys) - l2_hits if core.use_l2 else 0,
        )
        return found


def unique_keys(keys: Iterable[str]) -> dict[str, None]:
    """The keys of a batch, each once and in order, as plain str (TypeError for a key that is not a str)."""
    keys = list(keys)
    try:
        unique = dict.fromkeys(keys)
    except TypeError:  # an unhashable key: check_key says what is wrong with it
        unique = dict.fromkeys(map(check_key, keys))
    if set(map(type, unique)) - {str}:  # str subclasses become their text (which may repeat another key)
        unique = dict.fromkeys(map(check_key, unique))
    return unique


def plain_keys(keys: dict[str, None], base_length: int, max_key_length: int) -> bool:
    """Whether every key's storage key is its type's base followed by the key (no hashed form, no check left).

    As :meth:`KeyLocator.locate` decides per key, for a whole batch in C loops: the keys joined
    are ASCII exactly when each is, and a key can only start with the hashed mark if the joined
    keys hold it somewhere (then each key is looked at).
    """
    if not keys:
        return True
    if max(map(len, keys)) + base_length > max_key_length:
        return False
    joined = "".join(keys)
    return joined.isascii() and (
        HASHED_MARK not in joined or not any(map(str.startswith, keys, repeat(HASHED_MARK)))
    )
