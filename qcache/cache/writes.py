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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from qcache.cache.content import content_hash
from qcache.cache.generations import SLOT_MASK
from qcache.cache.inputs import check_key
from qcache.cache.l1path import memory_set_function
from qcache.cache.plans import L2Call, Plan, new_tuple
from qcache.cache.writeback import PendingWrite, tombstone
from qcache.errors import BackendError, RedisAccessDenied, ServerRefusal
from qcache.l2.protocol import L2Op
from qcache.l2.tagging import Membership
from qcache.types import WriteStrategy

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

_perf_ns = time.perf_counter_ns
#: What a failed write or delete becomes, for the log (a refusal is raised or counted on its own).
_KEPT = "kept for a retry until it lands"


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


def _pending_write(state: SetState) -> PendingWrite:
    """The write of ``state`` as the flusher takes it (built only when a set must be queued)."""
    return new_tuple(PendingWrite, (state.skey, state.record, state.expires_at_ms, state.tags))


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
        # set at level L1_MEMORY, see qcache.cache.l1path; tags and a content source take the two steps.
        self.memory_set = memory_set_function(core, lambda *args: self.set_end(self.set_begin(*args)))

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
        """``set`` when it writes L2 during the call: both steps around the L2 write.

        If the L2 write fails, the tiers must not silently disagree (this
        process reading the new value, every other one the old): an outage
        (a connection error, a timeout, the breaker open) queues the write to
        be retried until it lands, as a write-back write; a refusal by the
        server (NOPERM, OOM...) drops the L1 copy, so both tiers keep the old
        value. Either is counted; ``RedisAccessDenied`` and strict mode raise.

        A key with a write or an invalidation still waiting for L2 (after an
        outage, or write-back before a live strategy switch) is queued behind
        it instead, so the flusher sends them in order and this call waits on
        nothing.
        """
        state = self.set_begin(namespace, key, value, ttl, cache_type, tags, source)
        core = self._core
        if core.writes_l2_now and not state.record:  # the level gained L2 since set_begin looked
            state = self.set_begin(namespace, key, value, ttl, cache_type, tags, source)
        if not core.writes_l2_now:
            self.set_end(state)
            return None
        if len(self._pending) and self._queued_behind(state.skey, state.key):
            self._defer([_pending_write(state)])  # the flusher tells coherence about it when it sends it
            self.set_end(state)
            return None
        # Other processes' copies follow Redis; this one's (or the next read's) is checked against the echo,
        # unless the write went on the invalidation connection, which hears no echo of its own writes.
        coherence = core.coherence
        writer = None if coherence is None else coherence.writer
        if state.tags:
            memberships = [Membership(tag_key, state.skey, state.expires_at_ms) for tag_key in state.tags]
            now_ms = int(core.clock() * 1000)
            if writer is None:
                call = L2Call(L2Op.SET_TAGGED, ([(state.skey, state.record, state.seconds)], memberships, now_ms))
            else:
                call = L2Call(L2Op.SET_TAGGED_QUIET, (state.skey, state.record, state.seconds, memberships, now_ms,
                                                      writer))
        elif writer is None:
            call = new_tuple(L2Call, (L2Op.SET, (state.skey, state.record, state.seconds)))
        else:
            call = new_tuple(L2Call, (L2Op.SET_QUIET, (state.skey, state.record, state.seconds, writer)))
        quiet = False
        if coherence is not None:
            coherence.write_begin(state.skey, quiet=writer is not None)
        try:
            quiet = (yield call) is True
        except BackendError as exc:
            if self._l2_write_failed([_pending_write(state)], exc):
                self.set_end(state)
            if coherence is not None:
                coherence.write_end(state.skey, None)
            core.failures.l2_failed("set", exc, _KEPT)
            return None
        except BaseException:
            if coherence is not None:
                coherence.write_end(state.skey, None)
            raise
        self._metrics.stored("l2")
        self.set_end(state)
        if coherence is not None:
            coherence.write_end(state.skey, state.record, quiet=quiet)
        return None

    def _queued_behind(self, skey: str, key: str) -> bool:
        """Whether L2 still waits for a write, a delete or a pattern invalidation covering ``skey``."""
        pending = self._pending
        return pending.get(skey) is not None or pending.blocked(skey, key)

    def _defer(self, writes: list[PendingWrite]) -> None:
        """Queue write-through writes for the flusher; like write-back ones, their tags are indexed here."""
        core = self._core
        for write in writes:
            self._pending.put(write)
            if write.tags:  # Redis does not know this membership yet: invalidate_tags finds it here
                core.tag_index.add(write.tags, (write.key,), core.held_locally)

    def _l2_write_failed(self, writes: list[PendingWrite], exc: BackendError) -> bool:
        """Keep the tiers together after failed write-through writes.

        An outage queues the writes for the flusher (True: L1 may take the new
        values); a refusal drops their L1 copies (False).
        """
        if isinstance(exc, ServerRefusal):
            self._metrics.error("write_through_refused", len(writes))
            l1 = self._l1
            for write in writes:
                self._gens.bump(write.key)
                if l1 is not None:
                    l1.delete(write.key)
            return False
        self._metrics.error("write_through_deferred", len(writes))
        self._defer(writes)
        return True

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
        locate, resolve_ttl = self._locator.locate, entries.resolve_ttl
        keyed = []
        for key, value in items.items():
            if type(key) is not str:
                key = check_key(key)
            _, skey, hashed = locate(namespace, key, cache_type)  # the key's checks, and remembered bases
            keyed.append((skey, hashed, key, value))
        prepared: list[tuple[str, str, bool, Any, float, bytes, int]]
        if keyed and not entries.ttl_jitter:  # one TTL for the batch: one expiry and one record header
            seconds = resolve_ttl(spec, ttl)
            records, expires_at_ms = entries.encode_many(spec, keyed, seconds)
            prepared = [
                (key, skey, hashed, value, seconds, record, expires_at_ms)
                for (skey, hashed, key, value), record in zip(keyed, records)
            ]
        else:
            prepared = []
            for skey, hashed, key, value in keyed:
                seconds = resolve_ttl(spec, ttl)
                record, expires_at_ms = entries.encode(skey, hashed, key, spec, value, seconds)
                prepared.append((key, skey, hashed, value, seconds, record, expires_at_ms))
        strategy = core.strategy
        failure: BackendError | None = None
        coherence = core.coherence  # as in plan_set; writes queued behind others tell it when flushed
        direct: list[tuple[str, str, bool, Any, float, bytes, int]] = []
        written = False
        if core.use_l2 and strategy is not WriteStrategy.WRITE_BACK and prepared:
            direct = prepared
            if len(self._pending):  # as in plan_set: keys with something still on its way queue behind it
                direct = []
                for p in prepared:
                    if self._queued_behind(p[1], p[0]):
                        self._defer([new_tuple(PendingWrite, (p[1], p[5], p[6], tag_keys))])
                    else:
                        direct.append(p)
            l2_items = [(p[1], p[5], p[4]) for p in direct]
            if tag_keys:
                memberships = [Membership(t, p[1], p[6]) for p in direct for t in tag_keys]
                call = L2Call(L2Op.SET_TAGGED, (l2_items, memberships, int(core.clock() * 1000)))
            else:
                call = L2Call(L2Op.SET_MANY, (l2_items,))
            if coherence is not None:
                coherence.writes_begin([p[1] for p in direct])
            try:
                if direct:
                    yield call
            except BackendError as exc:
                failure = exc
                if not self._l2_write_failed([PendingWrite(p[1], p[5], p[6], tag_keys) for p in direct], exc):
                    gone = {p[1] for p in direct}
                    prepared = [p for p in prepared if p[1] not in gone]  # refused: those L1 copies went
            except BaseException:
                if coherence is not None:
                    coherence.writes_end([(p[1], None) for p in direct])
                raise
            else:
                self._metrics.stored("l2", len(direct))
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
            coherence.writes_end([(p[1], p[5] if written else None) for p in direct])
        self._metrics.timed("set_many", time.perf_counter_ns() - started)
        if failure is not None:
            core.failures.l2_failed("set_many", failure, _KEPT)
        return None

    def plan_delete(self, namespace: str, key: str, cache_type: str | None) -> Plan[bool]:
        """Delete one key. The caller holds the write-back flush lock (see the facades).

        When L2 cannot be reached, the delete is queued until it lands (and
        counted as ``invalidation_deferred``); the result then says whether
        L1 or the queue held the key.
        """
        core = self._core
        spec = self._locator.spec(cache_type)
        skey, _hashed = self._locator.storage_key(namespace, spec, key)
        started = time.perf_counter_ns()
        prior = self._pending.get(skey)
        removed = self._pending.discard(skey) and prior is not None and bool(prior.record)
        try:
            if core.use_l2:
                try:
                    count = yield L2Call(L2Op.DELETE, (skey,))
                except BackendError as exc:
                    if not isinstance(exc, RedisAccessDenied):  # a refusal for this user would never land
                        # Kept until it lands; reads skip L2 for this key meanwhile (see ReadPlans.pending_value).
                        self._pending.put(tombstone(skey))
                        self._metrics.error("invalidation_deferred")
                    core.failures.l2_failed("delete", exc, _KEPT)
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
