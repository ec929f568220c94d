"""Invalidation: ``invalidate_pattern`` and ``clear`` over every tier, confined to one namespace."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from qcache.cache.keys import HASHED_MARK
from qcache.cache.plans import L2Call, Plan
from qcache.cache.record import unpack_record
from qcache.cache.writeback import Matcher, PendingPattern
from qcache.codec import CodecIntegrityError
from qcache.errors import BackendError, RedisAccessDenied
from qcache.l2.glob import compile_glob, escape_glob
from qcache.l2.protocol import L2Op
from qcache.memory.store import StoredEntry

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

def _meta_key(entry: StoredEntry | None) -> str | None:
    """The caller key the facade keeps in an L1 entry's meta slot (hashed keys only)."""
    meta = entry.meta if entry is not None else None
    return meta if isinstance(meta, str) else None


def _record_key(record: bytes) -> str | None:
    """The caller key embedded in an L2 record, or None (plain key, or not a record)."""
    try:
        return unpack_record(record).caller_key
    except CodecIntegrityError:
        return None


def _no_caller_key() -> str | None:
    return None


def key_matcher(base: str, pattern: str, type_name: str | None) -> Matcher:
    """Whether a storage key of namespace ``base`` holds a caller key matching the glob ``pattern``.

    Storage keys are ``<base><type>:<key>``; type names hold no ``:``, so the
    first ``:`` after the base ends the type. Hashed keys are judged by the
    caller key the second argument finds (from L1 or the record), never by the hash.
    """
    regex = compile_glob(pattern)
    start = len(base)

    def matches(skey: str, caller_key: Callable[[], str | None]) -> bool:
        if not skey.startswith(base):
            return False
        stored_type, colon, key_part = skey[start:].partition(":")
        if not colon or (type_name is not None and stored_type != type_name):
            return False
        if key_part.startswith(HASHED_MARK):
            original = caller_key()
            if original is None:
                return False
            key_part = original
        return regex.fullmatch(key_part) is not None

    return matches


class InvalidationPlans:
    """Removal of every key matching a glob, in L1, the write-back queue and L2."""

    __slots__ = ("_core",)

    def __init__(self, core: CacheCore) -> None:
        self._core = core

    def plan_invalidate(self, namespace: str, pattern: str, cache_type: str | None) -> Plan[int]:
        """Delete the namespace's keys that match ``pattern`` as the caller gave them.

        ``pattern`` is a Redis glob on the caller's key (``"features:*AAPL*"``
        matches the key ``"features:AAPL:1"``), in every cache type, or only
        in ``cache_type`` when one is given. On L2 it is appended to the
        escaped namespace base, so it can never reach keys of another
        namespace. Returns how many distinct keys were removed from any tier.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty str")
        type_name = None if cache_type is None else self._core.spec(cache_type).name
        return (yield from self._remove_matching(namespace, pattern, type_name))

    def plan_clear(self, namespace: str) -> Plan[int]:
        """Delete every key of ``namespace`` in both tiers (SCAN + UNLINK, never FLUSHDB)."""
        return (yield from self._remove_matching(namespace, "*", None))

    def _remove_matching(self, namespace: str, pattern: str, type_name: str | None) -> Plan[int]:
        """Remove keys of ``namespace`` (of ``type_name``, or any type) whose caller key matches, in every tier."""
        core = self._core
        base = core.locator.namespace_base(namespace)
        matches = key_matcher(base, pattern, type_name)
        removed: set[str] = set()

        l1 = core.l1 if core.use_l1 else None
        if l1 is not None:
            store = l1

            def l1_doomed(skey: str) -> bool:
                hit = matches(skey, lambda: _meta_key(store.peek(skey)))
                if hit:
                    removed.add(skey)
                return hit

            store.delete_where(l1_doomed)
        # Pending writes go (tombstones stay: their key was deleted, and counted, before).
        removed.update(
            core.pending.discard_where(lambda w: bool(w.record) and matches(w.key, lambda: _record_key(w.record)))
        )
        # Keys removed only from L2: with the L1 and queue ones they make the exact distinct count.
        l2_only = 0
        try:
            if core.use_l2:
                try:
                    l2_only = yield from self._remove_matching_l2(base, pattern, type_name, removed, matches)
                except BackendError as exc:
                    if not isinstance(exc, RedisAccessDenied):  # a refusal for this user would never land
                        # Kept until it lands: reads skip L2 for the keys it covers meanwhile.
                        core.pending.add_pattern(PendingPattern(base, pattern, type_name, matches))
                        core.metrics.error("invalidation_deferred")
                    core.failures.l2_failed("invalidate", exc)
        finally:
            # Reads in flight may have fetched a doomed value from L2: no fill from them, and a
            # second pass over L1 drops what they filled before the bump (see ReadPlans.fill_l1).
            core.generations.bump_all()
            if l1 is not None:
                store = l1
                store.delete_where(lambda skey: matches(skey, lambda: _meta_key(store.peek(skey))))
        count = len(removed) + l2_only
        core.metrics.deleted(count)
        return count

    def _remove_matching_l2(
        self, base: str, pattern: str, type_name: str | None, removed: set[str], matches: Matcher
    ) -> Plan[int]:
        """The L2 part of :meth:`_remove_matching`; returns how many keys only L2 held."""
        batch_size = self._core.batch_size
        l2_only = 0
        # Without a type, "*:" spans every type name, but a Redis "*" also crosses ':' and so
        # finds a superset (a key "a:b" of type t is "t:a:b"): every key found is judged again
        # by `matches`, which splits the type off at its first ':' (type names hold none).
        types = escape_glob(base) + ("*" if type_name is None else escape_glob(type_name)) + ":"
        scanned = yield L2Call(L2Op.SCAN_KEYS, (types + pattern,))
        # Hashed keys are judged by the caller key in their record, below, never by the hash.
        plain = [
            k for k in scanned
            if not k[len(base) :].partition(":")[2].startswith(HASHED_MARK) and matches(k, _no_caller_key)
        ]
        hashed = yield L2Call(L2Op.SCAN_KEYS, (types + escape_glob(HASHED_MARK) + "*",))
        # Hashed keys already judged through L1 or the write-back queue need no record
        # read, but their L2 copies must go too.
        plain.extend(k for k in hashed if k in removed)
        candidates = [k for k in hashed if k not in removed]
        for start in range(0, len(candidates), batch_size):
            chunk = candidates[start : start + batch_size]
            raws = yield L2Call(L2Op.GET_MANY, (chunk,))
            plain.extend(
                skey
                for skey, raw in zip(chunk, raws)
                if raw is not None and matches(skey, partial(_record_key, raw))
            )
        # UNLINK answers with a count, not with which keys existed: keys already counted
        # (removed from L1 or the queue) go in their own batches so the count stays exact.
        known = [k for k in plain if k in removed]
        fresh = [k for k in plain if k not in removed]
        for keys, counted in ((known, True), (fresh, False)):
            for start in range(0, len(keys), batch_size):
                chunk = keys[start : start + batch_size]
                gone = yield L2Call(L2Op.DELETE, tuple(chunk))
                if not counted:
                    l2_only += int(gone)
        return l2_only

    def plan_drain(self, pending: PendingPattern) -> Plan[None]:
        """Send a pattern invalidation that could not reach L2 before; BackendError if it still cannot."""
        yield from self._remove_matching_l2(pending.base, pending.pattern, pending.type_name, set(), pending.matches)
        self._core.pending.pattern_done(pending)
