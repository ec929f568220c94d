"""Cross-process L1 coherence: Redis client tracking drops other processes' copies of changed keys.

* The rules, without I/O: what a report does to L1, own writes and their echoes,
  a report merged with a later foreign write, a read in flight, a reset.
* Two processes on a real Redis: process B (``coherence_peer.py``) writes,
  deletes, pattern-invalidates and clears; process A (the test, either facade)
  returns the new state within a bound and never the old value afterwards.
  The propagation delays are printed (p50, p99).
* Other clients: a raw SET, DEL or expiry drops A's copy too.
* ``CLIENT KILL`` of the invalidation connection: L1 is flushed, tracking comes
  back, and a write made while nobody listened is never served stale.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from qcache.cache.coherence import L1Coherence
from qcache.cache.generations import WriteGenerations
from qcache.memory.store import MemoryStore
from qcache.testing import RedisEndpoint

from .conftest import MakeCache
from .support import Handle, await_until

#: These tests look at the one invalidation connection of a standalone server; a cluster has one per
#: primary, under a supervisor: tests/cache/test_cluster_coherence.py.
REDIS_BACKENDS = ("redis",)

PEER = Path(__file__).with_name("coherence_peer.py")
#: Rounds per operation in the two-process test (QCACHE_COHERENCE_ROUNDS for a longer measurement).
ROUNDS = int(os.environ.get("QCACHE_COHERENCE_ROUNDS", "25"))
#: Longest propagation the test accepts (the goal, p99 under 5 ms, is reported, not asserted).
BOUND = 1.0
TYPE = "search"


# -- the rules, no I/O --------------------------------------------------------------------------


def rules() -> tuple[L1Coherence, MemoryStore, WriteGenerations]:
    l1 = MemoryStore(max_entries=100, max_bytes=1 << 20)
    gens = WriteGenerations()
    coherence = L1Coherence(l1, gens)
    coherence.restored()
    return coherence, l1, gens


def test_a_report_drops_the_copy_and_moves_the_generation() -> None:
    coherence, l1, gens = rules()
    l1.set("p:k", "v", 1, 60)
    token = gens.token("p:k")
    coherence.invalidated(["p:k", "p:absent"])
    assert l1.peek("p:k") is None
    assert gens.token("p:k") != token  # a read in flight will not put the old value back
    assert coherence.stats().evicted == 1 and coherence.stats().reports == 2


def test_the_echo_of_an_own_write_keeps_the_copy_when_redis_holds_the_record() -> None:
    coherence, l1, _ = rules()
    woken: list[bool] = []
    coherence.wake = lambda: woken.append(True)
    coherence.write_begin("p:k")
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"record")
    coherence.invalidated(["p:k"])  # the echo
    assert l1.peek("p:k") is not None and woken
    checks = coherence.take_checks()
    assert checks == {"p:k": b"record"}
    coherence.checked(list(checks), list(checks.values()), [b"record"])
    assert l1.peek("p:k") is not None and coherence.stats().echoes_kept == 1


def test_an_echo_merged_with_a_later_foreign_write_drops_the_copy() -> None:
    # Redis merges the reports of one key changed twice in an event-loop turn: the check sees the difference.
    coherence, l1, gens = rules()
    coherence.write_begin("p:k")
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"mine")
    coherence.invalidated(["p:k"])
    token = gens.token("p:k")
    coherence.checked(["p:k"], [b"mine"], [b"theirs"])
    assert l1.peek("p:k") is None and gens.token("p:k") != token
    assert coherence.stats().echoes_dropped == 1


def test_a_report_while_an_own_write_is_in_flight_drops_the_old_copy_and_checks_the_new_one() -> None:
    coherence, l1, _ = rules()
    l1.set("p:k", "old", 1, 60)
    coherence.write_begin("p:k")
    coherence.invalidated(["p:k"])  # the echo, or someone else's write: cannot tell yet
    assert l1.peek("p:k") is None  # the old copy goes at once
    l1.set("p:k", "mine", 1, 60)  # the write path fills L1 after its L2 write
    coherence.write_end("p:k", b"mine")
    assert coherence.take_checks() == {"p:k": b"mine"}  # checked against Redis, not trusted


def test_a_second_report_after_the_echo_drops_the_copy() -> None:
    coherence, l1, _ = rules()
    coherence.write_begin("p:k")
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"mine")
    coherence.invalidated(["p:k"])  # the echo: checked
    coherence.invalidated(["p:k"])  # a later change: no longer an own write
    assert l1.peek("p:k") is None


def test_a_failed_own_write_waits_for_no_echo() -> None:
    coherence, l1, _ = rules()
    coherence.write_begin("p:k")
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", None)
    coherence.invalidated(["p:k"])  # if the write landed after all, its report drops the copy
    assert l1.peek("p:k") is None and coherence.take_checks() == {}


def test_a_lost_connection_or_flushall_flushes_everything() -> None:
    coherence, l1, gens = rules()
    l1.set("p:a", 1, 1, 60)
    coherence.write_begin("p:b")
    token = gens.token("p:a")
    coherence.lost()
    assert len(l1) == 0 and not coherence.live and gens.token("p:a") != token
    l1.set("p:b", 2, 1, 60)
    coherence.write_end("p:b", b"2")  # its echo may have been missed: checked, not awaited
    assert coherence.take_checks() == {"p:b": b"2"}
    coherence.restored()
    assert coherence.live and len(l1) == 0
    l1.set("p:c", 3, 1, 60)
    coherence.invalidated(None)  # FLUSHALL / FLUSHDB
    assert len(l1) == 0 and coherence.stats().resets == 4


def test_an_unechoed_own_write_awaits_nothing_and_a_later_report_drops_its_copy() -> None:
    coherence, l1, gens = rules()
    coherence.write_begin("p:k", quiet=True)
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"mine", quiet=True)
    assert coherence.take_checks() == {} and coherence.stats().unechoed == 1
    token = gens.token("p:k")
    coherence.invalidated(["p:k"])  # Redis sends no echo of it: any report is a change from elsewhere
    assert l1.peek("p:k") is None and gens.token("p:k") != token and coherence.take_checks() == {}


def test_a_write_that_could_go_unechoed_but_did_not_awaits_its_echo() -> None:
    coherence, l1, _ = rules()
    coherence.write_begin("p:k", quiet=True)
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"mine")  # the invalidation connection was busy: the pool wrote it
    coherence.invalidated(["p:k"])
    assert coherence.take_checks() == {"p:k": b"mine"} and coherence.stats().unechoed == 0


def test_a_report_while_an_unechoed_write_is_in_flight_checks_its_copy() -> None:
    coherence, l1, _ = rules()
    l1.set("p:k", "old", 1, 60)
    coherence.write_begin("p:k", quiet=True)
    coherence.invalidated(["p:k"])  # a change from elsewhere, before or after the write: cannot tell yet
    assert l1.peek("p:k") is None
    l1.set("p:k", "mine", 1, 60)
    coherence.write_end("p:k", b"mine", quiet=True)
    assert coherence.take_checks() == {"p:k": b"mine"}


@pytest.mark.parametrize("quiet_first", [True, False])
def test_overlapping_own_writes_one_unechoed_are_checked_and_the_last_drops_the_copy(quiet_first: bool) -> None:
    # In one event-loop turn the unechoed write, last, hides the other's echo: nothing may wait for it.
    coherence, l1, gens = rules()
    coherence.write_begin("p:k", quiet=quiet_first)
    coherence.write_begin("p:k", quiet=not quiet_first)
    l1.set("p:k", "first", 1, 60)
    coherence.write_end("p:k", b"first", quiet=quiet_first)
    assert coherence.take_checks() == {"p:k": b"first"}
    l1.set("p:k", "second", 1, 60)
    token = gens.token("p:k")
    coherence.write_end("p:k", b"second", quiet=not quiet_first)
    assert l1.peek("p:k") is None and gens.token("p:k") != token
    assert coherence.take_checks() == {} and coherence.stats().unechoed == 0


def test_the_last_of_overlapping_own_writes_drops_the_copy_whatever_order_l1_took_them_in() -> None:
    # Redis got A then B, L1 took B then A: a check of B's record would find Redis holding it, and keep A.
    coherence, l1, _ = rules()
    coherence.write_begin("p:k")
    coherence.write_begin("p:k")
    l1.set("p:k", "B", 1, 60)
    l1.set("p:k", "A", 1, 60)
    coherence.write_end("p:k", b"A")
    coherence.invalidated(["p:k"])  # A's echo (or both, merged)
    coherence.write_end("p:k", b"B")
    assert l1.peek("p:k") is None


def test_a_write_back_flush_overlapping_a_write_keeps_the_flushed_copy_to_its_check() -> None:
    coherence, l1, _ = rules()
    l1.set("p:k", "pending value", 1, 60)
    coherence.writes_begin(["p:k"], flushing=True)
    coherence.write_begin("p:k")
    coherence.write_end("p:k", b"written")
    coherence.writes_end([("p:k", b"pending value")])
    assert l1.peek("p:k") is not None  # no blind drop: the flushed value may be the newest this process has


def test_the_echo_of_an_earlier_own_write_checks_the_unechoed_copy_after_it() -> None:
    coherence, l1, _ = rules()
    coherence.write_begin("p:k")
    l1.set("p:k", "first", 1, 60)
    coherence.write_end("p:k", b"first")  # its echo is on its way
    coherence.write_begin("p:k", quiet=True)
    l1.set("p:k", "second", 1, 60)
    coherence.write_end("p:k", b"second", quiet=True)
    coherence.invalidated(["p:k"])  # the first write's echo
    checks = coherence.take_checks()
    assert checks == {"p:k": b"second"}  # the copy L1 holds now
    coherence.checked(list(checks), list(checks.values()), [b"second"])
    assert l1.peek("p:k") is not None


# -- two processes on a real Redis -------------------------------------------------------------


class Peer:
    """Process B: a cache in a subprocess, changing keys on command."""

    def __init__(self, url: str, prefix: str, flavour: str, backend: str = "redis") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), url, prefix, flavour, backend],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def acked_at(self) -> float:
        """The ``time.monotonic()`` at which B's call returned."""
        word, stamp = self.readline().split()
        assert word == "ok"
        return float(stamp)

    def do(self, command: str) -> float:
        self.send(command)
        return self.acked_at()

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def peer(redis_endpoint: RedisEndpoint, prefix: str, flavour: str) -> Iterator[Peer]:
    process = Peer(redis_endpoint.url, prefix, flavour)
    try:
        yield process
    finally:
        process.close()


