"""Fault handling against a private server that the test stops and restarts."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from qcache.errors import BackendError, CircuitOpenError
from qcache.l2 import BreakerState, CircuitBreaker

from .support import FakeClock, call, config_for, make_tier

pytestmark = pytest.mark.redis

CONNECT_TIMEOUT = 0.5
MAX_RETRIES = 1
THRESHOLD = 3
COOL_DOWN = 5.0


async def test_outage_opens_the_breaker_and_recovery_closes_it(
    flavour: str, redis_server: Any
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=THRESHOLD, reset_timeout=COOL_DOWN, clock=clock)
    config = config_for(
        redis_server.endpoint,
        connection_timeout=CONNECT_TIMEOUT,
        socket_timeout=CONNECT_TIMEOUT,
        max_retries=MAX_RETRIES,
    )
    tier = make_tier(flavour, config, "fault:", breaker=breaker)
    try:
        await call(tier.set("fault:k", b"v", 60))
        assert await call(tier.get("fault:k")) == b"v"

        redis_server.stop()
        # Every attempt fails fast: bounded by the configured timeouts and retries, not a hang.
        budget = (MAX_RETRIES + 1) * (CONNECT_TIMEOUT + 0.5) + 2.0
        operations = [
            lambda: tier.get("fault:k"),
            lambda: tier.get_many([f"fault:{i}" for i in range(7)]),
            lambda: tier.set("fault:k", b"v", 60),
        ]
        for operation in operations:
            started = time.monotonic()
            with pytest.raises(BackendError) as caught:
                await call(operation())
            assert not isinstance(caught.value, CircuitOpenError)
            assert time.monotonic() - started < budget
        assert breaker.state is BreakerState.OPEN

        # Open: refused without touching the network, even once the server is back.
        redis_server.start()
        with pytest.raises(CircuitOpenError):
            await call(tier.get("fault:k"))
        with pytest.raises(CircuitOpenError):
            await call(tier.set_many({"fault:a": b"1"}, ttl=60))
        assert breaker.stats().rejections == 2

        # After the cool-down one probe goes through; it succeeds and closes the breaker.
        clock.advance(COOL_DOWN)
        assert await call(tier.get("fault:k")) is None  # persistence is off: the data is gone
        assert breaker.state is BreakerState.CLOSED
        await call(tier.set_many({"fault:a": b"1", "fault:b": b"2"}, ttl=60))
        assert await call(tier.get_many(["fault:a", "fault:b"])) == [b"1", b"2"]
        stats = breaker.stats()
        assert (stats.times_opened, stats.consecutive_failures) == (1, 0)
    finally:
        await call(tier.close())


async def test_a_failed_probe_reopens_for_another_cool_down(
    flavour: str, redis_server: Any
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=COOL_DOWN, clock=clock)
    config = config_for(redis_server.endpoint, connection_timeout=CONNECT_TIMEOUT, max_retries=0)
    tier = make_tier(flavour, config, "fault:", breaker=breaker)
    try:
        assert await call(tier.ping()) > 0
        redis_server.kill()
        with pytest.raises(BackendError):
            await call(tier.ping())
        assert breaker.state is BreakerState.OPEN

        clock.advance(COOL_DOWN)
        with pytest.raises(BackendError) as caught:  # the probe itself fails
            await call(tier.ping())
        assert not isinstance(caught.value, CircuitOpenError)
        assert breaker.state is BreakerState.OPEN
        assert breaker.stats().times_opened == 2

        redis_server.start()
        clock.advance(COOL_DOWN - 0.1)
        with pytest.raises(CircuitOpenError):
            await call(tier.ping())
        clock.advance(0.1)
        assert await call(tier.ping()) > 0
        assert breaker.state is BreakerState.CLOSED
    finally:
        await call(tier.close())


async def test_tiers_can_share_one_breaker(redis_server: Any) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=COOL_DOWN, clock=clock)
    config = config_for(redis_server.endpoint, connection_timeout=CONNECT_TIMEOUT, max_retries=0)
    sync_tier = make_tier("sync", config, "shared:", breaker=breaker)
    async_tier = make_tier("async", config, "shared:", breaker=breaker)
    try:
        redis_server.stop()
        with pytest.raises(BackendError):
            await call(sync_tier.get("shared:k"))
        with pytest.raises(BackendError):
            await call(async_tier.get("shared:k"))
        assert sync_tier.breaker_stats().state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await call(async_tier.get("shared:k"))
    finally:
        await call(sync_tier.close())
        await call(async_tier.close())


async def test_a_hung_server_times_out_instead_of_blocking(flavour: str, redis_server: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=COOL_DOWN, clock=FakeClock())
    config = config_for(
        redis_server.endpoint, connection_timeout=0.3, socket_timeout=0.3, max_retries=1
    )
    tier = make_tier(flavour, config, "hang:", breaker=breaker)
    pid = redis_server.pid
    try:
        assert await call(tier.ping()) > 0
        os.kill(pid, signal.SIGSTOP)  # the server we started freezes: reads time out
        try:
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(BackendError, match="GET failed \\(TimeoutError"):
                    await call(tier.get("hang:k"))
                assert time.monotonic() - started < 2 * (0.3 + 0.5) + 2.0
            assert breaker.state is BreakerState.OPEN
        finally:
            os.kill(pid, signal.SIGCONT)
    finally:
        await call(tier.close())
