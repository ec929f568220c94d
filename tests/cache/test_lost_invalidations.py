"""No lost invalidations, and no silent split between the tiers, while Redis hangs or is down.

A delete, ``invalidate_pattern`` or ``clear`` that cannot reach Redis is kept
and retried until it lands: meanwhile this process never reads the deleted
value from L2, and once Redis answers again the flusher removes it there, so
no process reads it afterwards. A write-through ``set`` whose Redis write fails
is kept and retried the same way (an outage), or its L1 copy is dropped (a
refusal such as NOPERM), so the tiers never silently disagree.

Redis is hung with ``CLIENT PAUSE`` or killed (with an append-only file, so the
old values really are there again after the restart, as with a real outage).
Each test prints the caller-visible waits, the errors counted and the time from
Redis answering again to the queue being empty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from qcache.errors import BackendError, RedisAccessDenied

from .conftest import MakeCache, build_config
from .support import Handle, await_until, flusher_paused

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

DEADLINE_MS = 200
OUTAGE = 1.5  # seconds Redis is paused or down
DRAIN_BUDGET = 1.0 + 0.5 + 0.5  # breaker cool-down + the flusher's longest back-off + slack
PERSISTENT = ["appendonly yes", "appendfsync always"]


class Outage:
    """Pause or kill a private server for OUTAGE seconds; ``back`` is when it answers again."""

    def __init__(self, server: Any, how: str) -> None:
        self.server, self.how = server, how
        self.back: float | None = None
        self._done = threading.Event()

    def start(self) -> None:
        if self.how == "pause":
            client = redis.Redis(**self.server.endpoint.client_kwargs())
            client.client_pause(int(OUTAGE * 1000), all=True)
            client.close()
            threading.Timer(OUTAGE, self._returned).start()
        else:
            self.server.kill()
            threading.Timer(OUTAGE, lambda: (self.server.start(), self._returned())).start()

    def _returned(self) -> None:
        self.back = time.monotonic()
        self._done.set()

    def wait(self) -> float:
        assert self._done.wait(OUTAGE + 15), "the server did not come back"
        assert self.back is not None
        return self.back


@pytest.fixture
def server(redis_server_factory: Any) -> Any:
    return redis_server_factory(extra_config=PERSISTENT)


@pytest.fixture
def raw(server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=30)
    yield client
    client.close()


async def on(make_cache: MakeCache, server: Any, prefix: str, level: str = "BOTH", **options: Any) -> Handle:
    config = build_config(server.endpoint.url, prefix, level, "WRITE_THROUGH",
                          CACHE_L2_TIMEOUT_MS=DEADLINE_MS, REDIS_SOCKET_TIMEOUT=5.0, REDIS_MAX_RETRIES=3)
    return await make_cache(config=config, **options)


async def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def drain_time(cache: Handle, back: float, counter: str) -> float:
    """Seconds from Redis answering again (at ``back``) to ``stats()[counter]`` reaching zero."""
    assert await await_until(lambda: cache.raw.stats()[counter] == 0, timeout=DRAIN_BUDGET + 2)
    return time.monotonic() - back


async def report_and_check(label: str, cache: Handle, waits: list[float], drained_in: float) -> None:
    """Print the figures of one run, then hold them to the deadline and the drain budget."""
    errors = (await cache.stats())["errors"]
    print(f"\n[{label}] waits max {max(waits) * 1000:.0f} ms (deadline {DEADLINE_MS} ms) over {len(waits)} calls; "
          f"errors {errors}; queue empty {drained_in * 1000:.0f} ms after Redis answered")
    assert max(waits) <= DEADLINE_MS / 1000 + 0.15
    assert drained_in <= DRAIN_BUDGET


@pytest.mark.parametrize("how", ["pause", "kill"])
async def test_a_delete_during_an_outage_lands_once_redis_is_back_and_never_reads_stale_meanwhile(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str, flavour: str, how: str
) -> None:
    cache = await on(make_cache, server, prefix)
    await cache.set_many({"k": "old", "p": "kept"}, ttl=600)
    outage = Outage(server, how)
    outage.start()
    _, wait = await timed(cache.delete("k"))  # (True if L1 still held it: coherence drops L1 when Redis goes)
    stats = await cache.stats()
    assert stats["pending_invalidations"] == 1 and stats["errors"]["invalidation_deferred"] == 1
    waits = [wait]
    for _ in range(5):
        value, wait = await timed(cache.get("k"))
        assert value is None
        waits.append(wait)
    back = outage.wait()
    if how == "kill":  # (a paused server may yet run the UNLINK that timed out on our side)
        assert raw.get(cache.storage_key("k")) is not None  # Redis still holds the deleted value...
    async with flusher_paused(cache):  # ...and before the queue drains, this process never reads it
        assert await cache.get("k") is None
        assert "k" not in await cache.get_many(["k", "p"])  # ("p" may miss: L1 went with the coherence link)
        cache.core.l1.clear()
        assert "k" not in await cache.get_many(["k", "p"])  # (and while the breaker cools down)
    drained_in = await drain_time(cache, back, "pending_invalidations")
    assert not raw.exists(cache.storage_key("k"))
    other = await on(make_cache, server, prefix, "L2_REDIS")
    assert await other.get("k") is None and await other.get("p") == "kept"
    await report_and_check(f"{flavour} delete, {how}", cache, waits, drained_in)


@pytest.mark.parametrize("how", ["pause", "kill"])
async def test_pattern_invalidations_and_clears_during_an_outage_land_before_later_writes(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str, flavour: str, how: str
) -> None:
    cache = await on(make_cache, server, prefix)
    tenant = cache.for_project("acme")
    await cache.set_many({"features:AAPL:1": 1, "features:AAPL:2": 2, "features:MSFT:1": 3}, ttl=600)
    await tenant.set_many({"a": 1, "b": 2}, ttl=600)
    outage = Outage(server, how)
    outage.start()
    waits = []
    _, wait = await timed(cache.invalidate_pattern("features:*AAPL*"))  # L2's part is queued
    waits.append(wait)
    _, wait = await timed(tenant.clear())
    waits.append(wait)
    _, wait = await timed(cache.set("features:AAPL:2", "newer", ttl=600))  # after the invalidation: must survive
    waits.append(wait)
    assert (await cache.stats())["pending_invalidations"] == 2
    cache.core.l1.clear()  # whatever L1 held, L2's stale copies must still not be read
    for key in ("features:AAPL:1", "a"):
        value, wait = await timed((tenant if key == "a" else cache).get(key))
        assert value is None
        waits.append(wait)
    assert await cache.get("features:AAPL:2") == "newer"  # from the queue
    back = outage.wait()
    drained_in = await drain_time(cache, back, "pending_writes")
    other = await on(make_cache, server, prefix, "L2_REDIS")
    assert await other.get_many(["features:AAPL:1", "features:AAPL:2", "features:MSFT:1"]) == {
        "features:AAPL:2": "newer", "features:MSFT:1": 3,
    }
    assert await other.for_project("acme").get_many(["a", "b"]) == {}
    await report_and_check(f"{flavour} invalidate_pattern + clear, {how}", cache, waits, drained_in)


@pytest.mark.parametrize("how", ["pause", "kill"])
async def test_a_failed_write_through_set_is_retried_and_the_tiers_never_disagree(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str, flavour: str, how: str
) -> None:
    cache = await on(make_cache, server, prefix)
    await cache.set("k", "old", ttl=600)
    outage = Outage(server, how)
    outage.start()
    _, wait = await timed(cache.set("k", "new", ttl=600))
    stats = await cache.stats()
    assert stats["errors"]["write_through_deferred"] == 1 and stats["pending_writes"] == 1
    assert await cache.get("k") == "new"
    cache.core.l1.clear()
    assert await cache.get("k") == "new"  # from the queue: never the old value L2 still holds
    back = outage.wait()
    drained_in = await drain_time(cache, back, "pending_writes")
    other = await on(make_cache, server, prefix, "L2_REDIS")
    assert await other.get("k") == "new"
    await report_and_check(f"{flavour} write-through set, {how}", cache, [wait], drained_in)


async def test_a_write_redis_refuses_drops_the_l1_copy(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str, flavour: str
) -> None:
    raw.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+@connection", "+info")
    writer = await on(make_cache, server, prefix)
    await writer.set("k", "old", ttl=600)
    url = server.endpoint.url.replace("redis://", "redis://reader:reader-pw@")
    config = build_config(url, prefix, "BOTH", "WRITE_THROUGH", CACHE_L2_TIMEOUT_MS=DEADLINE_MS)
    reader = await make_cache(config=config)
    with pytest.raises(RedisAccessDenied):
        await reader.set("k", "new", ttl=600)
    assert (await reader.stats())["errors"]["write_through_refused"] == 1
    assert reader.core.l1.peek(reader.storage_key("k")) is None
    assert await reader.get("k") == "old"  # both tiers agree: the write did not happen
    assert (await reader.stats())["pending_writes"] == 0  # nothing retried that would be refused forever


async def test_strict_mode_raises_and_the_delete_still_lands(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str
) -> None:
    cache = await on(make_cache, server, prefix, strict=True)
    await cache.set("k", "old", ttl=600)
    outage = Outage(server, "pause")
    outage.start()
    with pytest.raises(BackendError):
        await cache.delete("k")
    assert await cache.get("k") is None
    await drain_time(cache, outage.wait(), "pending_invalidations")
    assert not raw.exists(cache.storage_key("k"))


async def test_close_drains_pending_invalidations_or_counts_them_lost(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str
) -> None:
    cache = await on(make_cache, server, prefix)
    await cache.set_many({"k": 1, "j": 2}, ttl=600)
    outage = Outage(server, "pause")
    outage.start()
    await cache.delete("k")
    await cache.close(timeout=OUTAGE + 3)  # waits for Redis, then drains
    assert not raw.exists(cache.storage_key("k")) and raw.exists(cache.storage_key("j"))
    assert "invalidation_lost" not in cache.raw._core.metrics.snapshot()["errors"]
    # Redis down for longer than close() waits: what could not land is counted, never silent.
    lost = await on(make_cache, server, prefix)
    await lost.get("j")
    server.kill()
    await lost.delete("j")
    await lost.close(timeout=0.5)
    assert lost.raw._core.metrics.snapshot()["errors"]["invalidation_lost"] == 1


async def test_a_tag_invalidation_during_an_outage_lands_and_nothing_tagged_is_read_meanwhile(
    make_cache: MakeCache, server: Any, raw: redis.Redis, prefix: str, flavour: str
) -> None:
    writer = await on(make_cache, server, prefix)
    await writer.set_many({"r1": 1, "r2": 2}, ttl=600, tags=("repo:42",))
    await writer.set("other", 3, ttl=600)
    cache = await on(make_cache, server, prefix)  # knows the tagged entries only from L2
    assert await cache.get_many(["r1", "r2", "other"]) == {"r1": 1, "r2": 2, "other": 3}
    outage = Outage(server, "kill")
    outage.start()
    _, wait = await timed(cache.invalidate_tags("repo:42"))
    cache.core.l1.clear()
    back = outage.wait()
    async with flusher_paused(cache):  # Redis is back, the invalidation not yet sent: nothing stale is read
        assert await cache.get_many(["r1", "r2"]) == {}
    drained_in = await drain_time(cache, back, "pending_invalidations")
    assert not raw.exists(cache.storage_key("r1")) and not raw.exists(cache.storage_key("r2"))
    assert await cache.get("other") == 3
    await report_and_check(f"{flavour} invalidate_tags, kill", cache, [wait], drained_in)
