"""How batch chunks are run: bounded parallelism, order, errors, and no pool for one chunk."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from qcache.errors import BackendError
from qcache.l2 import AsyncRedisTier, RedisTier


class ConcurrencyProbe:
    """Records how many chunk calls overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.calls = 0

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


def sync_tier(parallel: int) -> RedisTier:
    """A tier whose client never connects: these tests exercise only the chunk runner."""
    return RedisTier(redis.Redis(), namespace="x:", batch_size=2, parallel_operations=parallel)


def test_sync_chunks_run_in_parallel_up_to_the_limit_in_order() -> None:
    tier = sync_tier(parallel=3)
    probe = ConcurrencyProbe()

    def work(chunk: list[int]) -> list[int]:
        probe.enter()
        time.sleep(0.01)
        probe.leave()
        return [n * 10 for n in chunk]

    try:
        chunks = [[i, i + 1] for i in range(0, 20, 2)]
        assert tier._run_chunks(work, chunks) == [[n * 10 for n in c] for c in chunks]
        assert probe.calls == 10
        assert 1 < probe.peak <= 3
    finally:
        tier.close()


def test_sync_chunk_failure_waits_for_the_others_then_raises_the_first() -> None:
    tier = sync_tier(parallel=2)
    probe = ConcurrencyProbe()

    def work(chunk: int) -> int:
        probe.enter()
        time.sleep(0.005)
        probe.leave()
        if chunk in (3, 5):
            raise ValueError(f"chunk {chunk}")
        return chunk

    try:
        with pytest.raises(ValueError, match="chunk 3"):
            tier._run_chunks(work, list(range(8)))
        assert probe.calls == 8 and probe.active == 0
    finally:
        tier.close()


def test_sync_parallelism_of_one_needs_no_threads() -> None:
    tier = sync_tier(parallel=1)
    caller = threading.get_ident()
    seen: set[int] = set()

    def work(chunk: int) -> int:
        seen.add(threading.get_ident())
        return chunk

    assert tier._run_chunks(work, [1, 2, 3]) == [1, 2, 3]
    assert seen == {caller}
    assert tier._executor is None


def test_sync_executor_is_created_lazily_and_shut_down_by_close() -> None:
    tier = sync_tier(parallel=2)
    assert tier._executor is None
    tier._run_chunks(lambda c: c, [1, 2])
    executor = tier._executor
    assert executor is not None
    tier.close()
    assert tier._executor is None
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)  # really shut down
    with pytest.raises(BackendError, match="closed"):
        tier._run_chunks(lambda c: c, [1, 2])


async def test_async_chunks_are_bounded_by_a_semaphore_in_order() -> None:
    tier = AsyncRedisTier(aredis.Redis(), namespace="x:", batch_size=2, parallel_operations=3)
    probe = ConcurrencyProbe()

    async def work(chunk: int) -> int:
        probe.enter()
        await asyncio.sleep(0.005)
        probe.leave()
        return chunk * 2

    try:
        assert await tier._run_chunks(work, list(range(10))) == [n * 2 for n in range(10)]
        assert probe.peak == 3
    finally:
        await tier.close()


async def test_async_chunk_failure_waits_for_the_others_then_raises_the_first() -> None:
    tier = AsyncRedisTier(aredis.Redis(), namespace="x:", parallel_operations=2)
    probe = ConcurrencyProbe()

    async def work(chunk: int) -> int:
        probe.enter()
        await asyncio.sleep(0.001 * (8 - chunk))  # later chunks finish first
        probe.leave()
        if chunk in (2, 6):
            raise ValueError(f"chunk {chunk}")
        return chunk

    try:
        with pytest.raises(ValueError, match="chunk 2"):
            await tier._run_chunks(work, list(range(8)))
        assert probe.calls == 8 and probe.active == 0
    finally:
        await tier.close()


def test_a_single_chunk_batch_uses_no_executor(redis_endpoint: Any, key_prefix: str) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    with RedisTier(
        client, namespace=key_prefix, batch_size=3, parallel_operations=2, owns_client=True
    ) as tier:
        tier.set_many({key_prefix + "a": b"1", key_prefix + "b": b"2"}, ttl=10)
        assert tier.get_many([key_prefix + "a", key_prefix + "b", key_prefix + "c"]) == [
            b"1",
            b"2",
            None,
        ]
        assert tier.delete(key_prefix + "a", key_prefix + "b") == 2
        assert tier._executor is None
        assert tier.get_many([key_prefix + str(i) for i in range(4)]) == [None] * 4
        assert tier._executor is not None
