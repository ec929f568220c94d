"""The profiles side by side: their settings, one measured workload each, and the files that hold them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qcache.bench import load_run
from qcache.bench.layout import RunLayout
from qcache.probe import Probe, measure_profile
from qcache.testing import RedisEndpoint
from qcache.tune import TuneError
from qcache.tune.profiles import (
    PROFILES_DIR,
    profile_measurements,
    profile_settings,
    read_measurement,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = max((ROOT / "results" / "reference").iterdir())


def test_settings_of_the_five_profiles_differ_where_the_guide_says() -> None:
    settings = {p.name: p.values for p in profile_settings()}
    assert list(settings) == ["development", "testing", "staging", "production", "high-performance"]
    assert settings["testing"]["CACHE_LEVEL"] == "L1_MEMORY"
    assert settings["high-performance"]["CACHE_WRITE_STRATEGY"] == "WRITE_BACK"
    assert int(settings["production"]["MEMORY_CACHE_MAX_SIZE"]) > int(settings["development"]["MEMORY_CACHE_MAX_SIZE"])


@pytest.mark.redis
def test_a_bigger_l1_serves_more_of_the_same_workload(redis_endpoint: RedisEndpoint, tmp_path: Path) -> None:
    if redis_endpoint.tls is not None or redis_endpoint.password:
        pytest.skip("the probe connects with a plain URL")
    probe = Probe(redis_endpoint.url)
    small = measure_profile("development", probe, operations=6000, keys=3000)  # 100 entries in L1
    large = measure_profile("high-performance", probe, operations=6000, keys=3000)  # every key fits
    assert small.l1_hit_rate < large.l1_hit_rate
    assert small.hit_rate == pytest.approx(large.hit_rate)  # Redis answers what L1 misses: same requests, same hits
    run = tmp_path / "run"
    (run / PROFILES_DIR).mkdir(parents=True)
    (run / "benchmarks.json").write_text((REFERENCE / "benchmarks.json").read_text())
    for measured in (small, large):
        (run / PROFILES_DIR / f"{measured.profile}.json").write_text(json.dumps(measured.as_dict()))
    assert profile_measurements(load_run(RunLayout(run))) == [small, large]


def test_a_malformed_measurement_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"profile": "production", "operations": 5, "ops_per_s": "fast"}))
    with pytest.raises(TuneError, match="ops_per_s"):
        read_measurement(path)
