"""Background health checks: alerts once per state change, from the traffic since the last check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.cache.metrics import bucket_of
from qcache.cache.monitor import MIN_SAMPLES, Alert, AlertEvaluator
from qcache.testing import RedisServerProcess


def _stats(lookups: int, hits: int, errors: int = 0, latencies_us: dict[int, int] | None = None) -> dict[str, Any]:
    buckets = {str(bucket_of(us * 1000)): n for us, n in (latencies_us or {}).items()}
    return {"lookups": lookups, "hits": {"l1": hits}, "errors": {"l2_timeout": errors} if errors else {},
            "sets": {}, "deletes": 0, "latency_histograms": {"get": {"sum_ns": 0, "buckets": buckets}}}


HEALTHY = {"status": "healthy", "reasons": []}


def test_alerts_fire_once_on_breach_and_once_on_recovery() -> None:
    evaluator = AlertEvaluator(lambda: (10.0, 0.6))
    assert evaluator.update(HEALTHY, _stats(1000, 900, 0, {200: 1000})) == []
    # The next 1000 lookups hit only 30% and their p99 is 20 ms: two breaches.
    alerts = evaluator.update(HEALTHY, _stats(2000, 1200, 0, {200: 1500, 20_000: 500}))
    assert {(a.check, a.state) for a in alerts} == {("hit_rate", "breach"), ("latency", "breach")}
    hit = next(a for a in alerts if a.check == "hit_rate")
    assert hit.value == pytest.approx(0.3) and "below CACHE_HIT_RATE_THRESHOLD 0.6" in hit.message
    # Still bad: no repeat.
    assert evaluator.update(HEALTHY, _stats(3000, 1500, 0, {200: 2000, 20_000: 1000})) == []
    # Too little traffic to judge: the state stays.
    assert evaluator.update(HEALTHY, _stats(3000 + MIN_SAMPLES - 1, 1500, 0, {200: 2000, 20_000: 1000})) == []
    # Good again: both recover, once.
    recovered = evaluator.update(HEALTHY, _stats(5000, 3400, 0, {200: 4000, 20_000: 1000}))
    assert {(a.check, a.state) for a in recovered} == {("hit_rate", "recovered"), ("latency", "recovered")}
    assert evaluator.breached == {}


def test_status_and_error_rate_and_a_reset() -> None:
    evaluator = AlertEvaluator(lambda: (50.0, 0.0))
    alerts = evaluator.update({"status": "degraded", "reasons": ["L2 unreachable"]}, _stats(0, 0))
    assert [(a.check, a.state, a.message) for a in alerts] == [("status", "breach", "cache degraded: L2 unreachable")]
    errors = evaluator.update({"status": "degraded", "reasons": ["L2 unreachable"]}, _stats(1000, 1000, 100))
    assert [(a.check, a.state) for a in errors] == [("error_rate", "breach")]
    # Counters went down (metrics reset): the new values are the window, here error free.
    back = evaluator.update(HEALTHY, _stats(500, 500, 0))
    assert {(a.check, a.state) for a in back} == {("status", "recovered"), ("error_rate", "recovered")}


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.slow
def test_a_cache_checks_itself_and_calls_its_hooks(redis_server_factory: Callable[..., RedisServerProcess]) -> None:
    server = redis_server_factory()
    config = CacheConfig.from_env(None, {}, REDIS_URL=server.endpoint.url, CACHE_HEALTH_CHECK_INTERVAL=1,
                                  REDIS_MAX_RETRIES=0, REDIS_SOCKET_TIMEOUT=0.5, REDIS_CONNECTION_TIMEOUT=0.5)
    seen: list[Alert] = []
    with QueryCache(config) as cache:
        view = cache.for_project("acme")
        view.on_alert(seen.append)  # hooks are per cache, whichever view registers them
        remove = cache.on_alert(lambda alert: (_ for _ in ()).throw(RuntimeError("a broken hook")))
        assert _wait(lambda: cache.last_health() is not None, 5)
        assert cache.last_health()["status"] == "healthy" and seen == []  # type: ignore[index]
        server.kill()
        assert _wait(lambda: any(a.check == "status" for a in seen), 10), seen
        time.sleep(2.5)  # more checks, still down: no second alert
        assert [(a.check, a.state) for a in seen] == [("status", "breach")]
        assert "L2 unreachable" in seen[0].message
        assert cache.last_health()["breaches"] == [seen[0].message]  # type: ignore[index]
        remove()
        server.start()
        assert _wait(lambda: len(seen) == 2, 15), seen
        assert (seen[1].check, seen[1].state) == ("status", "recovered")


@pytest.mark.slow
async def test_the_async_cache_monitors_itself_once_entered(
    redis_server_factory: Callable[..., RedisServerProcess],
) -> None:
    server = redis_server_factory()
    config = CacheConfig.from_env(None, {}, REDIS_URL=server.endpoint.url, CACHE_HEALTH_CHECK_INTERVAL=1,
                                  REDIS_MAX_RETRIES=0, REDIS_SOCKET_TIMEOUT=0.5, REDIS_CONNECTION_TIMEOUT=0.5)
    seen: list[Alert] = []
    async with AsyncQueryCache(config) as cache:
        cache.on_alert(seen.append)
        server.kill()
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.05)
        assert [(a.check, a.state) for a in seen] == [("status", "breach")]
    assert cache.last_health() is not None


def test_nothing_is_reported_before_the_first_check() -> None:
    with QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY")) as cache:  # every 60 s by default
        assert cache.last_health() is None
        with pytest.raises(TypeError, match="callable"):
            cache.on_alert("not a hook")  # type: ignore[arg-type]  # the point


def test_an_unclosed_cache_is_still_collected_and_its_monitor_ends() -> None:
    import gc
    import threading
    import weakref

    cache = QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY", CACHE_HEALTH_CHECK_INTERVAL=1))
    monitor_thread = cache._shared.monitor._thread  # type: ignore[union-attr]  # the thread under test
    ref = weakref.ref(cache)
    del cache
    gc.collect()
    assert ref() is None  # the monitor does not keep the cache alive
    monitor_thread.join(5)
    assert not monitor_thread.is_alive() and monitor_thread not in threading.enumerate()
