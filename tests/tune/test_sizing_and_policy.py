"""Miss-ratio curves, the size that reaches a hit rate, and the policy choice, on known answers."""

from __future__ import annotations

import math

import pytest

from qcache.sim import Zipf, simulate
from qcache.tune import (
    Curve,
    TuneError,
    bytes_per_entry,
    choose_policy,
    compute_curves,
    curves_from_documents,
    entries_for_budget,
    size_for_hit_rate,
)


def zipf_static_size(keys: int, exponent: float, target: float) -> int:
    """Entries holding the most popular keys whose request probability sums to ``target``."""
    weights = [r**-exponent for r in range(1, keys + 1)]
    total, mass = sum(weights), 0.0
    for k, w in enumerate(weights, start=1):
        mass += w
        if mass / total >= target:
            return k
    raise AssertionError("unreachable target")


def curve(
    policy: str,
    rates: tuple[float, ...],
    sizes: tuple[int, ...] = (10, 100, 1000),
    ceiling: float = 0.95,
    workload: str = "w",
) -> Curve:
    return Curve(workload, policy, sizes, rates, unique_keys=10_000, requests=200_000, ceiling=ceiling)


def test_zipf_size_for_healthy_hit_rate_from_the_exact_curve() -> None:
    # The hit rate of a cache holding the k most popular of 1,000 Zipf(1) keys is their probability
    # mass; on a 16-point curve of those exact rates the interpolated size must land on the computed k.
    expected = zipf_static_size(1000, 1.0, 0.8)
    weights = [r**-1.0 for r in range(1, 1001)]
    sizes = tuple(sorted({round(10 * 100 ** (i / 15)) for i in range(16)}))
    rates = tuple(sum(weights[:k]) / sum(weights) for k in sizes)
    exact = Curve("zipf", "STATIC", sizes, rates, unique_keys=1000, requests=10**9, ceiling=1.0)
    found = size_for_hit_rate(exact, 0.8).entries
    assert found is not None and abs(found - expected) / expected < 0.05


def test_zipf_size_for_healthy_hit_rate_on_simulated_policies() -> None:
    # Belady's optimum needs no more than the static top-k cache; LFU (counts kept while cached) a little
    # more. The size read off LFU's curve must really reach 0.8 when that size is simulated directly.
    expected = zipf_static_size(1000, 1.0, 0.8)
    workload = Zipf(keys=1000, requests=100_000, exponent=1.0, seed=3)
    curves = compute_curves(workload, ["LFU", "BELADY"], points=16, smallest=0.01, largest=1.0)
    found = {c.policy: size_for_hit_rate(c, 0.8).entries for c in curves}
    lfu, belady = found["LFU"], found["BELADY"]
    assert lfu is not None and belady is not None
    assert belady <= expected <= lfu <= 1.35 * expected
    (direct,) = simulate(workload, ["LFU"], [lfu])
    assert direct.hit_ratio >= 79.5


def test_size_interpolates_on_log_size_between_points() -> None:
    c = curve("LRU", (0.4, 0.6, 0.9))
    assert size_for_hit_rate(c, 0.6).entries == 100
    middle = size_for_hit_rate(c, 0.75).entries
    assert middle == math.ceil(math.sqrt(100 * 1000))  # half way on log(size)
    assert size_for_hit_rate(c, 0.3).entries == 10


def test_unreachable_target_names_the_ceiling() -> None:
    result = size_for_hit_rate(curve("LRU", (0.2, 0.4, 0.6), ceiling=0.7), 0.8)
    assert not result.reachable
    assert "unbounded cache hits 0.70" in result.why_not
    with pytest.raises(TuneError):
        size_for_hit_rate(curve("LRU", (0.2, 0.4, 0.6)), 1.5)


def test_hit_rate_past_the_largest_size_rises_to_the_ceiling() -> None:
    c = curve("LRU", (0.2, 0.4, 0.6), ceiling=0.9)
    assert c.hit_rate_at(10_000) == 0.9
    assert 0.6 < c.hit_rate_at(3000) < 0.9


def test_budget_in_entries_uses_value_and_overhead() -> None:
    per_entry = bytes_per_entry(1024, 453)
    assert per_entry == 1477
    assert entries_for_budget(1, per_entry) == 1024 * 1024 // 1477
    with pytest.raises(TuneError):
        entries_for_budget(0, per_entry)


def test_policy_with_the_highest_hit_rate_wins_and_the_margin_over_lru_is_reported() -> None:
    curves = [curve("LRU", (0.30, 0.50, 0.70)), curve("SIEVE", (0.35, 0.55, 0.75)), curve("BELADY", (0.5, 0.7, 0.85))]
    choice = choose_policy(curves, {"w": 100})
    assert choice.policy == "SIEVE"
    assert choice.margin == pytest.approx(0.05)
    assert choice.belady_hit_rate == pytest.approx(0.7)
    assert "over LRU" in choice.reason


def test_a_tie_goes_to_the_cheaper_policy() -> None:
    curves = [curve("W_TINYLFU", (0.30, 0.553, 0.70)), curve("SIEVE", (0.35, 0.55, 0.75))]
    assert choose_policy(curves, {"w": 100}, {"W_TINYLFU": 1200.0, "SIEVE": 220.0}).policy == "SIEVE"
    assert choose_policy(curves, {"w": 100}).policy == "W_TINYLFU"


def test_curves_from_simulator_documents() -> None:
    document = {
        "trace": "t",
        "unique_keys": 100,
        "results": [
            {"policy": "LRU", "capacity": 10, "requests": 1000, "hit_ratio": 40.0},
            {"policy": "LRU", "capacity": 50, "requests": 1000, "hit_ratio": 70.0},
            {"policy": "UNBOUNDED", "capacity": 10, "requests": 1000, "hit_ratio": 90.0},
        ],
    }
    (lru,) = curves_from_documents([document])
    assert lru.sizes == (10, 50) and lru.hit_rates == (0.4, 0.7) and lru.ceiling == 0.9
    with pytest.raises(TuneError):
        curves_from_documents([{"trace": "t", "unique_keys": 100, "results": [{"policy": "LRU"}]}])
