"""LFU's tie-breaking and reset rules, RANDOM's seeding, and the registry's names."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from qcache.errors import ConfigError
from qcache.memory.policies import (
    DEFAULT_POLICY,
    available_policies,
    create_policy,
    register_policy,
    resolve_policy_name,
)
from qcache.memory.policies.classic import LRUPolicy
from qcache.memory.policies.lfu import LFUPolicy
from qcache.memory.policies.random_policy import RandomPolicy
from qcache.sim import Zipf, run_policy


def test_lfu_evicts_the_least_hit_key() -> None:
    policy = create_policy("LFU", 3)
    for key in "abc":
        policy.on_insert(key)
    for key in "aab":
        policy.on_access(key)
    assert policy.victim() == "c"


def test_lfu_breaks_ties_by_who_reached_the_count_first() -> None:
    policy = create_policy("LFU", 3)
    for key in "abc":
        policy.on_insert(key)
    policy.on_access("b")  # b reaches 2 hits first
    policy.on_access("a")
    policy.on_access("c")
    assert [policy.victim() for _ in range(3)] == ["b", "a", "c"]


def test_lfu_count_restarts_when_a_key_comes_back() -> None:
    policy = create_policy("LFU", 2)
    assert isinstance(policy, LFUPolicy)
    policy.on_insert("a")
    for _ in range(5):
        policy.on_access("a")
    assert policy.frequency("a") == 6
    policy.on_remove("a")
    assert policy.frequency("a") == 0
    policy.on_insert("a")
    assert policy.frequency("a") == 1


def test_lfu_finds_the_new_minimum_after_removals() -> None:
    policy = create_policy("LFU", 4)
    for key in "abcd":
        policy.on_insert(key)
    for key in "bbccc":
        policy.on_access(key)
    policy.on_access("a")
    policy.on_remove("d")  # the only count-1 key goes
    assert policy.victim() == "a"  # count 2
    assert policy.victim() == "b"  # count 3


def test_random_is_reproducible_per_seed_and_varies_across_seeds() -> None:
    def victims(seed: int) -> list[int]:
        policy = create_policy("RANDOM", 50, seed=seed)
        for key in range(50):
            policy.on_insert(key)
        return [policy.victim() for _ in range(20)]

    assert victims(1) == victims(1)
    assert victims(1) != victims(2)


def test_random_evicts_roughly_uniformly() -> None:
    counts: Counter[int] = Counter()
    rng = random.Random(0)
    for _trial in range(400):
        policy = create_policy("RANDOM", 10, seed=rng.randrange(1 << 30))
        for key in range(10):
            policy.on_insert(key)
        counts[policy.victim()] += 1
    assert len(counts) == 10
    assert max(counts.values()) < 3 * min(counts.values())


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("lru", "LRU"), (" s3-fifo ", "S3_FIFO"), ("W-TinyLFU", "W_TINYLFU"), ("sieve", "SIEVE")],
)
def test_names_are_case_and_dash_insensitive(spelling: str, canonical: str) -> None:
    assert resolve_policy_name(spelling) == canonical


def test_default_resolves_to_the_default_policy() -> None:
    assert DEFAULT_POLICY in available_policies()
    assert resolve_policy_name("default") == DEFAULT_POLICY
    assert type(create_policy("DEFAULT", 4)).name == DEFAULT_POLICY


def test_an_unknown_name_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: .*LRU") as caught:
        resolve_policy_name("MRU")
    assert isinstance(caught.value, ValueError)


def test_a_name_cannot_be_registered_twice_for_another_class() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_policy("LRU")(type("OtherLRU", (LRUPolicy,), {}))


@pytest.mark.parametrize("size", [1, 2, 5, 100, 1000])
@pytest.mark.parametrize("seed", [1, 2])
def test_lfu_replay_makes_the_same_decisions_as_the_hooks(size: int, seed: int) -> None:
    keys = list(Zipf(keys=3000, requests=20000, exponent=0.8, seed=seed))
    keys += [f"scan{position}" for position in range(500)] + keys[:3000]
    hooked, replayed = LFUPolicy(size), LFUPolicy(size)
    assert replayed.replay(keys) == run_policy(hooked, keys)
    # Same buckets in the same order: later evictions agree too.
    assert repr(vars(replayed)) == repr(vars(hooked))


@pytest.mark.parametrize("size", [1, 2, 5, 100, 1000])
def test_random_replay_draws_the_same_victims_as_the_hooks(size: int) -> None:
    keys = list(Zipf(keys=3000, requests=20000, exponent=0.8, seed=5)) + [f"s{key}" for key in range(300)]
    hooked, replayed = RandomPolicy(size, seed=11), RandomPolicy(size, seed=11)
    assert replayed.replay(keys) == run_policy(hooked, keys)
    assert replayed._keys == hooked._keys and replayed._index == hooked._index
    assert replayed._rng.getstate() == hooked._rng.getstate()
