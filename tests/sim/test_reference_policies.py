"""ARC, LIRS and 2Q: the reference policies the simulator reports beside the default.

ARC is an L1 policy too (the store's contract suites run it with the others).
It is checked hit for hit against libCacheSim's figures on the shared
traces (skipped where they are absent); all three are checked for the
behaviour their papers promise on small constructed workloads, and for the
L1 contract in tests/policies/test_contract.py.
"""

from __future__ import annotations

import pytest

from qcache.memory.policies.arc import ARCPolicy
from qcache.sim import (
    Loop,
    RecentReuse,
    SimulationError,
    TraceFile,
    WithScans,
    Zipf,
    count_hits,
    shared_traces_dir,
)
from qcache.sim.engine import make_policy, resolve_policies, run_policy
from qcache.sim.reference import LIRSPolicy, TwoQPolicy, reference_name

# libCacheSim 0.3.5's ARC on the shared traces (README beside them), at 0.1%, 1% and 10%.
ARC_REFERENCE = {
    "cache2k_web07.trace.xz": ((20, 22.52), (205, 41.93), (2048, 58.06)),
    "arc_OLTP.lis.zst": ((187, 17.61), (1869, 45.39), (18688, 67.27)),
}
ARC_PAPER_SIZES = {1000: 38.95, 2000: 46.08, 5000: 55.25}


def _trace_keys(name: str) -> list[object]:
    folder = shared_traces_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"shared trace {name} is not available")
    return list(TraceFile(folder / name).load().keys)


@pytest.mark.traces
@pytest.mark.parametrize("name", ARC_REFERENCE)
def test_arc_matches_libcachesim_on_the_shared_traces(name: str) -> None:
    keys = _trace_keys(name)
    for size, expected in ARC_REFERENCE[name]:
        assert round(100 * count_hits("ARC", keys, size) / len(keys), 2) == expected, size


@pytest.mark.traces
def test_arc_on_oltp_at_the_papers_sizes() -> None:
    keys = _trace_keys("arc_OLTP.lis.zst")
    for size, expected in ARC_PAPER_SIZES.items():
        assert round(100 * count_hits("ARC", keys, size) / len(keys), 2) == expected, size


def test_names_and_aliases_resolve() -> None:
    assert resolve_policies(["arc", "lirs", "2q", "two-q", "LRU"]) == ["ARC", "LIRS", "TWO_Q", "LRU"]
    assert reference_name("nope") is None
    with pytest.raises(SimulationError, match="reference policies"):
        resolve_policies(["nope"])


def test_arc_moves_its_target_toward_the_list_whose_ghosts_are_hit() -> None:
    policy = make_policy("ARC", 4)
    assert isinstance(policy, ARCPolicy)
    resident: set[int] = set()

    def request(key: int) -> None:
        if key in resident:
            policy.on_access(key)
            return
        policy.on_miss(key)
        policy.on_insert(key)
        resident.add(key)
        while len(resident) > 4:
            resident.discard(policy.victim())

    for key in (0, 1, 0, 1, 2, 3, 4):  # 0 and 1 reach T2; 4 pushes T1's oldest (2) to B1
        request(key)
    assert 2 not in resident and policy.target == 0
    request(2)  # a ghost hit in B1: recency deserved more room
    assert policy.target == 1
    assert 2 in resident


def test_lirs_keeps_hitting_a_loop_larger_than_the_cache() -> None:
    loop = list(range(120)) * 50  # 120 keys in a cycle, a 100-entry cache
    assert count_hits("LRU", loop, 100) == 0
    lirs = count_hits("LIRS", loop, 100)
    # A stable LIR set of ~99 keys hits on every pass after the first few.
    assert lirs > 0.7 * len(loop)
    assert lirs <= count_hits("BELADY", loop, 100)


def test_lirs_hir_share_is_one_percent_and_at_least_one_entry() -> None:
    assert make_policy("LIRS", 1000)._hir_limit == 10  # type: ignore[attr-defined]
    assert make_policy("LIRS", 50)._hir_limit == 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        LIRSPolicy(10, hir_ratio=1.0)


def test_two_q_protects_reused_keys_from_a_scan() -> None:
    keys = list(WithScans(Zipf(keys=5000, requests=60000, exponent=0.9, seed=1), 1000, 400))
    assert count_hits("TWO_Q", keys, 300) > 1.1 * count_hits("LRU", keys, 300)


def test_two_q_hits_in_its_fifo_do_not_promote() -> None:
    policy = make_policy("TWO_Q", 8)  # A1in holds 2, A1out remembers 4
    assert isinstance(policy, TwoQPolicy)
    resident: set[int] = set()

    def request(key: int) -> bool:
        if key in resident:
            policy.on_access(key)
            return True
        policy.on_miss(key)
        policy.on_insert(key)
        resident.add(key)
        while len(resident) > 8:
            resident.discard(policy.victim())
        return False

    for key in range(8):
        request(key)
    request(0)  # a hit in A1in: no promotion, 0 stays first in line
    request(100)
    assert 0 not in resident


@pytest.mark.parametrize("name", ["ARC", "LIRS", "TWO_Q"])
def test_reference_policies_are_deterministic_and_bounded_by_belady(name: str) -> None:
    keys = list(Zipf(keys=3000, requests=30000, exponent=0.9, seed=8))
    first = run_policy(make_policy(name, 200), keys)
    assert first == run_policy(make_policy(name, 200), keys)
    assert count_hits("LRU", keys, 200) * 0.9 < first <= count_hits("BELADY", keys, 200)


# -- the simulator's inlined replay loops: the same decisions as the hooks ------------------------

REPLAY_WORKLOADS = {
    "zipf": lambda: list(Zipf(keys=4000, requests=30000, exponent=0.9, seed=3)),
    "scans": lambda: list(WithScans(Zipf(keys=3000, requests=20000, exponent=1.0, seed=4), 700, 300)),
    "reuse": lambda: list(RecentReuse(requests=20000, new_fraction=0.3, mean_gap=150, seed=5)),
    "loop": lambda: list(Loop(keys=300, requests=9000)),
    "strings": lambda: [f"k{key % 997}" for key in Zipf(keys=5000, requests=15000, exponent=0.8, seed=6)],
}


@pytest.mark.parametrize("name", ["ARC", "LIRS", "TWO_Q"])
@pytest.mark.parametrize("workload", REPLAY_WORKLOADS)
@pytest.mark.parametrize("size", [1, 2, 7, 100, 1000])
def test_replay_makes_the_same_decisions_as_the_hooks(name: str, workload: str, size: int) -> None:
    keys = REPLAY_WORKLOADS[workload]()
    hooked, replayed = make_policy(name, size), make_policy(name, size)
    assert replayed.replay(keys) == run_policy(hooked, keys)  # type: ignore[attr-defined]
    # Same lists, same order, same adaptive state: the next decisions agree too.
    assert repr(vars(replayed)) == repr(vars(hooked))
    assert count_hits(name, keys, size) == run_policy(make_policy(name, size), keys)


def test_replay_reports_progress_in_chunks() -> None:
    done: list[int] = []
    make_policy("ARC", 10).replay(list(range(1000)), done.append, chunk=300)  # type: ignore[attr-defined]
    assert done == [300, 300, 300, 100]
