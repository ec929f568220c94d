"""The whole recommendation: each choice carries its figure, and the .env it renders loads and validates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from qcache.config import CacheConfig
from qcache.tune import (
    BatchSample,
    Choice,
    CodecSample,
    Curve,
    Evidence,
    OpTime,
    PoolSample,
    Recommendation,
    TuneError,
    Workload,
    recommend,
    render_env,
    validate_env_text,
    write_env,
)


def evidence(**changes: object) -> Evidence:
    fields: dict[str, object] = dict(  # noqa: C408 - keyword names read as the Evidence fields they are
        op_times=(
            OpTime("WRITE_THROUGH", "BOTH", "get", 2.0),
            OpTime("WRITE_THROUGH", "BOTH", "set", 400.0),
            OpTime("WRITE_BACK", "BOTH", "get", 2.0),
            OpTime("WRITE_BACK", "BOTH", "set", 10.0),
        ),
        codec=(
            CodecSample("none", "search", "16KB", 16384, 16392, 10.0),
            CodecSample("lz4", "search", "16KB", 16384, 2500, 12.0),
        ),
        encryption=(),
        batches=tuple(BatchSample("get_many", n, 100.0 + 9.0 * n) for n in (1, 10, 100, 1000)),
        pools=tuple(PoolSample(p, 4, t, 0.5, 2.0) for p, t in ((1, 2000.0), (4, 5000.0), (10, 5100.0))),
        policy_get_ns={"LRU": 150.0, "SIEVE": 220.0},
        l1_overhead_bytes=500.0,
        l2_get_us=200.0,
        l1_get_us=1.5,
    )
    fields.update(changes)
    return Evidence(**fields)  # type: ignore[arg-type]


CURVES = [
    Curve("zipf", "LRU", (100, 1000, 10_000), (0.5, 0.70, 0.85), 50_000, 1_000_000, 0.95),
    Curve("zipf", "SIEVE", (100, 1000, 10_000), (0.55, 0.75, 0.88), 50_000, 1_000_000, 0.95),
]


def test_recommendation_names_a_figure_for_every_choice_and_validates(tmp_path: Path) -> None:
    rec = recommend(Workload(memory_budget_mb=64, read_ratio=0.5, value_bytes=2048), evidence(), CURVES)
    settings = rec.settings()
    assert settings["MEMORY_CACHE_EVICTION_POLICY"] == "SIEVE"
    assert settings["CACHE_WRITE_STRATEGY"] == "WRITE_BACK"
    assert settings["CACHE_COMPRESSION_ALGORITHM"] == "lz4"
    assert settings["CACHE_BATCH_SIZE"] == "100"
    assert settings["CACHE_CONNECTION_POOL_SIZE"] == "4"
    # 0.8 lies between 1,000 (0.75) and 10,000 (0.88) entries for SIEVE: within the 64 MB budget.
    assert 1000 < int(settings["MEMORY_CACHE_MAX_SIZE"]) < 10_000
    assert all(choice.figure and choice.reason for choice in rec.choices)
    text = render_env(rec, source="test")
    assert validate_env_text(text) == []
    path = write_env(text, tmp_path / ".env.tuned")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = CacheConfig.from_env(env_file=path, environ={})
    assert loaded.memory.eviction_policy == "SIEVE"
    assert "PASSWORD" not in text.replace("REDIS_PASSWORD, CACHE_ENCRYPTION_KEY", "")


def test_small_budget_caps_the_size_and_says_so() -> None:
    rec = recommend(Workload(memory_budget_mb=1, value_bytes=2048), evidence(), CURVES)
    assert int(rec.settings()["MEMORY_CACHE_MAX_SIZE"]) == 1024 * 1024 // 2548
    assert any("the budget holds" in note for note in rec.notes)


def test_missing_suites_leave_defaults_and_say_so() -> None:
    rec = recommend(Workload(), evidence(op_times=(), codec=(), batches=(), pools=()), CURVES)
    assert rec.value("CACHE_WRITE_STRATEGY") is None and rec.value("CACHE_BATCH_SIZE") is None
    assert len(rec.notes) >= 4
    assert validate_env_text(render_env(rec)) == []


def test_secrets_never_go_into_a_recommended_env() -> None:
    rec = Recommendation(Workload(), (Choice("REDIS_PASSWORD", "hunter2", "-", "-"),))
    with pytest.raises(TuneError, match="secret"):
        render_env(rec)


def test_an_invalid_recommendation_is_refused_before_writing(tmp_path: Path) -> None:
    text = "MEMORY_CACHE_MAX_SIZE=-5\n"
    with pytest.raises(TuneError):
        write_env(text, tmp_path / "x.env")
    assert not (tmp_path / "x.env").exists()


def test_bad_workloads_are_refused() -> None:
    with pytest.raises(TuneError, match="read ratio"):
        Workload(read_ratio=2)
    with pytest.raises(TuneError, match="memory budget"):
        Workload(memory_budget_mb=0)
