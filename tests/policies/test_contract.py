"""The contract every registered eviction policy must honour, checked on each of them."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcache.memory.policies import EvictionPolicy, available_policies
from qcache.sim.engine import make_policy
from qcache.sim.reference import REFERENCE_POLICIES

#: The L1 policies and the simulator's reference policies: the same hooks, the same contract.
POLICIES = [*available_policies(), *REFERENCE_POLICIES]


def create_policy(name: str, capacity: int) -> EvictionPolicy:
    return make_policy(name, capacity)


def test_the_registry_holds_every_policy_of_the_brief() -> None:
    assert {"LRU", "LFU", "FIFO", "RANDOM", "SIEVE", "S3_FIFO", "W_TINYLFU"} <= set(POLICIES)


@pytest.fixture(params=POLICIES)
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Driver:
    """A bounded key set driven by a policy exactly as the L1 store and the simulator do."""

    def __init__(self, policy: EvictionPolicy) -> None:
        self.policy = policy
        self.keys: set[int] = set()
        self.evicted: list[int] = []

    def request(self, key: int) -> bool:
        if key in self.keys:
            self.policy.on_access(key)
            return True
        self.policy.on_miss(key)
        self.policy.on_insert(key)
        self.keys.add(key)
        while len(self.keys) > self.policy.capacity:
            victim = self.policy.victim()
            assert victim in self.keys, f"victim {victim!r} is not in the cache"
            self.keys.remove(victim)
            self.evicted.append(victim)
        return False

    def delete(self, key: int) -> None:
        if key in self.keys:
            self.policy.on_remove(key)
            self.keys.remove(key)


def test_capacity_must_be_positive(policy_name: str) -> None:
    with pytest.raises(ValueError):
        create_policy(policy_name, 0)


def test_victim_of_an_empty_policy_is_a_key_error(policy_name: str) -> None:
    with pytest.raises(KeyError):
        create_policy(policy_name, 4).victim()


def test_a_lone_key_is_its_own_victim(policy_name: str) -> None:
    policy = create_policy(policy_name, 4)
    policy.on_insert("only")
    assert len(policy) == 1
    assert policy.victim() == "only"
    assert len(policy) == 0


def test_the_cache_never_exceeds_its_capacity_and_victims_are_present(policy_name: str) -> None:
    driver = Driver(create_policy(policy_name, 8))
    rng = random.Random(7)
    for _ in range(3000):
        driver.request(rng.randrange(40))
        assert len(driver.policy) == len(driver.keys) <= 8
    assert len(driver.evicted) > 100


def test_removing_keys_keeps_policy_and_cache_in_step(policy_name: str) -> None:
    driver = Driver(create_policy(policy_name, 10))
    rng = random.Random(11)
    for step in range(4000):
        key = rng.randrange(50)
        if step % 7 == 0:
            driver.delete(key)
        else:
            driver.request(key)
        assert len(driver.policy) == len(driver.keys)
    # Drain: every tracked key comes back exactly once as a victim.
    drained = [driver.policy.victim() for _ in range(len(driver.keys))]
    assert sorted(drained) == sorted(driver.keys)
    with pytest.raises(KeyError):
        driver.policy.victim()


def test_clear_forgets_everything(policy_name: str) -> None:
    driver = Driver(create_policy(policy_name, 5))
    for key in range(20):
        driver.request(key)
    driver.policy.clear()
    assert len(driver.policy) == 0
    with pytest.raises(KeyError):
        driver.policy.victim()
    # Usable again after a clear.
    driver.keys.clear()
    for key in range(12):
        driver.request(key)
    assert len(driver.policy) == 5


def test_a_hot_key_survives_a_stream_of_one_time_keys(policy_name: str) -> None:
    if policy_name in {"FIFO", "RANDOM"}:
        pytest.skip("FIFO and RANDOM ignore hits by design")
    driver = Driver(create_policy(policy_name, 16))
    hot_hits = 0
    for step in range(2000):
        hot_hits += driver.request(-1)
        driver.request(step)  # a key never seen again
    assert hot_hits >= 1990


def test_same_requests_give_the_same_victims(policy_name: str) -> None:
    def run() -> list[int]:
        driver = Driver(create_policy(policy_name, 12))
        rng = random.Random(3)
        for _ in range(2000):
            driver.request(rng.randrange(60))
        return driver.evicted

    assert run() == run()


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=6),
    operations=st.lists(
        st.tuples(st.sampled_from(["get", "get", "get", "delete"]), st.integers(0, 12)),
        max_size=200,
    ),
    name=st.sampled_from(POLICIES),
)
def test_any_operation_sequence_keeps_the_contract(
    capacity: int, operations: list[tuple[str, int]], name: str
) -> None:
    driver = Driver(create_policy(name, capacity))
    for operation, key in operations:
        if operation == "get":
            driver.request(key)
        else:
            driver.delete(key)
        assert len(driver.policy) == len(driver.keys) <= capacity


def test_the_hooks_a_driver_binds_behave_as_the_methods(policy_name: str) -> None:
    """``hooks()`` may hand out C methods of the policy's containers: the same evictions must follow."""
    by_method = create_policy(policy_name, 8)
    by_hooks = create_policy(policy_name, 8)
    on_insert, on_access, on_miss, on_remove = by_hooks.hooks()
    rng = random.Random(11)
    held: set[int] = set()
    for _ in range(3000):
        key = rng.randrange(40)
        if key in held and rng.random() < 0.1:
            by_method.on_remove(key)
            on_remove(key)
            held.discard(key)
        elif key in held:
            by_method.on_access(key)
            on_access(key)
        else:
            by_method.on_miss(key)
            on_miss(key)
            by_method.on_insert(key)
            on_insert(key)
            held.add(key)
            while len(held) > 8:
                victim = by_method.victim()
                assert by_hooks.victim() == victim
                held.discard(victim)
    assert len(by_method) == len(by_hooks) == len(held)