async def hold(cache: Handle, key: str, value: str) -> None:
    """Read ``key`` until A's L1 holds ``value`` and keeps it (a late report may drop a fresh copy once)."""
    skey = cache.storage_key(key, TYPE)
    l1 = cache.core.l1
    assert l1 is not None
    for _ in range(200):
        if await cache.get(key, cache_type=TYPE) == value:
            await asyncio.sleep(0.005)
            entry = l1.peek(skey)
            if entry is not None and entry.value == value:
                return
        await asyncio.sleep(0.001)
    raise AssertionError(f"A's L1 never held {key}={value!r}")


async def watch(cache: Handle, key: str, new: Any, old: Any) -> tuple[float, list[Any]]:
    """Poll A's get until it returns ``new``, then a while longer; when it first did, and every value seen after."""
    deadline = time.monotonic() + BOUND
    first_new = None
    after: list[Any] = []
    while True:
        value = await cache.get(key, cache_type=TYPE)
        now = time.monotonic()
        if first_new is None:
            if value == new:
                first_new = now
                deadline = now + 0.02  # keep watching: the old value must never come back
            elif value != old:
                raise AssertionError(f"A read {value!r}, neither the old {old!r} nor the new {new!r}")
        else:
            after.append(value)
        if now >= deadline:
            break
        await pause(cache)
    assert first_new is not None, f"A still served the old value {old!r} {BOUND} s after B's change"
    return first_new, after


