"""A cache entry as L2 stores it: the codec's bytes in a record with the entry's expiry."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from typing import Any

from qcache.cache.inputs import check_ttl
from qcache.cache.locator import TypeSpec
from qcache.cache.metrics import CacheMetrics
from qcache.cache.plans import MISSING
from qcache.cache.record import pack_record, parse_record
from qcache.codec import CodecIntegrityError

logger = logging.getLogger("qcache")


class EntryCodec:
    """Encodes values into L2 records and back, with TTLs in the writer's wall-clock time.

    ``clock`` gives wall-clock seconds: the expiry stored in Redis must mean
    the same thing in every process. ``ttl_jitter`` follows the configuration.
    """

    __slots__ = ("_rng", "clock", "metrics", "ttl_jitter")

    def __init__(self, clock: Callable[[], float], metrics: CacheMetrics, rng: random.Random) -> None:
        self.clock = clock
        self.metrics = metrics
        self._rng = rng
        self.ttl_jitter = 0.0

    def resolve_ttl(self, spec: TypeSpec, ttl: object) -> float:
        """The TTL to store: the caller's or the type's, shortened by the configured jitter."""
        seconds = spec.ttl if ttl is None else check_ttl(ttl)
        if self.ttl_jitter:
            seconds *= 1.0 - self.ttl_jitter * self._rng.random()
        return seconds

    def encode(
        self, skey: str, hashed: bool, key: str, spec: TypeSpec, value: Any, ttl: float,
        source_digest: bytes | None = None,
    ) -> tuple[bytes, int]:
        """The L2 record for ``value`` and its absolute expiry in epoch milliseconds."""
        payload = spec.codec.encode(value, skey)
        expires_at_ms = int((self.clock() + ttl) * 1000) + 1
        record = pack_record(payload, expires_at_ms, key if hashed else None, math.ceil(ttl * 1000), source_digest)
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
