"""Prometheus exposition: the series a real cache produces, parsed back as Prometheus would read them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qcache import CacheConfig, QueryCache
from qcache.ops.prometheus import CacheCollector, RedisInfoCollector, metrics_app, registry_for
from qcache.testing import RedisEndpoint


@pytest.fixture
def cache(redis_endpoint: RedisEndpoint, key_prefix: str) -> Iterator[QueryCache]:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    with QueryCache(CacheConfig.from_env(None, {}, REDIS_URL=redis_endpoint.url, CACHE_KEY_PREFIX=prefix)) as c:
        yield c
        c.clear()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_collector_exposes_what_the_cache_counted(cache: QueryCache) -> None:
    cache.set("a", 1, cache_type="search")
    assert cache.get("a", cache_type="search") == 1
    assert cache.get("missing", cache_type="search") is None
    samples = _samples(generate_latest(registry_for([CacheCollector.of(cache, cache_name="rag")])).decode())
    rag = frozenset({("cache", "rag")})
    assert samples[("qcache_lookups_total", rag)] == 2
    assert samples[("qcache_hits_total", rag | {("tier", "l1")})] == 1
    assert samples[("qcache_misses_total", rag)] == 1
    assert samples[("qcache_hit_ratio", rag)] == pytest.approx(0.5)
    assert samples[("qcache_l1_entries", rag)] == 1
    get_count = samples[("qcache_operation_duration_seconds_count", rag | {("operation", "get")})]
    get_sum = samples[("qcache_operation_duration_seconds_sum", rag | {("operation", "get")})]
    assert get_count == 2 and 0 < get_sum < 1
    p99 = samples[("qcache_operation_duration_quantile_seconds", rag | {("operation", "get"), ("quantile", "0.99")})]
    assert 0 < p99 < 1


def test_redis_gauges_and_a_down_redis(redis_endpoint: RedisEndpoint) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    samples = _samples(generate_latest(registry_for([RedisInfoCollector(client.info)])).decode())
    assert samples[("qcache_redis_up", frozenset())] == 1
    assert samples[("qcache_redis_used_memory_bytes", frozenset())] > 0
    assert ("qcache_redis_evicted_keys_total", frozenset()) in samples
    client.close()
    down = redis.Redis(port=1, socket_connect_timeout=0.5)
    assert _samples(generate_latest(registry_for([RedisInfoCollector(down.info)])).decode()) == {
        ("qcache_redis_up", frozenset()): 0.0
    }


def test_the_app_to_mount_serves_the_text_format(cache: QueryCache) -> None:
    cache.get("x", cache_type="search")
    app = metrics_app(cache)
    status: list[str] = []
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
                        lambda s, headers: status.append(s)))
    assert status == ["200 OK"] and b"qcache_lookups_total" in body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_serve_runs_on_loopback_until_stopped(redis_endpoint: RedisEndpoint, tmp_path: Path) -> None:
    port = _free_port()
    env = {"REDIS_URL": redis_endpoint.url, "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([sys.executable, "-m", "qcache.cli", "metrics", "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "qcache_redis_up 1.0" in body and "qcache_lookups_total" in body
    finally:
        server.terminate()
        server.wait(10)
