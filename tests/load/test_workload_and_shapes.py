"""The workload generator and the shape schedules, without starting a load."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from qcache.errors import ConfigError
from qcache.load import shapes
from qcache.load.workload import EMBEDDING_DIM, Workload, ZipfKeys, make_value


def test_zipf_draws_follow_the_distribution() -> None:
    keys = ZipfKeys(100, 1.0, seed=3)
    draws = np.array([keys.index() for _ in range(100_000)])
    counts = np.bincount(draws, minlength=100) / len(draws)
    for rank in (0, 1, 9, 99):
        assert counts[rank] == pytest.approx(keys.probability(rank), rel=0.1, abs=5e-4)
    assert counts[0] > 5 * counts[9]


def test_a_zero_exponent_is_uniform() -> None:
    keys = ZipfKeys(10, 0.0, seed=1)
    draws = np.bincount([keys.index() for _ in range(50_000)], minlength=10) / 50_000
    assert np.allclose(draws, 0.1, atol=0.01)


def test_batches_hold_distinct_keys_even_when_skewed() -> None:
    keys = ZipfKeys(500, 3.0, seed=2)  # nearly every draw is key 0
    batch = keys.batch(100)
    assert len(batch) == len(set(batch)) == 100
    assert sorted(ZipfKeys(5, 1.0).batch(100)) == ["k0", "k1", "k2", "k3", "k4"]  # all there is


@pytest.mark.parametrize("size", [64, 200, 4096])
def test_dict_values_have_about_the_asked_size(size: int) -> None:
    packed = msgpack.packb(make_value("dict", size))
    assert abs(len(packed) - size) <= 16


def test_embeddings_are_float32_vectors_of_the_service_dimension() -> None:
    vector = make_value("embedding", 0, seed=5)
    assert vector.dtype == np.float32 and vector.shape == (EMBEDDING_DIM,)
    assert not np.array_equal(vector, make_value("embedding", 0, seed=6))
    with pytest.raises(ConfigError, match="unknown value kind"):
        make_value("text", 10)  # type: ignore[arg-type]  # the wrong kind is the point


@pytest.mark.parametrize(
    ("field", "value"),
    [("keys", 0), ("zipf_s", -1.0), ("value_bytes", 0), ("hot_keys", 20), ("read_ratio", 1.5), ("ttl_s", 0.0)],
)
def test_bad_workloads_are_refused(field: str, value: float) -> None:
    settings: dict[str, float] = {"keys": 10, "hot_keys": 5, field: value}
    with pytest.raises(ConfigError, match=field):
        Workload(**settings)  # type: ignore[arg-type]  # ints and floats by field, as the CLI gives


def test_steady_runs_its_users_then_stops() -> None:
    steady = shapes.Steady(10, 5.0, 30.0)
    assert steady.tick(0) == shapes.Stage(10, 5.0, "steady")
    assert steady.tick(29.9) is not None and steady.tick(30.0) is None
    assert shapes.Steady(1, 1.0, math.inf).tick(1e9) is not None  # the web UI's "until stopped"


def test_ramp_steps_up_and_reports_its_step() -> None:
    ramp = shapes.Ramp(start_users=5, step_users=10, steps=3, step_s=10.0)
    assert [ramp.tick(t).users for t in (0, 9.9, 10, 25)] == [5, 5, 15, 25]  # type: ignore[union-attr]
    assert ramp.tick(30) is None and ramp.duration_s == 30
    assert ramp.step_at(15) == 1 and ramp.step_at(31) is None


def test_spike_rises_and_falls_back() -> None:
    spike = shapes.Spike(base_users=5, spike_users=50, base_s=10, spike_s=5)
    assert [spike.tick(t).users for t in (1, 11, 16)] == [5, 50, 5]  # type: ignore[union-attr]
    assert spike.tick(25) is None
    with pytest.raises(ConfigError, match="more users than the base"):
        shapes.Spike(base_users=5, spike_users=5, base_s=1, spike_s=1)


def test_soak_is_bounded() -> None:
    assert shapes.Soak(5, 5.0, 3600).tick(3599) is not None
    with pytest.raises(ConfigError, match="bounded"):
        shapes.Soak(5, 5.0, shapes.MAX_SOAK_S + 1)


def test_compare_alternates_classes_with_a_switch_between_them() -> None:
    compare = shapes.Compare("A", "B", users=4, phase_s=3.0, rounds=2)
    stages = [compare.tick(t) for t in (0.5, 1.5, 3.2, 4.2, 6.5, 7.5, 9.5, 10.5)]
    assert [s.user_classes for s in stages if s is not None] == [
        ("A",), ("A",), None, ("B",), None, ("A",), None, ("B",)
    ]
    assert stages[2] is not None and stages[2].users == 0
    assert compare.tick(12.0) is None
    with pytest.raises(ConfigError, match="two different"):
        shapes.Compare("A", "A", users=1, phase_s=3, rounds=1)
    with pytest.raises(ConfigError, match="at least 2"):
        shapes.Compare("A", "B", users=1, phase_s=1.5, rounds=1)


def test_chaos_keeps_the_load_on_around_the_fault() -> None:
    chaos = shapes.Chaos(users=4, spawn_rate=4, fault_at_s=10, down_s=2, after_s=5)
    assert [chaos.tick(t).label for t in (1, 10.5, 13)] == ["before fault", "fault", "recovery"]  # type: ignore[union-attr]
    assert chaos.tick(17) is None


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_shapes_refuse_non_positive_numbers(bad: float) -> None:
    with pytest.raises(ConfigError):
        shapes.Ramp(4, 4, 2, bad)
