"""LRU as ADAPTIVE's candidate: its replay makes the hooks' decisions, and it hands over its keys in order."""

from __future__ import annotations

import pytest

from qcache.memory.policies import create_policy
from qcache.memory.policies.classic import LRUPolicy
from qcache.sim import Phases, ShiftingWorkingSet, WithScans, Zipf, materialize, run_policy

WORKLOAD = Phases((
    WithScans(Zipf(keys=3000, requests=20_000, exponent=0.9, seed=3), 400, 200),
    ShiftingWorkingSet(requests=20_000, width=300, rate=4, seed=3),
))


def keys() -> list[object]:
    return list(materialize(WORKLOAD).keys)


def lru(capacity: int) -> LRUPolicy:
    policy = create_policy("LRU", capacity)
    assert isinstance(policy, LRUPolicy)
    return policy


@pytest.mark.parametrize("capacity", [1, 7, 250])
def test_its_replay_makes_the_hooks_decisions(capacity: int) -> None:
    """(The simulator's LRU fast path is this replay; test_against_cachetools checks it against cachetools.)"""
    requests = keys()
    by_hooks, by_replay = lru(capacity), lru(capacity)
    done: list[int] = []
    hits = by_replay.replay(requests, done.append, 4096)
    assert hits == run_policy(by_hooks, requests)
    assert by_replay.resident_keys() == by_hooks.resident_keys()  # the same order, least recent first
    assert sum(done) == len(requests) and max(done) == 4096


def test_segments_are_the_replay_cut_where_asked() -> None:
    requests = keys()
    whole, cut = lru(250), lru(250)
    ends = [0, 1, 5000, 5000, 17_321, len(requests)]
    segments = cut.replay_segments(requests, ends)
    assert len(segments) == len(ends) and segments[0] == segments[3] == 0
    assert sum(segments) == whole.replay(requests)
    assert cut.resident_keys() == whole.resident_keys()
    with pytest.raises(ValueError, match="ascend"):
        lru(5).replay_segments(requests, [10, 5, len(requests)])
    with pytest.raises(ValueError, match="ascend"):
        lru(5).replay_segments(requests, [10])


def test_a_shadows_hit_is_an_access_and_it_holds_no_reused_keys() -> None:
    policy = lru(3)
    for key in "abc":
        policy.on_insert(key)
    assert policy.access_if_held("a") and not policy.access_if_held("z")
    assert "a" in policy and "z" not in policy
    assert policy.resident_keys() == ["b", "c", "a"]
    assert policy.victim() == "b"
    assert policy.frequent_keys() == []  # after a switch, every key enters the next policy as a newcomer
