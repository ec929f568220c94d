"""Analytics: known snapshots give known aggregates; a real cache's snapshots round-trip through Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from qcache import CacheConfig, QueryCache
from qcache.cache.metrics import bucket_of
from qcache.cli import main as qcache_main
from qcache.ops.analytics import Snapshot, StatsRecorder, aggregate, read_snapshots, stream_key
from qcache.testing import RedisEndpoint

END = 1_800_000_000.0


def _snap(at: float, origin: str, lookups: int, hits: int, errors: int = 0,
          latencies_us: dict[int, int] | None = None) -> Snapshot:
    buckets = {str(bucket_of(us * 1000)): n for us, n in (latencies_us or {}).items()}
    return Snapshot(at=at, origin=origin, lookups=lookups, hits=hits, errors=errors, operations=lookups,
                    latency={"get": {"sum_ns": 0, "buckets": buckets}})


def test_known_snapshots_give_known_aggregates() -> None:
    start = END - 3600
    snapshots = [
        # Process A: a baseline before the window, then 1000 lookups (900 hits) in the first 5 minutes,
        # then 1000 (500 hits, 10 errors) in the last 5 minutes.
        _snap(start - 60, "A", 5000, 4000, 0, {100: 5000}),
        _snap(start + 200, "A", 6000, 4900, 0, {100: 5900, 2000: 100}),
        _snap(END - 10, "A", 7000, 5400, 10, {100: 6800, 2000: 200}),
        # Process B restarted in the middle: its counters went down, the new values are the deltas.
        _snap(start + 100, "B", 800, 100),
        _snap(start + 2000, "B", 200, 150, 0, {50: 200}),
    ]
    report = aggregate(reversed(snapshots), period="hourly", end=END)
    assert report.processes == 2 and report.snapshots == 3
    assert report.lookups == 1000 + 1000 + 200
    assert report.average_hit_rate == pytest.approx((900 + 500 + 150) / 2200)
    first, last = report.buckets[0], report.buckets[-1]
    assert (first.lookups, first.hit_rate) == (1000, pytest.approx(0.9))
    assert (last.lookups, last.hit_rate, last.error_rate) == (1000, pytest.approx(0.5), pytest.approx(0.01))
    assert report.peak_hit_rate == pytest.approx(0.9)
    # The first bucket's latencies: 900 at 100 us, 100 at 2 ms; p99 is 2 ms (within the 12.5% buckets).
    assert first.p50_ms == pytest.approx(0.1, rel=0.125) and first.p99_ms == pytest.approx(2.0, rel=0.125)
    assert report.error_rate == pytest.approx(10 / 2200)
    assert report.trend.hit_rate_change is not None and report.trend.hit_rate_change < 0
    assert "hit rate down" in report.trend.summary


def test_an_empty_window_reports_nothing_rather_than_zeros() -> None:
    report = aggregate([_snap(END - 10 * 86_400, "A", 10, 5)], period="daily", end=END)
    assert report.lookups == 0 and report.average_hit_rate is None and report.p99_ms is None
    assert len(report.buckets) == 24 and report.trend.hit_rate_change is None


@pytest.fixture
def cache(redis_endpoint: RedisEndpoint, key_prefix: str) -> Iterator[QueryCache]:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    with QueryCache(CacheConfig.from_env(None, {}, REDIS_URL=redis_endpoint.url, CACHE_KEY_PREFIX=prefix)) as c:
        yield c
        c.clear()


def test_a_recorder_stores_real_snapshots_and_the_report_counts_the_real_traffic(
    cache: QueryCache, redis_endpoint: RedisEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    key = stream_key(cache.config)
    recorder = StatsRecorder(cache, client, key, interval=60)
    before = recorder.record_once()
    cache.set("a", 1, cache_type="search")
    for _ in range(9):
        cache.get("a", cache_type="search")
    cache.get("missing", cache_type="search")
    recorder.record_once()
    snapshots = read_snapshots(client, key, since=before.at - 1)
    assert [s.lookups for s in snapshots] == [0, 10]
    report = aggregate(snapshots, period="hourly", end=snapshots[-1].at + 1)
    assert report.lookups == 10 and report.average_hit_rate == pytest.approx(0.9)
    assert report.p99_ms is not None and 0 < report.p99_ms < 100
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", redis_endpoint.url)
    monkeypatch.setenv("CACHE_KEY_PREFIX", cache.config.core.key_prefix)
    assert qcache_main(["analytics", "hourly", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lookups"] == 10
    assert qcache_main(["analytics", "daily"]) == 0
    assert "hit rate average 90.0%" in capsys.readouterr().out
    client.delete(key)
    client.close()


def test_a_recorder_never_raises_into_the_service(redis_server_factory, key_prefix: str) -> None:  # type: ignore[no-untyped-def]
    server = redis_server_factory()
    client = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=0.5, socket_connect_timeout=0.5,
                         retry=Retry(NoBackoff(), 0))
    with QueryCache(CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY")) as cache:
        recorder = StatsRecorder(cache, client, "k:stats", interval=0.05).start()
        server.kill()
        for _ in range(200):
            if recorder.failures >= 1:
                break
            time.sleep(0.05)
        recorder.stop()
        assert recorder.failures >= 1  # counted and logged, never raised
    client.close()
