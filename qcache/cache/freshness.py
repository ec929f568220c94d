"""``validate``: whether an entry still matches the data it was computed from, dropping it when not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qcache.cache.content import content_hash
from qcache.cache.plans import L2Call, Plan
from qcache.cache.record import unpack_record
from qcache.codec import CodecIntegrityError
from qcache.errors import BackendError
from qcache.l2.protocol import L2Op

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore


class FreshnessPlans:
    """Content validation of one cache (see :mod:`qcache.cache.content`)."""

    __slots__ = ("_core",)

    def __init__(self, core: CacheCore) -> None:
        self._core = core

    def plan_validate(self, namespace: str, key: str, source: object, cache_type: str | None) -> Plan[bool]:
        """True when ``key``'s entry was stored from data with the digest of ``source``.

        Otherwise (the data changed, the entry was stored without ``source=``,
        or it cannot be read) the entry is deleted from every tier, as
        ``delete`` does, and the answer is False: the caller recomputes.
        The caller holds the write-back flush lock (see the facades).
        """
        core = self._core
        digest = content_hash(source)  # a source that cannot be hashed fails before any tier is touched
        spec = core.spec(cache_type)
        skey, hashed = core.storage_key(namespace, spec, key)
        stored: bytes | None = None
        pending = core.pending.get(skey)
        if pending is not None:
            stored = self._digest_of(pending.record, key if hashed else None)
        elif core.use_l2:
            try:
                raw = yield L2Call(L2Op.GET, (skey,))
            except BackendError as exc:
                core.failures.l2_failed("validate", exc)
                raw = None
            if raw is not None:
                stored = self._digest_of(raw, key if hashed else None)
        elif core.l1 is not None and skey in core.l1:
            stored = core.local_digests.get(skey)
        if stored is not None and stored == digest:
            return True
        yield from core.writes.plan_delete(namespace, key, cache_type)
        return False

    def _digest_of(self, record: bytes, caller_key: str | None) -> bytes | None:
        """The source digest of a live record of ``caller_key`` (hashed keys), or None."""
        try:
            parsed = unpack_record(record)
        except CodecIntegrityError:
            return None
        if parsed.caller_key != caller_key or parsed.expires_at_ms <= self._core.clock() * 1000:
            return None
        return parsed.source_digest