async def pause(cache: Handle) -> None:
    """What a service does between requests (I/O): the listener gets its turn.

    ``asyncio.sleep`` with a delay rounds up to epoll's millisecond, which
    would be the measurement's resolution: a sync cache sleeps 0.1 ms on the
    thread, an async one yields to its loop.
    """
    if cache.is_async:
        await asyncio.sleep(0)
    else:
        time.sleep(0.0001)


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def test_changes_in_another_process_reach_this_l1_within_the_bound(
    make_cache: MakeCache, peer: Peer, flavour: str
) -> None:
    cache = await make_cache("BOTH")
    delays: dict[str, list[float]] = {}
    for op in ("set", "delete", "pattern", "clear"):
        for i in range(ROUNDS):
            key = f"{op}{i}"
            peer.do(f"set {key} old")
            await hold(cache, key, "old")
            command, new = {
                "set": (f"set {key} new", "new"),
                "delete": (f"delete {key}", None),
                "pattern": (f"pattern {op}{i}*", None),
                "clear": ("clear", None),
            }[op]
            peer.send(command)
            first_new, after = await watch(cache, key, new, "old")
            acked = peer.acked_at()
            assert "old" not in after, f"{op}: A served the old value again after the new state"
            delays.setdefault(op, []).append(max(0.0, first_new - acked))
    for op, samples in delays.items():
        p50, p99 = percentile(samples, 50) * 1000, percentile(samples, 99) * 1000
        print(f"\n[coherence] {flavour} {op}: propagation p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(samples)}")
        assert max(samples) < BOUND
    stats = (await cache.stats())["l1_coherence"]
    assert stats["live"] and stats["evicted"] >= 4 * ROUNDS


