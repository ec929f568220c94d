"""stats(): latency split by outcome, a public reset, and CACHE_PERFORMANCE_MONITORING honoured."""

from __future__ import annotations

from qcache import CacheConfig, QueryCache
from qcache.testing import RedisEndpoint


def _cache(**settings: object) -> QueryCache:
    return QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY", **settings))


def test_reads_are_timed_by_outcome_as_well_as_together() -> None:
    with _cache() as cache:
        cache.set("k", 1)
        for _ in range(3):
            cache.get("k")
        cache.get("missing")
        stats = cache.stats()
        split = stats["latency_by_outcome"]["get"]
        assert (split["hit"]["count"], split["miss"]["count"]) == (3, 1)
        assert stats["latency"]["get"]["count"] == 4
        assert "set" not in stats["latency_by_outcome"]  # writes have no outcome to split by


def test_reset_starts_every_count_from_zero_for_every_view() -> None:
    with _cache() as cache:
        cache.set("k", 1)
        cache.for_project("acme").get("k")
        cache.for_project("acme").reset_stats()
        stats = cache.stats()
        assert stats["lookups"] == 0 and stats["latency"] == {} and stats["sets"] == {}
        cache.get("k")
        assert cache.stats()["lookups"] == 1


def test_performance_monitoring_off_keeps_counts_without_latencies() -> None:
    with _cache(CACHE_PERFORMANCE_MONITORING=False) as cache:
        cache.set("k", 1)
        for _ in range(5):
            cache.get("k")
        cache.get("missing")
        stats = cache.stats()
        assert stats["hits"] == {"l1": 5} and stats["misses"]["total"] == 1 and stats["sets"] == {"l1": 1}
        assert stats["latency"] == {} and stats["latency_by_outcome"] == {}


def test_log_level_and_debug_mode_set_the_qcache_loggers() -> None:
    import logging

    logger = logging.getLogger("qcache")
    before = logger.level
    try:
        with _cache(CACHE_LOG_LEVEL="ERROR"):
            assert logger.level == logging.ERROR
            assert not logging.getLogger("qcache.access").isEnabledFor(logging.WARNING)
        with _cache(CACHE_LOG_LEVEL="ERROR", CACHE_DEBUG_MODE=True):
            assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)


def test_health_reports_the_redis_figures(redis_endpoint: RedisEndpoint) -> None:
    with QueryCache(CacheConfig.from_env(None, {}, REDIS_URL=redis_endpoint.url)) as cache:
        l2 = cache.health()["l2"]
        assert l2["status"] == "healthy" and l2["used_memory"] > 0 and l2["connected_clients"] >= 1
        assert isinstance(l2["evicted_keys"], int) and l2["version"] and isinstance(l2["maxmemory"], int)


def test_the_memory_backend_answers_info_too() -> None:
    from qcache.l2 import MemoryBackend

    config = CacheConfig.from_env(None, {}, CACHE_LEVEL="L2_REDIS")
    with QueryCache(config, tier=MemoryBackend(namespace="codebase_rag:")) as cache:
        cache.set("k", 1)
        l2 = cache.health()["l2"]
        assert l2["version"] == "memory" and l2["used_memory"] > 0 and l2["maxmemory"] == 0
