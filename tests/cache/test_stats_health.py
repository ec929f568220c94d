"""stats(): what happened, per tier and operation; health(): healthy, degraded or unhealthy, and why."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcache.cache.metrics import LatencyHistogram

from .conftest import MakeCache, build_config

pytestmark = pytest.mark.redis


async def test_stats_report_hits_and_misses_per_tier(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    await cache.set_many({"a": 1, "b": 2}, ttl=60)
    assert cache.core.l1 is not None
    cache.core.l1.delete(cache.storage_key("b"))  # "b" now lives in L2 only
    assert await cache.get("a") == 1  # L1 hit
    assert await cache.get("b") == 2  # L1 miss, L2 hit (fills L1)
    assert await cache.get("c") is None  # miss in both
    stats = await cache.stats()
    assert stats["hits"] == {"l1": 1, "l2": 1}
    assert stats["misses"] == {"total": 1, "l1": 2, "l2": 1}
    assert stats["lookups"] == 3
    assert stats["hit_rate"] == pytest.approx(2 / 3)

    cache.core.l1.delete(cache.storage_key("a"))
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2}
    stats = await cache.stats()
    # get_many: "b" from L1, "a" from L2; "c" and "d" missed L1 and then L2.
    assert stats["hits"] == {"l1": 2, "l2": 2}
    assert stats["misses"] == {"total": 3, "l1": 5, "l2": 3}
    assert stats["lookups"] == 7


async def test_stats_report_sets_sizes_errors_and_latency(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", MEMORY_CACHE_MAX_SIZE=10)
    for i in range(15):
        await cache.set(f"k{i}", "v" * 50, ttl=60)
    for i in range(15):
        await cache.get(f"k{i}")
    await cache.delete("k14")
    stats = await cache.stats()
    assert stats["sets"] == {"l1": 15, "l2": 15}
    assert stats["deletes"] == 1
    l1 = stats["l1"]
    # The reads refilled L1 from L2 in key order, so it ends with k5..k14; the delete drops k14.
    assert l1["entries"] == 9
    assert l1["max_entries"] == 10
    assert 0 < l1["bytes"] <= 10 * 200
    assert l1["evictions"] >= 5
    latency = stats["latency"]
    assert set(latency) >= {"get", "set", "delete"}
    for op, expected_count in (("get", 15), ("set", 15), ("delete", 1)):
        summary = latency[op]
        assert summary["count"] == expected_count
        assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"] * 1.0001
    assert stats["errors"] == {}
    assert stats["pending_writes"] == 0 and stats["writeback_dropped"] == 0
    assert stats["l2_breaker"] == "closed"


async def test_compression_ratio_reports_what_compression_saved(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    assert (await cache.stats())["compression_ratio"] is None  # nothing encoded yet
    await cache.set("doc", {"text": "all work and no play " * 2000}, ttl=60, cache_type="search")
    assert (await cache.stats())["compression_ratio"] > 10
    plain = await make_cache("BOTH", CACHE_COMPRESSION_ENABLED="false")
    await plain.set("doc", {"text": "all work and no play " * 2000}, ttl=60, cache_type="search")
    assert (await plain.stats())["compression_ratio"] == pytest.approx(1.0, abs=0.01)


async def test_latency_histograms_stay_bounded(make_cache: MakeCache) -> None:
    cache = await make_cache("L1_MEMORY")
    await cache.set("k", 1, ttl=60)
    size = len(LatencyHistogram().counts)
    for _ in range(10_000):  # past the lock-free queue's fold batch, too
        await cache.get("k")
    assert (await cache.stats())["latency"]["get"]["count"] == 10_000
    assert len(cache.core.metrics._t.latency["get"].counts) == size  # fixed buckets, no sample list
    assert len(cache.core.metrics._l1_hits.samples) == 0  # the snapshot folded what was queued


async def test_disabled_metrics_record_no_lookups_but_still_count_errors(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", CACHE_METRICS_ENABLED="false")
    await cache.set("k", 1, ttl=60)
    for _ in range(10):
        await cache.get("k")
        await cache.get("missing")
    stats = await cache.stats()
    assert stats["lookups"] == 0
    assert stats["hits"] == {} and stats["misses"] == {}
    assert stats["latency"] == {}
    assert stats["l1"]["entries"] == 1  # sizes come from the tiers, not from metrics
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = build_config(
        f"redis://127.0.0.1:{port}/0", "dead", "L2_REDIS", "WRITE_THROUGH",
        CACHE_METRICS_ENABLED="false", REDIS_MAX_RETRIES=0,
    )
    dead = await make_cache(config=config)
    await dead.get("k")
    assert (await dead.stats())["errors"]["l2_error"] == 1  # health depends on these


# -- health --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["L1_MEMORY", "L2_REDIS", "BOTH"])
async def test_a_working_cache_is_healthy(make_cache: MakeCache, level: str) -> None:
    cache = await make_cache(level)
    report = await cache.health()
    assert report["status"] == "healthy"
    assert report["reasons"] == []
    if cache.core.use_l1:
        assert report["l1"]["status"] == "healthy"
    if cache.core.use_l2:
        assert report["l2"]["status"] == "healthy"
        assert report["l2"]["latency_ms"] > 0
    assert "timestamp" in report


async def test_slow_l2_against_the_latency_threshold_is_degraded(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", CACHE_LATENCY_THRESHOLD=0.000001)
    report = await cache.health()
    assert report["status"] == "degraded"
    assert report["l2"]["status"] == "healthy"  # reachable, only slow
    assert any("CACHE_LATENCY_THRESHOLD" in reason for reason in report["reasons"])


async def test_a_hit_rate_below_the_threshold_is_degraded(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", CACHE_HIT_RATE_THRESHOLD=0.5)
    await cache.set("hot", 1, ttl=60)
    for i in range(60):
        await cache.get("hot")
        await cache.get(f"cold{i}")  # 50% hit rate: at the threshold, fine
    assert (await cache.health())["status"] == "healthy"
    for i in range(20):
        await cache.get(f"colder{i}")
    report = await cache.health()
    assert report["status"] == "degraded"
    assert report["hit_rate"] == pytest.approx(60 / 140)
    assert any("CACHE_HIT_RATE_THRESHOLD" in reason for reason in report["reasons"])


async def test_too_few_lookups_do_not_judge_the_hit_rate(make_cache: MakeCache) -> None:
    # The hit rate is the subject: a probe slowed by a loaded machine (a cold cluster client) must not decide.
    cache = await make_cache("BOTH", CACHE_HIT_RATE_THRESHOLD=0.9, CACHE_LATENCY_THRESHOLD=1000,
                             CACHE_L2_TIMEOUT_MS=5000)
    for i in range(50):
        await cache.get(f"cold{i}")
    assert (await cache.health())["status"] == "healthy"


@pytest.mark.parametrize(("level", "status"), [("BOTH", "degraded"), ("L2_REDIS", "unhealthy")])
async def test_an_unreachable_l2_is_degraded_with_l1_and_unhealthy_without(
    make_cache: MakeCache, level: str, status: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = build_config(f"redis://127.0.0.1:{port}/0", "dead", level, "WRITE_THROUGH", REDIS_MAX_RETRIES=0)
    cache = await make_cache(config=config)
    report = await cache.health()
    assert report["status"] == status
    assert report["l2"]["status"] == "unhealthy"
    assert any(reason.startswith("L2 unreachable") for reason in report["reasons"])


# -- the lock-free hit path and the vectorised histogram ------------------------------------------


async def test_hits_from_many_threads_are_all_counted(make_cache: MakeCache, flavour: str) -> None:
    cache = await make_cache("BOTH")
    await cache.set_many({f"k{i}": i for i in range(8)}, ttl=60)
    per_worker = 3000  # well past the fold batch, so folds race with appends

    def work(facade: Any, worker: int) -> Any:
        if cache.is_async:

            async def body() -> None:
                for _ in range(per_worker):
                    await facade.get(f"k{worker % 8}")

            return body()
        for _ in range(per_worker):
            facade.get(f"k{worker % 8}")
        return None

    assert all(r is None for r in await cache.concurrently(8, work))
    stats = await cache.stats()
    assert stats["hits"]["l1"] == 8 * per_worker
    assert stats["latency"]["get"]["count"] == 8 * per_worker
    assert stats["lookups"] == 8 * per_worker


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(0, 2**40), st.sampled_from([0, 1, 7, 8, 9, 15, 16, 1023, 1024, 2**32 - 1])),
        max_size=300,
    )
)
def test_batched_histogram_recording_equals_one_by_one(samples: list[int]) -> None:
    one_by_one, batched = LatencyHistogram(), LatencyHistogram()
    for ns in samples:
        one_by_one.record(ns)
    batched.record_many(list(samples))
    assert batched.counts == one_by_one.counts
    assert (batched.total, batched.sum_ns, batched.max_ns) == (one_by_one.total, one_by_one.sum_ns, one_by_one.max_ns)
    assert all(type(c) is int for c in batched.counts)


async def test_health_never_evicts_a_real_entry_from_a_full_l1(make_cache: MakeCache) -> None:
    cache = await make_cache("L1_MEMORY", MEMORY_CACHE_MAX_SIZE=3)
    for i in range(3):
        await cache.set(f"k{i}", i, ttl=60)
    report = await cache.health()
    assert report["status"] == "healthy", report
    assert [await cache.get(f"k{i}") for i in range(3)] == [0, 1, 2]
