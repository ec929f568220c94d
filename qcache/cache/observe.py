"""What a cache reports about itself: the health probe of both tiers and the stats snapshot."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import TYPE_CHECKING, Any

from qcache.cache.plans import L2Call, Plan
from qcache.cache.record import pack_record
from qcache.errors import QCacheError
from qcache.l2.protocol import L2Op

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore


class Observability:
    """Health and stats of one cache."""

    __slots__ = ("_core",)

    def __init__(self, core: CacheCore) -> None:
        self._core = core

    def plan_probe(self) -> Plan[dict[str, Any]]:
        """Health of both tiers: a probe key set, read and deleted in each, with latencies."""
        core = self._core
        report: dict[str, Any] = {"status": "healthy", "reasons": []}
        reasons: list[str] = report["reasons"]
        probe_key = f"{core.keys.prefix}:__health__:{random.getrandbits(64):016x}"
        probe_value = b"qcache-health-probe"
        l1 = core.l1
        if core.use_l1 and l1 is not None:
            started = time.perf_counter()
            try:
                l1_stats = l1.stats()
                room = l1_stats.bytes + len(probe_value) <= l1_stats.max_bytes
                if l1_stats.entries < l1_stats.max_entries and room:
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
        if core.use_l2:
            started = time.perf_counter()
            record = pack_record(probe_value, int((core.clock() + 10) * 1000))
            try:
                yield L2Call(L2Op.SET, (probe_key, record, 10.0))
                ok = (yield L2Call(L2Op.GET, (probe_key,))) == record
                yield L2Call(L2Op.DELETE, (probe_key,))
                error = None if ok else "L2 probe did not read back its value"
            except QCacheError as exc:
                ok, error = False, f"L2 unreachable: {exc}"
            latency_ms = (time.perf_counter() - started) * 1000 / 3
            report["l2"] = {"status": "healthy" if ok else "unhealthy", "latency_ms": latency_ms}
            if ok:
                # The seed's Redis figures (memory, clients, evictions): reported, not judged; a cache
                # at maxmemory that evicts is doing its job.
                try:
                    info = yield L2Call(L2Op.SERVER_INFO, ())
                    report["l2"].update(
                        version=info.version, used_memory=info.used_memory, maxmemory=info.maxmemory,
                        maxmemory_policy=info.maxmemory_policy, connected_clients=info.connected_clients,
                        evicted_keys=info.evicted_keys,
                    )
                except QCacheError as exc:  # INFO refused (an ACL user without it): the probe still stands
                    report["l2"]["info_error"] = str(exc)
            if not ok:
                reasons.append(error or "L2 probe failed")
                # With L1 in front the cache still serves; without it, it cannot.
                report["status"] = "degraded" if core.use_l1 and report["status"] == "healthy" else "unhealthy"
            elif latency_ms > core.latency_threshold_ms:
                reasons.append(
                    f"L2 latency {latency_ms:.1f} ms above CACHE_LATENCY_THRESHOLD {core.latency_threshold_ms:g} ms"
                )
                if report["status"] == "healthy":
                    report["status"] = "degraded"
        metrics = core.metrics.snapshot()
        report["hit_rate"] = metrics["hit_rate"]
        report["lookups"] = metrics["lookups"]
        if metrics["lookups"] >= 100 and metrics["hit_rate"] < core.hit_rate_threshold:
            reasons.append(
                f"hit rate {metrics['hit_rate']:.2f} below CACHE_HIT_RATE_THRESHOLD {core.hit_rate_threshold:g}"
            )
            if report["status"] == "healthy":
                report["status"] = "degraded"
        report["pending_writes"] = len(core.pending)
        return report

    def stats(self) -> dict[str, Any]:
        """Metrics plus tier sizes and write-back state."""
        core = self._core
        out = core.metrics.snapshot()
        codec = core.codec_stats.snapshot()
        # Serialized bytes over stored bytes, every value included (None before the first write).
        out["compression_ratio"] = codec.storage_ratio if codec.encoded else None
        out["enabled"] = core.enabled
        out["level"] = core.level.value
        out["write_strategy"] = core.strategy.value
        if core.l1 is not None:
            out["l1"] = dataclasses.asdict(core.l1.stats())
        out["pending_writes"] = len(core.pending)
        # Of those, deletes and pattern invalidations an outage held back: retried until they land.
        out["pending_invalidations"] = core.pending.invalidations
        out["writeback_dropped"] = core.pending.dropped
        return out
