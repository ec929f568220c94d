"""The chaos fault: only a server the run started, killed or paused for real, and read off the timeline."""

from __future__ import annotations

import time

import pytest
import redis

from qcache.errors import ConfigError
from qcache.load.chaos import FaultTimes, chaos_report, inject_fault, owned_server
from qcache.load.histogram import SecondStats
from qcache.testing import RedisEndpoint, RedisServerProcess


def test_a_server_reached_through_redis_url_is_never_failed() -> None:
    foreign = RedisEndpoint(url="redis://127.0.0.1:6379/0", host="127.0.0.1", port=6379, password=None,
                            tls=None, method="url", server_version=None)
    with pytest.raises(ConfigError, match="only a Redis this run started itself.*REDIS_URL"):
        owned_server(foreign)
    with pytest.raises(ConfigError, match="must never kill or pause"):
        inject_fault(foreign, "kill", 0.1)


def test_kill_restarts_the_same_port_with_the_data_kept(redis_server_factory) -> None:  # type: ignore[no-untyped-def]
    server: RedisServerProcess = redis_server_factory(extra_config=("appendonly yes", "appendfsync always"))
    endpoint = server.endpoint
    client = redis.Redis(**endpoint.client_kwargs(), socket_timeout=2)
    client.set("chaos:key", b"kept")
    pid = server.pid
    times = inject_fault(endpoint, "kill", 0.3)
    try:
        assert server.is_running and server.pid != pid and server.port == endpoint.port
        assert times.restored_at - times.fault_at >= 0.3
        assert client.get("chaos:key") == b"kept"  # the append-only file brought it back
    finally:
        client.close()


def test_pause_stalls_clients_for_the_set_time(redis_server: RedisServerProcess) -> None:
    client = redis.Redis(**redis_server.endpoint.client_kwargs(), socket_timeout=5)
    try:
        times = inject_fault(redis_server.endpoint, "pause", 0.5, sleep=lambda s: None)
        start = time.perf_counter()
        client.get("chaos:any")
        stalled = time.perf_counter() - start
        assert 0.3 < stalled < 3.0, stalled
        assert times.mode == "pause"
    finally:
        client.close()


def test_bad_fault_settings_are_refused(redis_server: RedisServerProcess) -> None:
    with pytest.raises(ConfigError, match="unknown chaos mode"):
        inject_fault(redis_server.endpoint, "explode", 1.0)  # type: ignore[arg-type]  # the point
    with pytest.raises(ConfigError, match="positive"):
        inject_fault(redis_server.endpoint, "kill", 0)
    assert redis_server.is_running


def _second(count: int, errors: int, l2_hits: int, latency_us: int) -> SecondStats:
    stats = SecondStats(count=count, errors=errors, l2_hits=l2_hits)
    stats.histogram.record_value(latency_us, count)
    return stats


def test_the_report_reads_the_fault_window_and_the_recovery() -> None:
    start = 1_000
    timeline = [
        (1000, _second(100, 0, 50, 100)),
        (1001, _second(100, 0, 0, 5_000)),  # fault at 1001.2
        (1002, _second(100, 10, 0, 8_000)),  # restored at 1002.5
        (1003, _second(100, 0, 0, 200)),
        (1004, _second(100, 0, 40, 150)),  # L2 hits are back
        (1005, _second(100, 0, 60, 100)),
    ]
    report = chaos_report(FaultTimes("kill", 1001.2, 1002.5), start, timeline, caller_exceptions=0)
    assert report.fault_at_s == pytest.approx(1.2) and report.restored_at_s == pytest.approx(2.5)
    assert report.l2_recovery_s == pytest.approx(1.5)
    assert report.error_ratio == pytest.approx(10 / 400)
    assert 7_900 < report.p99_during_fault_us < 8_100
    assert 7_900 < report.max_during_fault_us < 8_100
    never = chaos_report(FaultTimes("kill", 1001.2, 1002.5), start, timeline[:4], caller_exceptions=3)
    assert never.l2_recovery_s is None and never.caller_exceptions == 3
