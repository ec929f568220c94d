"""`qcache health` as a container probe: exit codes from real servers, bounded when Redis hangs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from qcache import CacheConfig
from qcache.cli import main as qcache_main
from qcache.ops.health import probe
from qcache.testing import RedisEndpoint, RedisServerProcess


@pytest.fixture(autouse=True)
def _no_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_healthy_exits_0(redis_endpoint: RedisEndpoint, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_endpoint.url)
    assert qcache_main(["health", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "healthy" and report["l2"]["status"] == "healthy"


def test_redis_down_is_degraded_exit_1(redis_server_factory: Callable[..., RedisServerProcess],
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    server = redis_server_factory()
    monkeypatch.setenv("REDIS_URL", server.endpoint.url)
    server.kill()
    assert qcache_main(["health"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("degraded") and "L2 unreachable" in out


def test_a_hung_redis_is_degraded_within_the_l2_deadline(
    redis_server_factory: Callable[..., RedisServerProcess]
) -> None:
    server = redis_server_factory()
    client = redis.Redis(**server.endpoint.client_kwargs())
    client.client_pause(4000, all=True)  # every client of the server stalls for 4 s
    started = time.monotonic()
    # As a dead Redis: the probe's L2 calls end at CACHE_L2_TIMEOUT_MS, long before the probe's own timeout.
    result = probe(CacheConfig.from_env(None, {}, REDIS_URL=server.endpoint.url, CACHE_L2_TIMEOUT_MS=300), timeout=3.0)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1 and "L2 unreachable" in result.report["reasons"][0]
    assert elapsed < 1.5
    client.close()


def test_a_health_check_that_hangs_is_unhealthy_within_the_timeout(
    redis_server_factory: Callable[..., RedisServerProcess]
) -> None:
    server = redis_server_factory()
    client = redis.Redis(**server.endpoint.client_kwargs())
    client.client_pause(4000, all=True)
    started = time.monotonic()
    result = probe(CacheConfig.from_env(None, {}, REDIS_URL=server.endpoint.url, CACHE_L2_TIMEOUT_MS=3000), timeout=1.0)
    elapsed = time.monotonic() - started
    assert result.exit_code == 2 and "did not finish within 1 s" in result.report["reasons"][0]
    assert elapsed < 2.0
    client.close()


def test_bad_configuration_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_PORT", "not-a-port")
    assert qcache_main(["health"]) == 2
    assert "REDIS_PORT" in capsys.readouterr().err
    with pytest.raises(ValueError, match="positive"):
        probe(CacheConfig(), timeout=0)
