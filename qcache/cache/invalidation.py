"""Invalidation: ``invalidate_pattern`` and ``clear`` over every tier, confined to one namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from qcache.cache.keys import HASHED_MARK, VERSION_MARK
from qcache.cache.plans import L2Call, Plan
from qcache.cache.record import unpack_record
from qcache.cache.tags import TAG_TYPE
from qcache.codec import CodecIntegrityError
from qcache.errors import BackendError
from qcache.l2.glob import compile_glob, escape_glob
from qcache.l2.protocol import L2Op
from qcache.memory.store import MemoryStore, StoredEntry

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

#: Whether a storage key (whose caller key the second argument finds, for hashed keys) matches.
Matcher = Callable[[str, Callable[[], "str | None"]], bool]


def _meta_key(entry: StoredEntry | None) -> str | None:
    """The caller key the facade keeps in an L1 entry's meta slot (hashed keys only)."""
    meta = entry.meta if entry is not None else None
    return meta if isinstance(meta, str) else None


def _no_caller_key() -> str | None:
    """For plain keys, which never need their caller key to be matched."""
    return None


def _record_key(record: bytes) -> str | None:
    """The caller key embedded in an L2 record, or None (plain key, or not a record)."""
    try:
        return unpack_record(record).caller_key
    except CodecIntegrityError:
        return None


def _scan_glob(visible: str) -> str:
    """A SCAN glob (after the namespace base) that finds every key ``visible`` may match, in any schema version.

    ``"search:*"`` must also find ``search@<version>:...``: a literal type
    part gets a ``*`` before its colon; anything else is scanned as is (a
    leading glob already spans the version). What the scan over-finds is
    dropped by the exact match afterwards.
    """
    head, sep, rest = visible.partition(":")
    if sep and head and not any(ch in head for ch in "*?[\\"):
        return f"{head}*:{rest}"
    return visible


def _is_tag_set(base: str, skey: str) -> bool:
    """Whether ``skey`` (of the namespace starting with ``base``) is a tag's set, not an entry."""
    return skey.startswith(TAG_TYPE + ":", len(base))


