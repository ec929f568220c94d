"""The simulation core: sizes, policy names, bounds, fast paths and results."""

from __future__ import annotations

import itertools
import random

import pytest

from qcache.memory.policies import DEFAULT_POLICY, available_policies, create_policy
from qcache.sim import (
    BELADY,
    UNBOUNDED,
    SimulationError,
    Trace,
    TraceError,
    Zipf,
    belady_hits,
    count_hits,
    curve_sizes,
    next_use_positions,
    parse_size,
    resolve_sizes,
    run_policy,
    simulate,
    unbounded_hits,
)


def brute_force_optimum(keys: list[int], capacity: int) -> int:
    """Best hit count over every eviction choice (exponential: tiny traces only)."""

    def best(position: int, cache: frozenset[int]) -> int:
        if position == len(keys):
            return 0
        key = keys[position]
        if key in cache:
            return 1 + best(position + 1, cache)
        if len(cache) < capacity:
            return best(position + 1, cache | {key})
        return max(best(position + 1, (cache - {out}) | {key}) for out in cache)

    return best(0, frozenset())


def test_next_use_positions() -> None:
    assert next_use_positions(["a", "b", "a", "c", "b"]) == [2, 4, 5 + 2, 5 + 3, 5 + 4]


@pytest.mark.parametrize("seed", range(12))
def test_belady_is_the_true_optimum_on_small_traces(seed: int) -> None:
    rng = random.Random(seed)
    keys = [rng.randrange(6) for _ in range(14)]
    capacity = rng.randrange(1, 4)
    assert belady_hits(keys, capacity) == brute_force_optimum(keys, capacity)


def test_belady_bounds_every_policy_and_unbounded_bounds_belady() -> None:
    keys = list(Zipf(keys=3000, requests=30000, exponent=0.9, seed=8))
    for capacity in (10, 300):
        ceiling = belady_hits(keys, capacity)
        for name in available_policies():
            assert run_policy(create_policy(name, capacity), keys) <= ceiling, name
        assert ceiling <= unbounded_hits(keys)
    assert unbounded_hits(keys) == len(keys) - len(set(keys))


def test_belady_works_for_keys_that_cannot_be_ordered() -> None:
    keys: list[object] = ["a", 1, ("t",), "a", 1, 2.5, ("t",)]
    assert belady_hits(keys, 2) >= 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0.1%", 20), ("1%", 205), ("10%", 2048), ("100", 100), (100, 100), ("1_000", 1000)],
)
def test_sizes_as_counts_or_percentages_of_the_footprint(spec: str | int, expected: int) -> None:
    assert parse_size(spec, 20484) == expected


def test_percentages_round_half_up_as_the_reference_tables_do() -> None:
    assert resolve_sizes("0.1%,1%,10%", 186880) == [187, 1869, 18688]
    assert parse_size("50%", 5) == 3


@pytest.mark.parametrize("spec", ["0", "0%", "-5", "1e-9%", "abc", "x%", "nan%"])
def test_bad_or_zero_sizes_are_errors(spec: str) -> None:
    with pytest.raises(SimulationError):
        parse_size(spec, 1000)


def test_sizes_are_deduplicated_and_sorted() -> None:
    assert resolve_sizes(["10%", "5", 100, "5"], 1000) == [5, 100]
    with pytest.raises(SimulationError, match="no cache size"):
        resolve_sizes(" , ", 1000)


def test_curve_sizes_are_geometric_and_include_the_ends() -> None:
    sizes = curve_sizes(10, 10000, 13)
    assert sizes[0] == 10 and sizes[-1] == 10000
    assert sizes == sorted(set(sizes))
    ratios = [b / a for a, b in itertools.pairwise(sizes)]
    assert max(ratios) / min(ratios) < 1.2


def test_fast_paths_give_the_policy_objects_results() -> None:
    keys = list(Zipf(keys=5000, requests=40000, exponent=0.8, seed=9))
    for name in ("LRU", "FIFO"):
        for capacity in (1, 50, 700):
            generic = run_policy(create_policy(name, capacity), keys)
            assert count_hits(name, keys, capacity) == generic
            assert count_hits(name, keys, capacity, fast=False) == generic


def test_simulate_runs_every_policy_at_every_size() -> None:
    # Every key once first, so the footprint is exactly 2000 and 1% is 20 entries.
    source = Trace("warm+zipf", list(range(2000)) + list(Zipf(2000, 18000, 1.0, seed=10)))
    results = simulate(source, ["LRU", "default", "belady", "unbounded"], "1%,10%,100")
    assert [(r.policy, r.capacity) for r in results] == [
        (policy, size)
        for policy in dict.fromkeys(["LRU", DEFAULT_POLICY, BELADY, UNBOUNDED])
        for size in (20, 100, 200)
    ]
    by_key = {(r.policy, r.capacity): r for r in results}
    for size in (20, 100, 200):
        assert by_key[("LRU", size)].hits <= by_key[(BELADY, size)].hits
        assert by_key[(BELADY, size)].hits <= by_key[(UNBOUNDED, size)].hits
    result = by_key[("LRU", 100)]
    assert result.requests == 20000
    assert result.hits == count_hits("LRU", source.keys, 100)
    assert result.hit_ratio == pytest.approx(100 * result.hits / 20000)
    assert result.miss_ratio == pytest.approx(100 - result.hit_ratio)
    assert result.trace == source.name


def test_simulate_reports_progress() -> None:
    seen: list[int] = []
    simulate(Zipf(keys=100, requests=5000, seed=1), ["LRU", "SIEVE", "belady"], "10", progress=seen.append)
    assert sum(seen) == 3 * 5000


def test_policy_options_reach_the_policy() -> None:
    keys = list(Zipf(keys=500, requests=5000, seed=2))
    one = simulate(Trace("t", keys), ["RANDOM"], "50", policy_options={"RANDOM": {"seed": 1}})
    same = simulate(Trace("t", keys), ["RANDOM"], "50", policy_options={"RANDOM": {"seed": 1}})
    other = simulate(Trace("t", keys), ["RANDOM"], "50", policy_options={"RANDOM": {"seed": 2}})
    assert one[0].hits == same[0].hits
    assert one[0].hits != other[0].hits


def test_unknown_policies_empty_traces_and_zero_sizes_are_clear_errors() -> None:
    source = Zipf(keys=10, requests=100)
    with pytest.raises(SimulationError, match="unknown eviction policy 'MRU'"):
        simulate(source, ["LRU", "MRU"], "5")
    with pytest.raises(SimulationError, match="no policy"):
        simulate(source, [" "], "5")
    with pytest.raises(SimulationError, match="positive"):
        simulate(source, ["LRU"], "0")
    with pytest.raises(TraceError, match="no requests"):
        simulate(Trace("empty", []), ["LRU"], "5")
    with pytest.raises(SimulationError):
        count_hits("LRU", [1, 2], 0)
