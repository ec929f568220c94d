"""L1 hits and memory-only sets: exact counts, one call in LATENCY_SAMPLE_EVERY timed, and the one-frame sync get."""

from __future__ import annotations

import threading

from qcache import CacheConfig, QueryCache
from qcache.cache.metrics import LATENCY_SAMPLE_EVERY, LatencyHistogram, SampledTally


def _cache(**settings: object) -> QueryCache:
    return QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY", **settings))


def test_a_take_shares_the_untimed_calls_among_the_samples() -> None:
    tally = SampledTally()
    for _ in range(10):
        tally.tick()
    tally.samples.extend([100, 300, 500])
    calls, samples, weights = tally.take()
    assert calls == 10 and samples == [100, 300, 500] and weights == [4, 3, 3]
    for _ in range(7):  # no sample since: the latest one stands for them
        tally.tick()
    assert tally.take() == (7, [500], [7])
    assert tally.take() == (0, [], [])


def test_calls_before_any_sample_wait_for_one() -> None:
    tally = SampledTally()
    tally.tick()
    assert tally.take() == (1, [], [])  # counted, not yet in a histogram
    tally.samples.append(42)
    assert tally.take() == (0, [42], None)  # one call, one sample
    tally.note(7)
    tally.note(9)
    assert tally.take() == (2, [7, 9], None)  # every call timed: one call per sample


def test_weighted_recording_counts_every_call_a_sample_stands_for() -> None:
    hist = LatencyHistogram()
    hist.record_many([1000, 2000], [3, 1])
    assert hist.total == 4 and hist.sum_ns == 5000 and hist.max_ns == 2000
    assert hist.percentile(0.5) < 1200 < hist.percentile(1.0)


def test_hits_and_sets_are_counted_exactly_and_timed_one_in_n() -> None:
    with _cache() as cache:
        cache.set("k", "v", ttl=60)
        calls = 10 * LATENCY_SAMPLE_EVERY + 3
        for _ in range(calls):
            assert cache.get("k") == "v"
        metrics = cache._core.metrics
        timed = len(metrics._l1_hits.samples)
        # The first hit, then one after every LATENCY_SAMPLE_EVERY tickets.
        assert 1 <= timed <= calls // LATENCY_SAMPLE_EVERY + 2
        stats = cache.stats()
        assert stats["hits"] == {"l1": calls}
        assert stats["latency_by_outcome"]["get"]["hit"]["count"] == calls
        assert stats["latency"]["get"]["count"] == calls
        assert stats["latency_sampling"] == {"get_l1_hit": LATENCY_SAMPLE_EVERY, "set_l1_only": LATENCY_SAMPLE_EVERY}
        for i in range(calls):
            cache.set(f"s{i}", i, ttl=60)
        stats = cache.stats()
        assert stats["sets"] == {"l1": calls + 1}
        assert stats["latency"]["set"]["count"] == calls + 1


def test_counts_stay_exact_while_threads_hit_and_snapshot() -> None:
    with _cache() as cache:
        cache.set("k", 1, ttl=60)
        per_thread, threads = 5000, 4
        snapshots: list[int] = []

        def hit() -> None:
            for _ in range(per_thread):
                cache.get("k")

        def watch() -> None:
            for _ in range(50):
                snapshots.append(cache.stats()["hits"].get("l1", 0))

        workers = [threading.Thread(target=hit) for _ in range(threads)] + [threading.Thread(target=watch)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert snapshots == sorted(snapshots)  # never counted back
        stats = cache.stats()
        assert stats["hits"] == {"l1": per_thread * threads}
        assert stats["latency"]["get"]["count"] == per_thread * threads


def test_the_sync_get_serves_hits_itself_and_hands_the_rest_to_the_method() -> None:
    with _cache() as cache:  # "search" is a built-in type
        assert "get" in vars(cache)  # the view's closure
        assert cache.get.__doc__ == QueryCache.get.__doc__
        cache.set("k", "v", ttl=60)
        cache.set("t", "typed", cache_type="search")
        assert cache.get("k") == "v"
        assert cache.get("t", cache_type="search") == "typed"
        assert cache.get("missing", "dflt") == "dflt"
        assert cache.get("k", cache_type="search") is None
        view = cache.for_project("acme")
        assert "get" in vars(view) and view.get("k") is None
        assert cache.for_project("acme").get is view.get  # one closure per namespace
        stats = cache.stats()
        assert stats["hits"] == {"l1": 2} and stats["misses"]["total"] == 3
        cache.config.update(CACHE_ENABLED=False)  # a live switch: the closure must follow it
        assert cache.get("k", "off") == "off"
        cache.config.update(CACHE_ENABLED=True)
    try:
        cache.get("k")
    except Exception as exc:  # closed: the method's error, not a value served from L1
        assert type(exc).__name__ == "CacheClosedError"
    else:
        raise AssertionError("a closed cache served a value")