class InvalidationPlans:
    """Removal of every key matching a glob or carrying a tag, in L1, the write-back queue and L2."""

    __slots__ = ("_core",)

    def __init__(self, core: CacheCore) -> None:
        self._core = core

    def plan_invalidate(self, namespace: str, pattern: str, cache_type: str | None) -> Plan[int]:
        """Delete the namespace's keys whose ``type:key`` (or ``key`` within ``cache_type``) matches.

        ``pattern`` is a Redis glob. On L2 it is appended to the escaped
        namespace base, so it can never reach keys of another namespace.
        Returns how many distinct keys were removed from any tier.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty str")
        visible = pattern if cache_type is None else f"{escape_glob(self._core.spec(cache_type).name)}:{pattern}"
        return (yield from self._remove_matching(namespace, visible))

    def plan_clear(self, namespace: str) -> Plan[int]:
        """Delete every key of ``namespace`` in both tiers (SCAN + UNLINK, never FLUSHDB), tag sets included."""
        return (yield from self._remove_matching(namespace, "*", clearing=True))

    def plan_invalidate_tags(self, namespace: str, tags: tuple[object, ...]) -> Plan[int]:
        """Delete the namespace's entries written with any of ``tags``; returns how many were removed.

        The entries come from the tags' sets in Redis and from this process's
        own index (L1 copies and write-back writes that may not be in Redis
        yet); the tags' sets go too. Counted as in :meth:`plan_invalidate`.
        """
        core = self._core
        tag_set_keys = core.tag_keys(namespace, tags)
        if not tag_set_keys:
            raise ValueError("invalidate_tags needs at least one tag")
        l1 = core.l1 if core.use_l1 else None
        doomed = core.tag_index.take(tag_set_keys)
        removed = self._drop_local(doomed, l1)
        l2_only = 0
        try:
            if core.use_l2:
                try:
                    members = yield L2Call(L2Op.TAG_MEMBERS, (tag_set_keys, int(core.clock() * 1000)))
                    doomed.update(members)
                    # Copies this process read from L2 without knowing their tags go as well.
                    removed |= self._drop_local(members, l1)
                    l2_only = yield from self._unlink_counted(list(members), removed)
                    yield L2Call(L2Op.DELETE, tag_set_keys)
                except BackendError as exc:
                    core.failures.l2_failed("invalidate_tags", exc)
        finally:
            # As in _remove_matching: no read in flight may fill L1 with a doomed value.
            for skey in doomed:
                core.generations.bump(skey)
            if l1 is not None:
                for skey in doomed:
                    l1.delete(skey)
        count = len(removed) + l2_only
        core.metrics.deleted(count)
        return count

    def _drop_local(self, skeys: Iterable[str], l1: MemoryStore | None) -> set[str]:
        """Remove ``skeys`` from L1 and the write-back queue; the ones that were there."""
        pending = self._core.pending
        removed = set()
        for skey in skeys:
            in_l1 = l1 is not None and l1.delete(skey)
            if pending.discard(skey) or in_l1:
                removed.add(skey)
        return removed

    def _unlink_counted(self, keys: list[str], removed: set[str]) -> Plan[int]:
        """UNLINK ``keys`` in batches; how many existed only in L2 (not among ``removed``).

        UNLINK answers with a count, not with which keys existed: keys already
        counted (removed from L1 or the queue) go in their own batches so the
        count stays exact.
        """
        batch_size = self._core.batch_size
        l2_only = 0
        known = [k for k in keys if k in removed]
        fresh = [k for k in keys if k not in removed]
        for batch, counted in ((known, True), (fresh, False)):
            for start in range(0, len(batch), batch_size):
                gone = yield L2Call(L2Op.DELETE, tuple(batch[start : start + batch_size]))
                if not counted:
                    l2_only += int(gone)
        return l2_only

    def _remove_matching(self, namespace: str, visible: str, *, clearing: bool = False) -> Plan[int]:
        """Remove keys of ``namespace`` whose ``type:key`` matches the glob ``visible``, in every tier.

        Tag sets are not entries: only ``clearing`` removes them.
        """
        core = self._core
        base = core.locator.namespace_base(namespace)
        regex = compile_glob(visible)
        removed: set[str] = set()

        def matches(skey: str, caller_key: Callable[[], str | None]) -> bool:
            if not skey.startswith(base):
                return False
            segment, _, key_part = skey[len(base) :].partition(":")
            type_name = segment.partition(VERSION_MARK)[0]  # every schema version's entries
            if key_part.startswith(HASHED_MARK):  # a hashed key: match the caller's key, not the hash
                original = caller_key()
                if original is None:
                    return False
                key_part = original
            return regex.fullmatch(f"{type_name}:{key_part}") is not None

        l1 = core.l1 if core.use_l1 else None
        if l1 is not None:
            store = l1

            def l1_doomed(skey: str) -> bool:
                hit = matches(skey, lambda: _meta_key(store.peek(skey)))
                if hit:
                    removed.add(skey)
                return hit

            store.delete_where(l1_doomed)
        removed.update(core.pending.discard_where(lambda w: matches(w.key, lambda: _record_key(w.record))))
        # Keys removed only from L2: with the L1 and queue ones they make the exact distinct count.
        l2_only = 0
        try:
            if core.use_l2:
                l2_only = yield from self._remove_matching_l2(base, visible, removed, matches, clearing)
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
        self, base: str, visible: str, removed: set[str], matches: Matcher, clearing: bool
    ) -> Plan[int]:
        """The L2 part of :meth:`_remove_matching`; returns how many keys only L2 held."""
        core = self._core
        batch_size = core.batch_size
        l2_only = 0
        try:
            scanned = yield L2Call(L2Op.SCAN_KEYS, (escape_glob(base) + _scan_glob(visible),))
            tag_sets = [k for k in scanned if _is_tag_set(base, k)]
            # Hashed keys are judged by the caller key in their record, below, never by the hash.
            plain = [
                k for k in scanned
                if not k[len(base) :].partition(":")[2].startswith(HASHED_MARK) and not _is_tag_set(base, k)
                and matches(k, _no_caller_key)
            ]
            hashed = yield L2Call(L2Op.SCAN_KEYS, (escape_glob(base) + "*:" + escape_glob(HASHED_MARK) + "*",))
            hashed = [k for k in hashed if not _is_tag_set(base, k)]
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
            l2_only = yield from self._unlink_counted(plain, removed)
            if clearing:
                for start in range(0, len(tag_sets), batch_size):
                    yield L2Call(L2Op.DELETE, tuple(tag_sets[start : start + batch_size]))
        except BackendError as exc:
            core.failures.l2_failed("invalidate", exc)
        return l2_only
