"""Maintenance: expired tag members reclaimed in Redis, size advice from measured figures, the schedule."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from qcache import CacheConfig, QueryCache
from qcache.cache.sampling import AccessSample
from qcache.cli import main as qcache_main
from qcache.l2.tagging import GRACE_MS
from qcache.ops.maintenance import Job, MaintenanceSchedule, run_maintenance
from qcache.sim.engine import simulate
from qcache.sim.sources import Trace
from qcache.testing import RedisEndpoint

pytestmark = pytest.mark.redis


class Wall:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _config(**settings: Any) -> CacheConfig:
    return CacheConfig.from_env(None, {}, **settings)


def test_expired_members_leave_every_tag_set(redis_endpoint: RedisEndpoint, key_prefix: str) -> None:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    wall = Wall()
    client = redis.Redis(**redis_endpoint.client_kwargs())
    config = _config(REDIS_URL=redis_endpoint.url, CACHE_KEY_PREFIX=prefix, CACHE_LEVEL="L2_REDIS")
    try:
        with QueryCache(config, clock=wall) as cache:
            for i in range(30):
                cache.for_project("p1" if i % 2 else "p2").set(f"k{i}", i, ttl=5, tags=("a", "b"))
            cache.set("keep", 1, ttl=3600, tags=("a",))
            wall.now += 5 + GRACE_MS / 1000 + 1
            report = run_maintenance(cache, client=client, clock=wall)
            assert (report.tag_sets_scanned, report.tag_members_pruned) == (5, 60)
            sets = sorted(client.scan_iter(match=f"{prefix}:*:~tag:*", _type="zset"))
            assert [client.zcard(k) for k in sets] == [1]  # only "keep" is left, in tag "a" of "_"
            assert report.errors == []
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


def test_l1_expired_entries_are_reclaimed() -> None:
    with QueryCache(_config(CACHE_LEVEL="L1_MEMORY")) as cache:
        for i in range(20):
            cache.set(f"k{i}", i, ttl=0.01)
        import time
        time.sleep(0.05)
        assert run_maintenance(cache).l1_expired_removed == 20


def _zipf_reads(cache: QueryCache, keys: int, reads: int, seed: int) -> list[int]:
    """Read (and fill on a miss) Zipf-distributed keys; the keys read, in order."""
    rng = np.random.default_rng(seed)
    sequence = (rng.zipf(1.2, reads) % keys).tolist()
    for key in sequence:
        if cache.get(f"k{key}") is None:
            cache.set(f"k{key}", 1)
    return sequence


def test_the_sampled_reads_keep_every_access_of_the_sampled_keys() -> None:
    sample = AccessSample(0.25)
    for _ in range(3):
        sample.record("_", None, range(4000))
    trace = sample.trace()
    counts = np.unique(trace, return_counts=True)[1]
    assert set(counts.tolist()) == {3}
    assert 800 < len(counts) < 1200  # about a quarter of the keys


def test_advice_comes_from_simulating_the_sampled_reads() -> None:
    """The advised size reaches the target on the whole workload, of which the cache sampled 30% of the keys."""
    advised = {}
    for keys in (2000, 20_000):
        config = _config(CACHE_LEVEL="L1_MEMORY", CACHE_ACCESS_SAMPLE_RATE=0.3, MEMORY_CACHE_MAX_SIZE=100)
        with QueryCache(config) as cache:
            sequence = _zipf_reads(cache, keys, 100_000, seed=keys)
            (advice,) = run_maintenance(cache).advice
        assert advice.recommended is not None, advice.reason
        assert "simulated" in advice.reason and "sampled reads" in advice.basis
        policy = str(config.memory.eviction_policy)
        full = Trace("all reads", sequence)
        (at_advice,) = simulate(full, [policy], [advice.recommended])
        (at_half,) = simulate(full, [policy], [advice.recommended // 2])
        assert at_advice.hits / at_advice.requests >= 0.8 - 0.03, advice.reason  # reaches the target...
        assert at_half.hits / at_half.requests < 0.8, advice.reason  # ...and is not twice what it needs
        advised[keys] = advice.recommended
    assert advised[2000] < advised[20_000]


def test_without_a_sample_the_advice_reads_the_metrics_and_says_so() -> None:
    config = _config(CACHE_LEVEL="L1_MEMORY", MEMORY_CACHE_MAX_SIZE=50)
    with QueryCache(config) as cache:
        _zipf_reads(cache, 5000, 5000, seed=1)
        (advice,) = run_maintenance(cache).advice
    assert advice.recommended is None
    assert "CACHE_ACCESS_SAMPLE_RATE" in advice.basis
    assert "a larger L1 would likely help" in advice.reason and "of 50 entries" in advice.reason


def test_the_schedule_runs_each_job_at_its_interval_and_survives_a_failing_one() -> None:
    now = [0.0]
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("down")

    schedule = MaintenanceSchedule(
        [Job("cleanup", 10.0, lambda: ran.append("cleanup")), Job("broken", 15.0, boom)], clock=lambda: now[0]
    )
    assert schedule.run_due() == []
    for step in range(1, 31):
        now[0] = float(step)
        schedule.run_due()
    assert ran == ["cleanup"] * 3
    assert schedule.runs == {"cleanup": 3, "broken": 2} and schedule.failures == {"cleanup": 0, "broken": 2}
    with pytest.raises(ValueError, match="positive"):
        MaintenanceSchedule([Job("x", 0, lambda: None)])


def test_the_command_runs_one_pass(redis_endpoint: RedisEndpoint, key_prefix: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    trace = tmp_path / "keys.csv"
    rng = random.Random(3)
    trace.write_text("".join(f"{int(rng.paretovariate(1.1)) % 3000}\n" for _ in range(20_000)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", redis_endpoint.url)
    monkeypatch.setenv("CACHE_KEY_PREFIX", prefix)
    assert qcache_main(["maintenance", "run", "--json", "--trace", str(trace), "--format", "csv"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == [] and report["recorded"]["snapshots"] == 0
    (advice,) = report["advice"]
    assert advice["recommended"] > 0 and "trace keys.csv" in advice["basis"]
    assert qcache_main(["maintenance", "run"]) == 0
    out = capsys.readouterr().out
    assert "MEMORY_CACHE_MAX_SIZE" in out and "tag sets: 0 scanned" in out
    assert qcache_main(["maintenance", "run", "--trace", str(tmp_path / "missing")]) == 2
