"""A hung or dead Redis never keeps a caller waiting past ``CACHE_L2_TIMEOUT_MS``, and L2 is back soon after it.

The client settings are the defaults (``REDIS_SOCKET_TIMEOUT=5``,
``REDIS_MAX_RETRIES=3``), under which redis-py alone waits up to 20 s; the
deadline must hold across those retries. The server is made to hang three
ways (``CLIENT PAUSE``, ``DEBUG SLEEP``, ``SIGSTOP``) and is killed once; each
run prints the caller-visible waits, the errors counted and the time from
Redis answering again to the cache writing to it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from .conftest import MakeCache, build_config
from .support import Handle, await_until

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

DEADLINE_MS = 200
COOL_DOWN_MS = 1000  # the default
THRESHOLD = 3
STALL = 2.5  # seconds the server hangs
SLACK = 0.15  # scheduling noise on a loaded 2-core machine


@dataclass
class Stall:
    """When a stalled server answers again (``back``) and a time before which it cannot (``lifted``)."""

    back: list[float] = field(default_factory=list)
    lifted: list[float] = field(default_factory=list)


@contextlib.contextmanager
def stalled(server: Any, how: str) -> Iterator[Stall]:
    """Hang (or kill) ``server`` for ``STALL`` seconds; ``back`` receives when it answers again.

    ``lifted`` receives an instant at or before the one from which the server
    can answer again: calls that start before it cannot reach Redis; calls
    between it and ``back`` may.
    """
    stall = Stall()
    back = stall.back
    client = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=30)
    worker: threading.Thread | None = None
    if how == "client-pause":
        stall.lifted.append(time.monotonic() + STALL)  # the pause starts after this, so it ends after this
        client.client_pause(int(STALL * 1000), all=True)
        timer = threading.Timer(STALL, lambda: back.append(time.monotonic()))
        timer.start()
    elif how == "debug-sleep":

        def sleep() -> None:
            client.execute_command("DEBUG", "SLEEP", STALL)  # the whole server sleeps, this call too
            back.append(time.monotonic())

        stall.lifted.append(time.monotonic() + STALL)
        worker = threading.Thread(target=sleep)
        worker.start()
        time.sleep(0.05)  # DEBUG SLEEP has reached the server
    elif how == "sigstop":
        os.kill(server.pid, signal.SIGSTOP)

        def resume() -> None:
            stall.lifted.append(time.monotonic())
            os.kill(server.pid, signal.SIGCONT)
            back.append(time.monotonic())

        threading.Timer(STALL, resume).start()
    else:
        server.kill()

        def restart() -> None:
            stall.lifted.append(time.monotonic())  # the new server may take calls before start() returns
            server.start()
            back.append(time.monotonic())

        threading.Timer(STALL, restart).start()
    try:
        yield stall
    finally:
        end = time.monotonic() + STALL + 10
        while not back and time.monotonic() < end:
            time.sleep(0.01)
        if worker is not None:
            worker.join()
        client.close()


async def measured(call: Any) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


@pytest.mark.parametrize("how", ["client-pause", "debug-sleep", "sigstop", "kill"])
async def test_a_hung_or_dead_redis_is_bounded_by_the_deadline_and_recovery_is_probed(
    make_cache: MakeCache, redis_server_factory: Any, prefix: str, flavour: str, how: str
) -> None:
    server = redis_server_factory(extra_config=["enable-debug-command local"])
    config = build_config(
        server.endpoint.url, prefix, "BOTH", "WRITE_THROUGH",
        REDIS_SOCKET_TIMEOUT=5.0, REDIS_CONNECTION_TIMEOUT=5.0, REDIS_MAX_RETRIES=3,
        CACHE_L2_TIMEOUT_MS=DEADLINE_MS, CACHE_BREAKER_THRESHOLD=THRESHOLD,
    )
    assert config.snapshot().redis.breaker_cooldown_ms == COOL_DOWN_MS
    cache: Handle = await make_cache(config=config)
    await cache.set("warm", 1, ttl=60)
    probe = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=30)
    try:
        with stalled(server, how) as stall:
            back = stall.back
            waits = []
            starts = []
            while not back:  # steady traffic of misses (each one needs L2) for as long as the stall lasts
                starts.append(time.monotonic())
                waits.append(await measured(cache.get(f"missing-{len(waits)}")))
                await asyncio.sleep(0.01)
            errors = (await cache.stats())["errors"]
        assert back, "the server did not come back"
        returned = back[0]
        # Calls made while the server could not answer; later ones (the server restarting) may succeed.
        stalled_calls = sum(1 for started in starts if started < stall.lifted[0])
        assert stalled_calls >= len(waits) * 0.8  # nearly all of them: the stall lasted the whole loop
        # Recovery: the first write that reaches Redis after it answers again.
        while True:
            await cache.set("after", "recovery", ttl=60)
            if probe.exists(cache.storage_key("after")):
                break
            assert time.monotonic() - returned < 10, "L2 never came back"
            await measured(cache.get("poll"))  # some traffic, as a service has
        recovered_in = time.monotonic() - returned
    finally:
        probe.close()
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    print(
        f"\n[{flavour} {how}] deadline {DEADLINE_MS} ms: wait p50 {statistics.median(waits) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms over {len(waits)} calls; errors {errors}; "
        f"L2 back {recovered_in * 1000:.0f} ms after Redis (cool-down {COOL_DOWN_MS} ms)"
    )
    assert waits[-1] <= DEADLINE_MS / 1000 + SLACK
    # Every call that reached the network failed and was counted; the breaker then skipped Redis.
    assert errors.get("l2_error", 0) >= THRESHOLD
    assert errors.get("l2_circuit_open", 0) >= 1
    assert errors.get("l2_error", 0) + errors.get("l2_circuit_open", 0) >= stalled_calls - 1
    assert recovered_in <= COOL_DOWN_MS / 1000 + DEADLINE_MS / 1000 + 0.3
    assert (await cache.stats())["l2_breaker"] == "closed"


@pytest.mark.parametrize("tags", [(), ("t",)], ids=["untagged", "tagged"])
@pytest.mark.parametrize("how", ["client-pause", "sigstop"])
async def test_write_through_sets_to_a_hung_redis_are_bounded_by_the_deadline(
    make_cache: MakeCache, redis_server_factory: Any, prefix: str, flavour: str, how: str, tags: tuple[str, ...]
) -> None:
    # A sync cache's single-key sets go on its invalidation connection when that is free (no echo to
    # check; a tagged one as a transaction): those are bounded by the deadline like the pool's, and the
    # tracking survives the stall.
    server = redis_server_factory()
    config = build_config(
        server.endpoint.url, prefix, "BOTH", "WRITE_THROUGH",
        REDIS_SOCKET_TIMEOUT=5.0, REDIS_CONNECTION_TIMEOUT=5.0, REDIS_MAX_RETRIES=3,
        CACHE_L2_TIMEOUT_MS=DEADLINE_MS, CACHE_BREAKER_THRESHOLD=THRESHOLD,
    )
    cache: Handle = await make_cache(config=config)
    await cache.set("warm", 1, ttl=60)
    if flavour == "sync":  # the quiet path is the one under test: a write has taken it
        assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
        for n in range(50):
            await cache.set(f"before-{n}", n, ttl=60, tags=tags)
        assert (await cache.stats())["l1_coherence"]["unechoed"] >= 1
    with stalled(server, how) as stall:
        back = stall.back
        waits = []
        while not back:
            waits.append(await measured(cache.set(f"during-{len(waits)}", len(waits), ttl=60, tags=tags)))
            await asyncio.sleep(0.01)
    assert back, "the server did not come back"
    waits.sort()
    print(f"\n[{flavour} {how}] set waits: p50 {statistics.median(waits) * 1000:.1f} ms, "
          f"max {waits[-1] * 1000:.1f} ms over {len(waits)} calls")
    assert waits[-1] <= DEADLINE_MS / 1000 + SLACK
