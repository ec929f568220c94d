"""Access control's cost: a role-bound read against the same read on the cache, side by side.

Issue targets: a role-bound ``get`` costs at most 1.1x a plain ``get`` on an
L1 hit, and auditing every access adds at most 10% to an L2 ``get``. Each
benchmark alternates both sides round by round (``bench_support.record_ratio``)
and records the median ratio in ``extra_info["ratio"]`` (lower is better).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench_support import MakeCache, record_ratio

VALUE = {"id": 7, "score": 0.5, "tags": ["a", "b"]}


def per_call_ns(fn: Callable[[], Any], number: int) -> Callable[[], float]:
    def round_ns() -> float:
        started = time.perf_counter_ns()
        for _ in range(number):
            fn()
        return (time.perf_counter_ns() - started) / number

    return round_ns


@pytest.mark.benchmark(group="access: role-bound over plain (interleaved)")
def test_bench_interleaved_role_bound_l1_hit(benchmark: Any, make_cache: MakeCache, tmp_path: Path,
                                             smoke: bool, gc_paused: None) -> None:
    """A client view's L1 hit over the cache's own (access logging off): the view adds nothing."""
    cache = make_cache("BOTH", CACHE_ACCESS_LOGGING=False, SECURITY_AUDIT_LOG_PATH=str(tmp_path / "audit.log"))
    cache.set("hot", VALUE)
    client = cache.as_role("client")
    assert client.get("hot") == VALUE
    get, role_get = cache.get, client.get
    record_ratio(benchmark, per_call_ns(lambda: role_get("hot"), 20_000), per_call_ns(lambda: get("hot"), 20_000),
                 smoke)


@pytest.mark.benchmark(group="access: role-bound over plain (interleaved)")
def test_bench_interleaved_audited_l2_get(benchmark: Any, make_cache: MakeCache, tmp_path: Path,
                                          smoke: bool) -> None:
    """A client view's L2 get with every access audited, over the cache's own L2 get."""
    cache = make_cache("L2_REDIS", CACHE_ACCESS_LOGGING=True, SECURITY_AUDIT_LOG_PATH=str(tmp_path / "audit.log"))
    cache.set("k", VALUE)
    client = cache.as_role("client")
    assert client.get("k") == VALUE
    get, role_get = cache.get, client.get
    record_ratio(benchmark, per_call_ns(lambda: role_get("k"), 300), per_call_ns(lambda: get("k"), 300), smoke)