async def test_a_tag_invalidated_in_another_process_leaves_this_l1(make_cache: MakeCache, peer: Peer) -> None:
    """Tags and coherence: B invalidates a tag; A's L1 copies of its entries go, whoever wrote them."""
    cache = await make_cache("BOTH")
    peer.do("set by-b old t1")  # written by B, read into A's L1
    await hold(cache, "by-b", "old")
    await cache.set("by-a", "old", ttl=600, cache_type=TYPE, tags=("t1",))  # written by A itself
    await hold(cache, "by-a", "old")
    peer.send("tags t1")
    for key in ("by-b", "by-a"):
        _, after = await watch(cache, key, None, "old")
        assert "old" not in after
    peer.acked_at()


async def test_own_writes_keep_their_copy_through_the_echo(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH")
    await cache.set("k", "mine", ttl=60, cache_type=TYPE)
    await cache.set_many({"a": 1, "b": 2}, ttl=60, cache_type=TYPE)
    # A sync cache's single-key set goes on the invalidation connection when it is free: no echo at all.
    quiet = 0 if cache.is_async else 1
    assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["echoes_kept"] >= 3 - quiet, timeout=2)
    assert cache.raw.stats()["l1_coherence"]["unechoed"] == quiet
    l1 = cache.core.l1
    assert l1 is not None
    for key in ("k", "a", "b"):
        assert l1.peek(cache.storage_key(key, TYPE)) is not None
    assert cache.raw.stats()["l1_coherence"]["evicted"] == 0


# -- other clients -----------------------------------------------------------------------------


