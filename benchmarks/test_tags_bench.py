"""Tags' cost: a tagged write-through ``set`` against the same untagged ``set``, side by side.

Issue target: a tagged set costs at most 1.5x an untagged write-through set.
The tagged write sends its value and its two tags' set updates (ZADD, the
pruning and the set's expiry) in one pipeline round trip. Both sides
alternate round by round (``bench_support.record_ratio``); the median ratio
is in ``extra_info["ratio"]`` (lower is better).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from bench_support import MakeCache, record_ratio

VALUE = {"id": 7, "score": 0.5, "tags": ["a", "b"]}
WRITES = 300


@pytest.mark.benchmark(group="tags: tagged over untagged set (interleaved)")
def test_bench_interleaved_tagged_set(benchmark: Any, make_cache: MakeCache, smoke: bool) -> None:
    """Write-through sets with two tags over the same sets without, on a real Redis."""
    cache = make_cache("BOTH")

    def writes(tags: tuple[str, ...]) -> Any:
        def round_ns() -> float:
            started = time.perf_counter_ns()
            for i in range(WRITES):
                cache.set(f"k{i}", VALUE, tags=tags)
            return (time.perf_counter_ns() - started) / WRITES

        return round_ns

    record_ratio(benchmark, writes(("repo:42", "lang:py")), writes(()), smoke)
    assert cache.invalidate_tags("repo:42") == WRITES
