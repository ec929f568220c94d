"""Synthetic workloads: seeded, shaped as advertised, and usable as trace sources."""

from __future__ import annotations

from collections import Counter

import pytest

from qcache.sim import HotSpot, SimulationError, TraceSource, Uniform, WithScans, Zipf, materialize


@pytest.mark.parametrize(
    "workload",
    [
        Zipf(keys=1000, requests=5000, exponent=0.9, seed=3),
        Uniform(keys=1000, requests=5000, seed=3),
        HotSpot(keys=1000, requests=5000, seed=3),
        WithScans(Zipf(keys=1000, requests=5000, seed=3), every=500, length=50),
    ],
    ids=lambda w: w.name.split("(")[0],
)
def test_workloads_are_seeded_sources(workload: TraceSource) -> None:
    assert isinstance(workload, TraceSource)
    first, second = list(workload), list(workload)
    assert first == second
    assert materialize(workload).name == workload.name
    assert "seed=3" in workload.name


def test_different_seeds_give_different_requests() -> None:
    assert list(Zipf(100, 1000, seed=1)) != list(Zipf(100, 1000, seed=2))


def test_zipf_popularity_follows_the_exponent() -> None:
    counts = Counter(Zipf(keys=1000, requests=200_000, exponent=1.0, seed=1))
    ranked = [count for _, count in counts.most_common()]
    # With exponent 1 the r-th most popular key gets ~1/r of the top one.
    assert ranked[1] / ranked[0] == pytest.approx(0.5, abs=0.05)
    assert ranked[9] / ranked[0] == pytest.approx(0.1, abs=0.02)
    flat = Counter(Zipf(keys=1000, requests=200_000, exponent=0.0, seed=1))
    assert max(flat.values()) < 1.7 * min(flat.values())


def test_zipf_accepts_exponents_below_one() -> None:
    keys = list(Zipf(keys=50, requests=10_000, exponent=0.5, seed=2))
    assert set(keys) <= set(range(50))
    assert len(set(keys)) == 50


def test_uniform_covers_the_key_space_evenly() -> None:
    counts = Counter(Uniform(keys=20, requests=40_000, seed=4))
    assert set(counts) == set(range(20))
    assert max(counts.values()) < 1.15 * min(counts.values())


def test_hotspot_sends_the_hot_share_to_the_hot_keys() -> None:
    workload = HotSpot(keys=1000, requests=100_000, hot_fraction=0.1, hot_probability=0.9, seed=5)
    counts = Counter(workload)
    hottest = sum(count for _, count in counts.most_common(100))
    assert hottest / 100_000 == pytest.approx(0.9, abs=0.01)


def test_scans_are_spliced_in_at_the_given_period() -> None:
    base = list(range(10))
    from qcache.sim import Trace

    mixed = list(WithScans(Trace("base", base), every=4, length=2))
    assert mixed == [0, 1, 2, 3, -1, -2, 4, 5, 6, 7, -3, -4, 8, 9]
    looping = list(WithScans(Trace("base", base), every=4, length=3, span=4))
    assert looping == [0, 1, 2, 3, -1, -2, -3, 4, 5, 6, 7, -4, -1, -2, 8, 9]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Zipf(keys=0, requests=10),
        lambda: Zipf(keys=10.5, requests=10),  # type: ignore[arg-type]
        lambda: Zipf(keys=10, requests=0),
        lambda: Zipf(keys=10, requests=10, exponent=-1),
        lambda: Uniform(keys=-1, requests=10),
        lambda: HotSpot(keys=10, requests=10, hot_fraction=1.5),
        lambda: HotSpot(keys=10, requests=10, hot_probability=-0.1),
        lambda: WithScans(Uniform(10, 10), every=0, length=1),
        lambda: WithScans(Uniform(10, 10), every=5, length=1, span=0),
    ],
)
def test_bad_parameters_are_errors(build: object) -> None:
    with pytest.raises(SimulationError):
        build()  # type: ignore[operator]


def test_regime_workloads_are_seeded_and_shaped_as_described() -> None:
    from qcache.sim import Loop, Phases, RecentReuse, ShiftingWorkingSet

    shifting = ShiftingWorkingSet(requests=10_000, width=100, rate=4, seed=1).generate()
    assert shifting == ShiftingWorkingSet(requests=10_000, width=100, rate=4, seed=1).generate()
    assert all(t // 4 <= key < t // 4 + 100 for t, key in enumerate(shifting))
    assert Loop(keys=3, requests=7).generate() == [0, 1, 2, 0, 1, 2, 0]
    reuse = RecentReuse(requests=20_000, new_fraction=0.25, mean_gap=50, seed=2).generate()
    assert 0.2 < len(set(reuse)) / len(reuse) < 0.3  # about one request in four is a new key
    assert reuse == RecentReuse(requests=20_000, new_fraction=0.25, mean_gap=50, seed=2).generate()
    mixed = list(Phases((Loop(keys=2, requests=3), Loop(keys=2, requests=2))))
    assert mixed == [0, 1, 0, 1 << 40, (1 << 40) + 1]
    with pytest.raises(SimulationError):
        RecentReuse(requests=10, new_fraction=0.0)
    with pytest.raises(SimulationError):
        Phases(())
