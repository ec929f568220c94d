"""The per-primary listeners' bookkeeping, without I/O: live only when every primary is covered."""

from __future__ import annotations

from qcache.cache.coherence import L1Coherence
from qcache.cache.generations import WriteGenerations
from qcache.l2.cluster_tracking import _Coverage, _NodeSink
from qcache.memory.store import MemoryStore


def test_coherence_is_live_only_while_every_primary_has_a_live_listener() -> None:
    l1 = MemoryStore(max_entries=10, max_bytes=1 << 16)
    sink = L1Coherence(l1, WriteGenerations())
    coverage = _Coverage(sink)
    a, b = _NodeSink("a", coverage, sink), _NodeSink("b", coverage, sink)
    coverage.want({"a", "b"})
    assert coverage.incomplete() and not sink.live
    a.restored()
    assert coverage.incomplete() and not sink.live
    b.restored()
    assert not coverage.incomplete() and sink.live
    l1.set("k", "v", 10, ttl=60)
    b.lost()  # one primary's reports may be missed from now on: everything goes
    assert len(l1) == 0 and not sink.live and coverage.incomplete()
    coverage.want({"a", "c"})  # b failed over to c
    assert coverage.incomplete() and not sink.live
    l1.set("k", "v", 10, ttl=60)
    _NodeSink("c", coverage, sink).restored()  # what L1 took in while nobody listened on c goes too
    assert len(l1) == 0 and sink.live and not coverage.incomplete()
    a.invalidated(None)
    assert sink.stats().resets == 5  # 3 restorations, 1 loss, 1 FLUSHALL