async def test_a_raw_write_delete_or_expiry_by_another_client_drops_the_copy(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH")
    l1 = cache.core.l1
    assert l1 is not None
    for i, change in enumerate(("write", "delete", "expire")):
        key = f"k{i}"
        await cache.set(key, "v", ttl=60, cache_type=TYPE)
        skey = cache.storage_key(key, TYPE)
        assert l1.peek(skey) is not None
        if change == "write":
            raw_redis.set(skey, b"not a record", px=60_000)
        elif change == "delete":
            raw_redis.delete(skey)
        else:
            raw_redis.pexpire(skey, 1000)  # reported at once (the key changed), and again when it expires
            assert await await_until(lambda skey=skey: l1.peek(skey) is None, timeout=0.5)  # type: ignore[misc]
            assert await cache.get(key, cache_type=TYPE) == "v"  # back in L1, for the record's 60 s
            assert l1.peek(skey) is not None
        assert await await_until(lambda skey=skey: l1.peek(skey) is None, timeout=2), change  # type: ignore[misc]
        assert await cache.get(key, cache_type=TYPE) is None, change


# -- the invalidation connection killed ---------------------------------------------------------


def invalidation_client_ids(client: redis.Redis) -> list[int]:
    return [int(c["id"]) for c in client.client_list() if c.get("name") == "qcache-invalidation"]


@pytest.mark.timeout(60)
async def test_client_kill_of_the_invalidation_connection_leaves_no_stale_read(
    make_cache: MakeCache, redis_server: Any, prefix: str
) -> None:
    from .conftest import build_config

    cache = await make_cache(config=build_config(redis_server.endpoint.url, prefix, "BOTH", "WRITE_THROUGH"))
    client = redis.Redis(**redis_server.endpoint.client_kwargs())
    try:
        assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
        for round_ in range(5):
            await cache.set("k", f"old{round_}", ttl=60, cache_type=TYPE)
            skey = cache.storage_key("k", TYPE)
            assert cache.core.l1 is not None and cache.core.l1.peek(skey) is not None
            resets = cache.raw.stats()["l1_coherence"]["resets"]
            (victim,) = invalidation_client_ids(client)
            # Killed and written in one transaction: the report of this write can never arrive.
            with client.pipeline(transaction=True) as pipe:
                pipe.execute_command("CLIENT", "KILL", "ID", victim)
                pipe.set(skey, b"written while nobody listened", px=60_000)
                pipe.execute()
            written = time.monotonic()
            # A stops serving the old value as soon as it sees the loss (L1 flushed), and never serves it
            # again: tracking comes back and flushes once more what was filled meanwhile.
            first_fresh = None
            while time.monotonic() < written + BOUND:
                value = await cache.get("k", cache_type=TYPE)
                if value != f"old{round_}":
                    first_fresh = first_fresh or time.monotonic()
                else:
                    assert first_fresh is None, "the old value came back after the loss was handled"
                settled = cache.raw.stats()["l1_coherence"]["resets"] >= resets + 2
                if first_fresh is not None and settled and time.monotonic() > first_fresh + 0.02:
                    break
                await pause(cache)
            assert first_fresh is not None, "still the old value a second after the write"
            stats = cache.raw.stats()["l1_coherence"]
            assert stats["live"] and stats["resets"] >= resets + 2
            assert await cache.get("k", cache_type=TYPE) is None  # the raw bytes are no record: a miss
            assert invalidation_client_ids(client) != [victim]
        # Tracking works again: another client's change reaches L1.
        await cache.set("after", "v", ttl=60, cache_type=TYPE)
        client.delete(cache.storage_key("after", TYPE))
        l1 = cache.core.l1
        assert l1 is not None
        assert await await_until(lambda: l1.peek(cache.storage_key("after", TYPE)) is None, timeout=2)
    finally:
        client.close()


def test_a_server_refusing_tracking_is_said_once_and_the_cache_still_works(
    redis_server_factory: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    from qcache import CacheConfig, QueryCache

    server = redis_server_factory(extra_config=["user notrack on >pw ~* &* +@all -client|tracking"])
    config = CacheConfig.from_profile(
        "development", REDIS_URL=f"redis://notrack:pw@127.0.0.1:{server.port}/0", CACHE_KEY_PREFIX=prefix,
    )
    with caplog.at_level("WARNING", logger="qcache"), QueryCache(config) as cache:
        cache.set("k", 1, ttl=60)
        assert cache.get("k") == 1
        time.sleep(0.3)  # a few more attempts in the background
        assert not cache.stats()["l1_coherence"]["live"]
    assert len([r for r in caplog.records if "refused client tracking" in r.getMessage()]) == 1


async def test_memory_cache_ttl_caps_every_l1_copy(make_cache: MakeCache) -> None:
    writer = await make_cache("BOTH", MEMORY_CACHE_TTL=30)
    reader = await make_cache("BOTH", MEMORY_CACHE_TTL=30, MEMORY_CACHE_COHERENCE="false")
    await writer.set("own", "v", ttl=7200, cache_type=TYPE)  # a write fills L1
    await writer.set_many({"many": "v"}, ttl=7200, cache_type=TYPE)
    assert await reader.get("own", cache_type=TYPE) == "v"  # an L2 hit fills L1
    for cache, key in ((writer, "own"), (writer, "many"), (reader, "own")):
        assert cache.core.l1 is not None
        remaining = cache.core.l1.remaining_ttl(cache.storage_key(key, TYPE))
        assert remaining is not None and 29 < remaining <= 30, (key, remaining)


def test_a_report_while_one_write_awaits_its_echo_and_the_next_is_in_flight_checks_both() -> None:
    # One report may stand for the first write's echo, the second's and a later foreign write, merged.
    coherence, l1, _ = rules()
    coherence.write_begin("p:k")
    l1.set("p:k", "first", 1, 60)
    coherence.write_end("p:k", b"first")
    coherence.write_begin("p:k")
    coherence.invalidated(["p:k"])
    assert coherence.take_checks() == {"p:k": b"first"}
    l1.set("p:k", "second", 1, 60)
    coherence.write_end("p:k", b"second")
    assert coherence.take_checks() == {"p:k": b"second"}  # checked, not left waiting for an echo


def test_a_check_of_an_older_own_write_leaves_a_newer_one_to_its_own_echo() -> None:
    coherence, l1, _ = rules()
    for record in (b"first", b"second"):
        coherence.write_begin("p:k")
        l1.set("p:k", record.decode(), 1, 60)
        coherence.write_end("p:k", record)
        if record == b"first":
            coherence.invalidated(["p:k"])  # the first write's echo
            checks = coherence.take_checks()
    # Redis holds the second record by the time the first write's check runs: the copy stays ...
    coherence.checked(list(checks), list(checks.values()), [b"second"])
    assert l1.peek("p:k") is not None
    # ... until the second write's echo is checked against what Redis then holds.
    coherence.invalidated(["p:k"])
    checks = coherence.take_checks()
    coherence.checked(list(checks), list(checks.values()), [b"someone else's"])
    assert l1.peek("p:k") is None


def test_a_report_during_a_write_back_flush_leaves_the_flushed_copy_to_its_check() -> None:
    coherence, l1, _ = rules()
    l1.set("p:k", "pending value", 1, 60)  # a write-back write: L1 holds it before the flush
    coherence.writes_begin(["p:k"], flushing=True)
    coherence.invalidated(["p:k"])
    assert l1.peek("p:k") is not None  # the newest value this process knows, not an older one
    coherence.writes_end([("p:k", b"pending value")])
    checks = coherence.take_checks()
    coherence.checked(list(checks), list(checks.values()), [b"written later elsewhere"])
    assert l1.peek("p:k") is None


# -- single-key writes on the invalidation connection (sync) ---------------------------------------


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


@dataclass
class TwoProcesses:
    """A sync cache at level BOTH (``ours``), another process's cache on the same Redis, and an admin client."""

    ours: Any
    theirs: Any
    admin: redis.Redis


@pytest.fixture
def two(redis_server: Any, prefix: str) -> Iterator[TwoProcesses]:
    from qcache import QueryCache

    from .conftest import build_config

    url = redis_server.endpoint.url
    admin = redis.Redis(**redis_server.endpoint.client_kwargs())
    ours = QueryCache(build_config(url, prefix, "BOTH", "WRITE_THROUGH"))
    theirs = QueryCache(build_config(url, prefix, "L2_REDIS", "WRITE_THROUGH"))
    try:
        assert wait_for(lambda: ours.stats()["l1_coherence"]["live"], timeout=5)
        yield TwoProcesses(ours, theirs, admin)
    finally:
        ours.close()
        theirs.close()
        admin.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ours_first", [True, False], ids=["own-write-first", "own-write-last"])
def test_a_write_from_elsewhere_in_the_same_turn_as_an_unechoed_own_write(two: TwoProcesses, ours_first: bool) -> None:
    # CLIENT PAUSE WRITE holds both SETs; UNPAUSE lets them run back to back, in the order they came, and
    # Redis merges their reports. The report names the key unless the last change was this cache's own.
    ours, theirs, admin = two.ours, two.theirs, two.admin
    quiet_rounds = 0
    for round_ in range(4):
        mine, other = f"mine{round_}", f"theirs{round_}"
        ours.set("k", "seed", ttl=60)
        unechoed = ours.stats()["l1_coherence"]["unechoed"]
        reports = ours.stats()["l1_coherence"]["reports"]
        first, second = ((ours, mine), (theirs, other)) if ours_first else ((theirs, other), (ours, mine))
        admin.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        threads = []
        for cache, value in (first, second):
            thread = threading.Thread(target=cache.set, args=("k", value), kwargs={"ttl": 60})
            thread.start()
            threads.append(thread)
            time.sleep(0.1)  # this SET reaches the server, and waits there, before the next is sent
        admin.execute_command("CLIENT", "UNPAUSE")
        for thread in threads:
            thread.join(5)
        quiet_rounds += ours.stats()["l1_coherence"]["unechoed"] - unechoed
        last = second[1]
        assert theirs.get("k") == last  # what Redis holds
        # This L1 follows: at once if the own write was last, within the bound otherwise, and for good.
        assert wait_for(lambda last=last: ours.get("k") == last, timeout=BOUND), (round_, ours.get("k"))  # type: ignore[misc]
        for _ in range(10):
            assert ours.get("k") == last
            time.sleep(0.005)
        if ours_first:  # the (merged) report named the key: the last change was not this cache's
            assert ours.stats()["l1_coherence"]["reports"] > reports
    assert quiet_rounds >= 2  # the own writes went on the invalidation connection (unless it was busy)


@pytest.mark.parametrize("tags", [(), ("t",)], ids=["untagged", "tagged"])
async def test_a_write_from_elsewhere_right_after_an_unechoed_own_write_drops_the_copy(
    make_cache: MakeCache, raw_redis: redis.Redis, flavour: str, tags: tuple[str, ...]
) -> None:
    if flavour != "sync":
        pytest.skip("asyncio caches write through the pool (their own writes are echoed and checked)")
    cache = await make_cache("BOTH")
    assert wait_for(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    l1 = cache.core.l1
    assert l1 is not None
    for i in range(20):
        key = f"k{i}"
        await cache.set(key, "mine", ttl=60, cache_type=TYPE, tags=tags)
        skey = cache.storage_key(key, TYPE)
        raw_redis.delete(skey)  # sent as soon as the own write returned
        assert wait_for(lambda skey=skey: l1.peek(skey) is None, timeout=BOUND), i  # type: ignore[misc]
        assert await cache.get(key, cache_type=TYPE) is None
    stats = cache.raw.stats()["l1_coherence"]
    assert stats["unechoed"] >= 10 and stats["evicted"] + stats["echoes_dropped"] >= 20


@pytest.mark.timeout(60)
def test_own_writes_across_a_killed_invalidation_connection_land_and_leave_no_stale_copy(two: TwoProcesses) -> None:
    ours, theirs, admin = two.ours, two.theirs, two.admin
    for round_ in range(3):
        ours.set("k", f"before{round_}", ttl=60)
        resets = ours.stats()["l1_coherence"]["resets"]
        (victim,) = invalidation_client_ids(admin)
        # The write waits on the server (paused) when its connection is killed: it fails there, L1 is
        # flushed, and the write is made again on the pool or queued until it lands.
        admin.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        writing = threading.Thread(target=ours.set, args=("k", f"after{round_}"), kwargs={"ttl": 60})
        writing.start()
        time.sleep(0.1)
        admin.execute_command("CLIENT", "KILL", "ID", victim)
        admin.execute_command("CLIENT", "UNPAUSE")
        writing.join(5)
        assert wait_for(lambda v=f"after{round_}": theirs.get("k") == v, timeout=5)  # type: ignore[misc]
        assert ours.get("k") == f"after{round_}"
        theirs.set("k", f"theirs{round_}", ttl=60)  # reported once tracking is back, or flushed by it
        assert wait_for(lambda: ours.stats()["l1_coherence"]["live"], timeout=5)
        assert wait_for(lambda v=f"theirs{round_}": ours.get("k") == v, timeout=BOUND)  # type: ignore[misc]
        assert ours.stats()["l1_coherence"]["resets"] >= resets + 2  # the loss, then the restore
    unechoed = ours.stats()["l1_coherence"]["unechoed"]
    assert wait_for(lambda: (ours.set("k", "last", ttl=60), ours.stats()["l1_coherence"]["unechoed"])[1]
                    > unechoed, timeout=2)  # writes on the new connection again


@pytest.mark.timeout(120)
def test_threads_writing_few_keys_beside_another_client_settle_on_what_redis_holds(two: TwoProcesses) -> None:
    # Own writes of one key overlap (some on the invalidation connection, some on the pool) while another
    # client writes the same keys: once all is written, this L1 agrees with Redis on every key.
    keys = [f"k{i}" for i in range(3)]
    ours, theirs = two.ours, two.theirs
    for round_ in range(3):

        def own(worker: int, round_: int = round_) -> None:
            for n in range(200):
                ours.set(keys[n % len(keys)], f"own{round_}-{worker}-{n}", ttl=60)

        def foreign(round_: int = round_) -> None:
            for n in range(200):
                theirs.set(keys[n % len(keys)], f"theirs{round_}-{n}", ttl=60)

        threads = [threading.Thread(target=own, args=(w,)) for w in range(3)]
        threads.append(threading.Thread(target=foreign))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        def agree() -> bool:
            return all(ours.get(k) == theirs.get(k) for k in keys)

        assert wait_for(agree, timeout=BOUND), [(ours.get(k), theirs.get(k)) for k in keys]
        time.sleep(0.05)
        assert agree()
    assert ours.stats()["l1_coherence"]["unechoed"] > 0


def test_a_server_refusing_resp3_keeps_the_broadcast_connection_and_checks_echoes(
    redis_server_factory: Any, prefix: str
) -> None:
    from qcache import CacheConfig, QueryCache

    server = redis_server_factory(extra_config=['rename-command HELLO ""'])  # as a server or proxy without RESP3
    config = CacheConfig.from_profile(
        "development", REDIS_URL=f"redis://127.0.0.1:{server.port}/0", CACHE_KEY_PREFIX=prefix,
    )
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    with QueryCache(config) as cache:
        assert wait_for(lambda: cache.stats()["l1_coherence"]["live"], timeout=5)
        cache.set("k", "mine", ttl=60)
        stats = cache.stats
        assert wait_for(lambda: stats()["l1_coherence"]["echoes_kept"] == 1, timeout=2), stats()["l1_coherence"]
        assert cache.stats()["l1_coherence"]["unechoed"] == 0
        l1 = cache._core.l1
        assert l1 is not None
        skey = Handle(cache).storage_key("k")
        admin.delete(skey)
        assert wait_for(lambda: l1.peek(skey) is None, timeout=BOUND)
        assert cache.get("k") is None
    admin.close()


async def test_a_tagged_set_is_unechoed_on_a_sync_cache_and_echo_checked_on_an_async_one(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    # A sync cache sends it as a transaction on the invalidation connection (Redis reports a script's
    # writes to the connection that ran it, a transaction's not); an asyncio cache runs the script on the pool.
    cache = await make_cache("BOTH")
    assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
    await cache.set("k", "mine", ttl=60, cache_type=TYPE, tags=["t"])
    quiet = 0 if cache.is_async else 1
    assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["echoes_kept"] >= 1 - quiet, timeout=2)
    await asyncio.sleep(0.05)  # an echo, had there been one, would have been counted by now
    stats = cache.raw.stats()["l1_coherence"]
    assert (stats["unechoed"], stats["echoes_kept"], stats["evicted"]) == (quiet, 1 - quiet, 0)
    skey = cache.storage_key("k", TYPE)
    assert 59_000 < raw_redis.pttl(skey) <= 60_000
    assert await cache.get("k", cache_type=TYPE) == "mine"
    assert await cache.invalidate_tags("t") == 1  # the membership is in Redis
    assert raw_redis.exists(skey) == 0 and await cache.get("k", cache_type=TYPE) is None


@pytest.mark.timeout(60)
def test_after_a_server_outage_own_writes_go_unechoed_again(redis_server: Any, prefix: str) -> None:
    # While the server is away every attempt is RESP3 (an unreachable server says nothing about RESP3).
    from qcache import QueryCache

    from .conftest import build_config

    cache = QueryCache(build_config(redis_server.endpoint.url, prefix, "BOTH", "WRITE_THROUGH"))
    try:
        assert wait_for(lambda: cache.stats()["l1_coherence"]["live"], timeout=5)
        redis_server.kill()
        assert wait_for(lambda: not cache.stats()["l1_coherence"]["live"], timeout=5)
        time.sleep(0.3)  # a few attempts while it is away
        redis_server.start()
        assert wait_for(lambda: cache.stats()["l1_coherence"]["live"], timeout=10)
        unechoed = cache.stats()["l1_coherence"]["unechoed"]
        for i in range(5):
            cache.set(f"k{i}", i, ttl=60)
        assert cache.stats()["l1_coherence"]["unechoed"] > unechoed
    finally:
        cache.close()
