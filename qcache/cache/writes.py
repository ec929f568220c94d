"""Writes: ``set`` (as two plain steps around the L2 write), ``set_many`` and ``delete``.

``set`` is split like ``get``: :meth:`WritePlans.set_begin` (keys, TTL,
encoding: bad input raises before any tier is touched) and
:meth:`WritePlans.set_end` (L1, the write-back queue, metrics).
:meth:`WritePlans.plan_set` puts the L2 write between them; when nothing goes
to L2 during the call (write-back, memory-only) the facades call the two
steps directly and skip driving a generator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from qcache.cache.content import content_hash
from qcache.cache.generations import SLOT_MASK
from qcache.cache.inputs import check_key
from qcache.cache.plans import L2Call, Plan, new_tuple
from qcache.cache.writeback import PendingWrite
from qcache.errors import BackendError
from qcache.l2.protocol import L2Op
from qcache.l2.tagging import Membership
from qcache.types import WriteStrategy

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

_perf_ns = time.perf_counter_ns


class SetState(NamedTuple):
    """What :meth:`WritePlans.set_end` needs from :meth:`WritePlans.set_begin`."""

    skey: str
    hashed: bool
    key: str
    value: Any
    seconds: float
    record: bytes
    expires_at_ms: int
    started: int
    cache_type: str  # the type's name, which is also its L1 partition
    tags: tuple[str, ...]  # the Redis keys of the write's tag sets (see qcache.cache.tags)
    size: int  # what the entry weighs against L1's byte bound


class WritePlans:
    """The write operations of one cache (``delete`` included)."""

    __slots__ = ("_core", "_entries", "_gen_slots", "_gens", "_l1", "_locator", "_metrics", "_pending", "memory_set")

    def __init__(self, core: CacheCore) -> None:
        self._core = core
        self._l1 = core.l1
        self._metrics = core.metrics
        self._pending = core.pending
        self._gens = core.generations
        self._gen_slots = core.generations.slots  # set_end bumps inline (see WriteGenerations)
        self._locator = core.locator
        self._entries = core.entries
        self.memory_set = self._memory_set_function()

    def _memory_set_function(self) -> Callable[[str, str, Any, object, str | None, object, object], None]:
        """Build ``set`` for a cache without L2 (level ``L1_MEMORY``): the caller checked ``not use_l2``.

        With no L2 write there is no record to build: the value is weighed
        (:meth:`qcache.codec.Codec.plain_size`) and put into L1 for its TTL,
        with the same key checks, write generation and metrics as
        :meth:`set_begin` and :meth:`set_end`, in one closure instead of two
        calls and the state between them (a third of an L1-only set). Tags
        and a content source take the two steps.
        """
        core = self._core
        l1 = self._l1
        locate = self._locator.locate
        resolve_ttl = self._entries.resolve_ttl
        gen_slots = self._gen_slots
        l1_set = self._metrics.l1_set
        perf_ns = _perf_ns

        def memory_set(
            namespace: str, key: str, value: Any, ttl: object, cache_type: str | None, tags: object = (),
            source: object = None,
        ) -> None:
            if tags or source is not None or l1 is None or not core.use_l1:
                self.set_end(self.set_begin(namespace, key, value, ttl, cache_type, tags, source))
                return
            if type(key) is not str:
                key = check_key(key)
            spec, skey, hashed = locate(namespace, key, cache_type)
            seconds = resolve_ttl(spec, ttl)
            started = perf_ns()
            size = spec.codec.plain_size(value)
            gen_slots[hash(skey) & SLOT_MASK] += 1  # as in set_end
            l1.set(skey, value, size, seconds, key if hashed else None, spec.name)
            l1_set(perf_ns() - started)

        return memory_set

    def set_begin(
        self, namespace: str, key: str, value: Any, ttl: object, cache_type: str | None, tags: object = (),
        source: object = None,
    ) -> SetState:
        """First step of a write: storage key, TTL, tags and the encoded record (with ``source``'s digest)."""
        if type(key) is not str:
            key = check_key(key)
        spec, skey, hashed = self._locator.locate(namespace, key, cache_type)
        tag_keys = self._core.tag_keys(namespace, tags) if tags else ()
        entries = self._entries
        seconds = entries.resolve_ttl(spec, ttl)
        started = _perf_ns()
        core = self._core
        digest = None if source is None else content_hash(source)
        if core.use_l2:
            if digest is None:
                record, expires_at_ms = entries.encode(skey, hashed, key, spec, value, seconds)
            else:
                record, expires_at_ms = entries.encode(skey, hashed, key, spec, value, seconds, digest)
            size = len(record)
        else:
            # Nothing goes to L2: the byte bound needs a size, not a record (see Codec.plain_size).
            record = b""
            size = spec.codec.plain_size(value)
            expires_at_ms = int((entries.clock() + seconds) * 1000) + 1
            if digest is not None:  # nowhere else to keep it: validate() finds it here
                core.local_digests.put(skey, digest, core.held_locally)
        return new_tuple(
            SetState, (skey, hashed, key, value, seconds, record, expires_at_ms, started, spec.name, tag_keys, size)
        )

    def set_end(self, state: SetState) -> None:
        """Last step of a write: L1 (or dropping its copy), the write-back queue, metrics."""
        skey, hashed, key, value, seconds, record, expires_at_ms, started, cache_type, tag_keys, size = state
        core = self._core
        l1 = self._l1
        if l1 is not None and core.use_l1:
            # After the L2 write, before L1: reads in flight must not fill L1 with an older value.
            self._gen_slots[hash(skey) & SLOT_MASK] += 1
            strategy = core.strategy
            # The L1 copy lives as long as the record says, counted from now (the L2 write took time).
            remaining = expires_at_ms / 1000.0 - core.clock()
            if (strategy is WriteStrategy.WRITE_AROUND and core.use_l2) or remaining <= 0:
                l1.delete(skey)
            else:
                l1.set(
                    skey, value, size, min(seconds, remaining, core.l1_max_ttl), meta=key if hashed else None,
                    partition=cache_type,
                )
                if strategy is WriteStrategy.WRITE_BACK and core.use_l2 and record:
                    self._pending.put(new_tuple(PendingWrite, (skey, record, expires_at_ms, tag_keys)))
                if tag_keys and not core.writes_l2_now:
                    # Write-back or L1 only: Redis does not know this membership yet, or ever.
                    core.tag_index.add(tag_keys, (skey,), core.held_locally)
                self._metrics.l1_set(_perf_ns() - started)
                return
        self._metrics.timed("set", _perf_ns() - started)

    def plan_set(
        self, namespace: str, key: str, value: Any, ttl: object, cache_type: str | None, tags: object = (),
        source: object = None,
    ) -> Plan[None]:
        """``set`` when it writes L2 during the call: both steps around the L2 write."""
        state = self.set_begin(namespace, key, value, ttl, cache_type, tags, source)
        core = self._core
        if core.writes_l2_now and not state.record:  # the level gained L2 since set_begin looked
            state = self.set_begin(namespace, key, value, ttl, cache_type, tags, source)
        written: bytes | None = None
        # Other processes' copies follow Redis; this one's (or the next read's) is checked against the echo.
        coherence = core.coherence if core.writes_l2_now else None
        if core.writes_l2_now:
            if len(self._pending):
                # Left over from WRITE_BACK before a live strategy switch: it must not land after
                # this newer write. The facades hold the flush lock whenever writes are pending.
                self._pending.discard(state.skey)
            if state.tags:
                call = L2Call(L2Op.SET_TAGGED, (
                    [(state.skey, state.record, state.seconds)],
                    [Membership(tag_key, state.skey, state.expires_at_ms) for tag_key in state.tags],
                    int(core.clock() * 1000),
                ))
            else:
                call = new_tuple(L2Call, (L2Op.SET, (state.skey, state.record, state.seconds)))
            if coherence is not None:
                coherence.write_begin(state.skey)
            try:
                yield call
            except BackendError as exc:
                core.failures.l2_failed("set", exc)
            except BaseException:
                if coherence is not None:
                    coherence.write_end(state.skey, None)
                raise
            else:
                self._metrics.stored("l2")
                written = state.record
        self.set_end(state)
        if coherence is not None:
            coherence.write_end(state.skey, written)
        return None

    def plan_set_many(
        self, namespace: str, items: Mapping[str, Any], ttl: object, cache_type: str | None, tags: object = ()
    ) -> Plan[None]:
        """Store many values; every value is encoded before anything is written."""
        if not isinstance(items, Mapping):
            raise TypeError(f"set_many takes a mapping of key -> value, got {type(items).__name__}")
        core = self._core
        spec = self._locator.spec(cache_type)
        tag_keys = core.tag_keys(namespace, tags) if tags else ()
        started = time.perf_counter_ns()
        entries = self._entries
        # Encode everything first: a value the codec refuses fails the call before anything is written.
        prepared = []
        for key, value in items.items():
            key = check_key(key)
            skey, hashed = self._locator.storage_key(namespace, spec, key)
            seconds = entries.resolve_ttl(spec, ttl)
            record, expires_at_ms = entries.encode(skey, hashed, key, spec, value, seconds)
            prepared.append((key, skey, hashed, value, seconds, record, expires_at_ms))
        strategy = core.strategy
        coherence = core.coherence  # as in plan_set
        written = False
        if core.use_l2 and strategy is not WriteStrategy.WRITE_BACK and prepared:
            if len(self._pending):  # as in plan_set: an older write-back write must not land later
                for p in prepared:
                    self._pending.discard(p[1])
            l2_items = [(p[1], p[5], p[4]) for p in prepared]
            if tag_keys:
                memberships = [Membership(t, p[1], p[6]) for p in prepared for t in tag_keys]
                call = L2Call(L2Op.SET_TAGGED, (l2_items, memberships, int(core.clock() * 1000)))
            else:
                call = L2Call(L2Op.SET_MANY, (l2_items,))
            if coherence is not None:
                coherence.writes_begin([p[1] for p in prepared])
            try:
                yield call
            except BackendError as exc:
                core.failures.l2_failed("set_many", exc)
            except BaseException:
                if coherence is not None:
                    coherence.writes_end([(p[1], None) for p in prepared])
                raise
            else:
                self._metrics.stored("l2", len(prepared))
                written = True
        else:
            coherence = None
        l1 = self._l1
        if l1 is not None and core.use_l1:
            kept = 0
            now = core.clock()
            for key, skey, hashed, value, seconds, record, expires_at_ms in prepared:
                self._gens.bump(skey)  # as in set_end
                remaining = expires_at_ms / 1000.0 - now
                if (strategy is WriteStrategy.WRITE_AROUND and core.use_l2) or remaining <= 0:
                    l1.delete(skey)
                    continue
                l1.set(
                    skey, value, len(record), min(seconds, remaining, core.l1_max_ttl),
                    meta=key if hashed else None, partition=spec.name,
                )
                kept += 1
                if strategy is WriteStrategy.WRITE_BACK and core.use_l2:
                    self._pending.put(new_tuple(PendingWrite, (skey, record, expires_at_ms, tag_keys)))
            if kept:
                self._metrics.stored("l1", kept)
                if tag_keys and not core.writes_l2_now:  # as in set_end
                    core.tag_index.add(tag_keys, (p[1] for p in prepared), core.held_locally)
        if coherence is not None:
            coherence.writes_end([(p[1], p[5] if written else None) for p in prepared])
        self._metrics.timed("set_many", time.perf_counter_ns() - started)
        return None

    def plan_delete(self, namespace: str, key: str, cache_type: str | None) -> Plan[bool]:
        """Delete one key. The caller holds the write-back flush lock (see the facades)."""
        core = self._core
        spec = self._locator.spec(cache_type)
        skey, _hashed = self._locator.storage_key(namespace, spec, key)
        started = time.perf_counter_ns()
        removed = self._pending.discard(skey)
        try:
            if core.use_l2:
                try:
                    count = yield L2Call(L2Op.DELETE, (skey,))
                except BackendError as exc:
                    core.failures.l2_failed("delete", exc)
                else:
                    removed = bool(count) or removed
        finally:
            # L1 last, after the bump: an L2 read that got the old value before the UNLINK either
            # filled L1 before this delete or sees the new generation (see ReadPlans.fill_l1).
            self._gens.bump(skey)
            l1 = self._l1
            if l1 is not None and core.use_l1:
                removed = l1.delete(skey) or removed
        self._metrics.deleted(int(removed))
        self._metrics.timed("delete", time.perf_counter_ns() - started)
        return removed
