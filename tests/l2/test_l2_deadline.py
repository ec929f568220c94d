"""The tier's per-round-trip deadline, across retries, for every kind of call; breaker settings from config."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from qcache import CacheConfig
from qcache.errors import BackendError
from qcache.l2 import BreakerState, escape_glob
from qcache.l2.deadline import being_cancelled

from .support import call, config_for, make_tier

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

BUDGET_MS = 150


async def test_every_kind_of_call_on_a_paused_server_ends_within_the_deadline(
    flavour: str, redis_server: Any
) -> None:
    config = config_for(
        redis_server.endpoint, socket_timeout=5.0, connection_timeout=5.0, max_retries=3,
        l2_timeout_ms=BUDGET_MS, breaker_threshold=100,  # the breaker stays closed: every call reaches the server
    )
    tier: Any = make_tier(flavour, config, "dl:")
    admin = redis.Redis(**redis_server.endpoint.client_kwargs())
    try:
        await call(tier.set("dl:k", b"v", 60))
        calls = {
            "GET": lambda: tier.get("dl:k"),
            "MGET (3 chunks)": lambda: tier.get_many([f"dl:{i}" for i in range(7)]),
            "SET": lambda: tier.set("dl:k", b"w", 60),
            "PIPELINE SET": lambda: tier.set_many({f"dl:{i}": b"x" for i in range(7)}, ttl=60),
            "UNLINK": lambda: tier.delete("dl:k"),
            "SCAN": lambda: tier.scan_keys(escape_glob("dl:") + "*"),
            "PING": lambda: tier.ping(),
        }
        paused_until = time.monotonic() + 3.0
        admin.client_pause(3000, all=True)  # (CLIENT UNPAUSE would wait for the pause too)
        try:
            for name, make_call in calls.items():
                started = time.perf_counter()
                with pytest.raises(BackendError, match="Timeout|deadline"):
                    await call(make_call())
                waited = time.perf_counter() - started
                # Chunks run in parallel (2 at a time here), each under its own deadline.
                rounds = 2 if name.startswith(("MGET", "PIPELINE")) else 1
                assert waited <= rounds * BUDGET_MS / 1000 + 0.15, (name, waited)
            assert tier.breaker_stats().failures == len(calls)
            assert time.monotonic() < paused_until  # all of it happened while the server hung
        finally:
            time.sleep(max(0.0, paused_until - time.monotonic()))
        assert await call(tier.get("dl:k")) in (b"v", b"w", None)  # the same tier works again at once
    finally:
        admin.close()
        await call(tier.close())


def test_the_breaker_and_deadline_come_from_the_configuration(redis_endpoint: Any) -> None:
    config = CacheConfig.from_profile(
        "development", REDIS_URL=redis_endpoint.url, CACHE_BREAKER_THRESHOLD=2, CACHE_BREAKER_COOLDOWN_MS=300,
        CACHE_L2_TIMEOUT_MS=80, REDIS_SOCKET_TIMEOUT=3, REDIS_CONNECTION_TIMEOUT=4,
    )
    tier: Any = make_tier("sync", config, "cfg:")
    try:
        breaker = tier.breaker
        assert repr(breaker) == "CircuitBreaker(state=closed, failures=0/2, reset_timeout=0.3)"
        kwargs = tier.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.08
        breaker.record_failure()
        breaker.record_failure()
        assert breaker.state is BreakerState.OPEN
    finally:
        tier.close()


@pytest.mark.parametrize(
    "setting", ["CACHE_L2_TIMEOUT_MS", "CACHE_BREAKER_THRESHOLD", "CACHE_BREAKER_COOLDOWN_MS"]
)
def test_the_new_settings_must_be_positive(setting: str) -> None:
    problems = CacheConfig.from_profile("development", **{setting: 0}).validate()
    assert [p.field for p in problems if p.severity.value == "error"] == [setting]


def test_being_cancelled_is_true_only_inside_a_task_whose_cancellation_is_under_way() -> None:
    async def probe() -> tuple[bool, bool]:
        before = being_cancelled()
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return before, being_cancelled()
        raise AssertionError("the task was not cancelled")

    assert asyncio.run(probe()) == (False, True)
    assert being_cancelled() is False  # no event loop at all
