"""Tags: ``set(..., tags=)``, ``set_many(..., tags=)`` and ``invalidate_tags`` over every level and strategy."""

from __future__ import annotations

import pytest
import redis

from qcache.cache.tags import MAX_TAG_LENGTH, check_tags
from qcache.l2.tagging import GRACE_MS

from .conftest import MakeCache, build_config, server_url
from .support import Clocks, await_until, redis_keys

pytestmark = pytest.mark.redis

LEVELS_STRATEGIES = [
    ("BOTH", "WRITE_THROUGH"),
    ("BOTH", "WRITE_BACK"),
    ("BOTH", "WRITE_AROUND"),
    ("L1_MEMORY", "WRITE_THROUGH"),
    ("L2_REDIS", "WRITE_THROUGH"),
]


@pytest.mark.parametrize(("level", "strategy"), LEVELS_STRATEGIES)
async def test_invalidate_tags_removes_exactly_the_tagged_entries(
    make_cache: MakeCache, level: str, strategy: str
) -> None:
    cache = await make_cache(level, strategy)
    await cache.set("a", 1, tags=("repo:42",))
    await cache.set("b", 2, tags=("repo:42", "lang:py"))
    await cache.set("c", 3, tags=("repo:7",))
    await cache.set("d", 4)
    await cache.set_many({"e": 5, "f": 6}, tags=["repo:42"])
    assert await cache.invalidate_tags("repo:42") == 4
    assert await cache.get_many(["a", "b", "c", "d", "e", "f"]) == {"c": 3, "d": 4}
    await cache.flush()
    assert await cache.get_many(["a", "b", "e", "f"]) == {}
    # The tag is gone: invalidating it again removes nothing; other tags still work.
    assert await cache.invalidate_tags("repo:42") == 0
    assert await cache.invalidate_tags("repo:7", "lang:py") == 1
    assert await cache.get("c") is None


async def test_another_cache_on_the_same_redis_invalidates_by_tag(make_cache: MakeCache) -> None:
    """Membership lives in Redis: a second process's cache (another facade here) finds the tagged keys."""
    writer = await make_cache("BOTH", "WRITE_THROUGH")
    other = await make_cache("L2_REDIS", "WRITE_THROUGH", flavour="sync")
    await writer.set("doc:1", {"v": 1}, cache_type="search", tags=("doc",))
    await writer.set("doc:2", {"v": 2}, tags=("doc",))
    assert await other.invalidate_tags("doc") == 2
    assert await other.get("doc:2") is None
    assert await other.get("doc:1", cache_type="search") is None


async def test_a_write_back_tagged_write_is_tagged_in_redis_once_flushed(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    writer = await make_cache("BOTH", "WRITE_BACK")
    await writer.set("k", "v", tags=("t",))
    await writer.flush()
    tag_sets = {k for k in redis_keys(raw_redis, prefix) if ":~tag:" in k}
    assert len(tag_sets) == 1
    other = await make_cache("L2_REDIS", "WRITE_THROUGH", flavour="sync")
    assert await other.invalidate_tags("t") == 1
    assert not {k for k in redis_keys(raw_redis, prefix)}


async def test_a_write_back_write_is_dropped_by_its_tag_whether_flushed_or_pending(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    for i in range(200):  # some are still pending when their tag goes, some already flushed
        await cache.set(f"k{i}", i, tags=("t",))
    assert await cache.invalidate_tags("t") == 200
    await cache.flush()
    assert await cache.get_many([f"k{i}" for i in range(200)]) == {}
    assert not redis_keys(raw_redis, prefix)


async def test_tags_are_per_project(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    acme, other = cache.for_project("acme"), cache.for_project("other")
    await acme.set("k", 1, tags=("t",))
    await other.set("k", 2, tags=("t",))
    assert await acme.invalidate_tags("t") == 1
    assert await other.get("k") == 2
    assert await acme.get("k") is None


async def test_pattern_invalidation_leaves_tag_sets_alone_and_clear_removes_them(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    long_tag = "x" * MAX_TAG_LENGTH  # stored under a hashed set key
    await cache.set("a", 1, tags=("t", long_tag))
    await cache.set("b", 2, tags=("t",))
    assert await cache.invalidate_pattern("*") == 2
    await cache.set("c", 3, tags=("t",))
    assert await cache.invalidate_tags("t") == 1  # "a" and "b" were already gone
    await cache.set("d", 4, tags=(long_tag,))
    assert await cache.clear() == 1
    assert not redis_keys(raw_redis, prefix)


@pytest.mark.parametrize("level", ["L2_REDIS", "BOTH"])  # with L1, a sync cache's tagged set is a transaction
async def test_tag_sets_are_pruned_as_their_entries_expire(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str, clocks: Clocks, level: str
) -> None:
    """No unbounded sets: a tagged write drops members that expired (past the grace), and the set expires too."""
    cache = await make_cache(level, "WRITE_THROUGH", clocks=clocks)
    for i in range(50):
        await cache.set(f"old{i}", i, ttl=1, tags=("t",))
    (tag_set,) = [k for k in redis_keys(raw_redis, prefix) if ":~tag:" in k]
    assert raw_redis.zcard(tag_set) == 50
    assert 0 < raw_redis.pttl(tag_set) <= 1000 + GRACE_MS + 2  # the entry expiry rounds up by 1 ms
    clocks.advance(1 + GRACE_MS / 1000 + 1)
    await cache.set("new", 1, ttl=600, tags=("t",))
    assert raw_redis.zrange(tag_set, 0, -1) == [cache.storage_key("new").encode()]
    # Extended to the new member's lifetime plus the grace (counted from now: the server's clock may differ).
    assert abs(raw_redis.pttl(tag_set) - (600_000 + GRACE_MS)) < 5000
    await cache.set_many({"a": 1, "b": 2}, ttl=1200, tags=("t",))  # the batch path extends it the same way
    assert abs(raw_redis.pttl(tag_set) - (1_200_000 + GRACE_MS)) < 5000
    await cache.set("short", 1, ttl=5, tags=("t",))  # and never shortens it
    assert raw_redis.pttl(tag_set) > 1_200_000


async def test_the_local_index_stays_bounded_by_what_l1_holds(make_cache: MakeCache) -> None:
    cache = await make_cache("L1_MEMORY", "WRITE_THROUGH", MEMORY_CACHE_MAX_SIZE=1000)
    for i in range(20_000):
        await cache.set(f"k{i}", i, tags=(f"t{i % 3}",))
    assert len(cache.core.tag_index) <= 2 * 4096
    assert await cache.invalidate_tags("t0", "t1", "t2") == 1000


def test_bad_tags_are_clear_errors() -> None:
    assert check_tags(("a", "b", "a")) == ("a", "b")
    with pytest.raises(TypeError, match="collection of str"):
        check_tags("repo:42")
    with pytest.raises(TypeError, match="must be str"):
        check_tags((42,))
    with pytest.raises(ValueError, match="1 to"):
        check_tags(("",))
    with pytest.raises(ValueError, match="control character"):
        check_tags(("a\n",))
    with pytest.raises(ValueError, match="at most"):
        check_tags([f"t{i}" for i in range(65)])


async def test_bad_tags_fail_before_anything_is_written(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    with pytest.raises(TypeError):
        await cache.set("k", 1, tags="oops")
    with pytest.raises(ValueError):
        await cache.set_many({"a": 1}, tags=("",))
    with pytest.raises(ValueError, match="at least one tag"):
        await cache.invalidate_tags()
    assert await cache.get_many(["k", "a"]) == {}


async def test_the_memory_backend_keeps_tags_as_redis_does(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH", backend="memory")
    await cache.set("a", 1, tags=("t",))
    await cache.set_many({"b": 2, "c": 3}, tags=("t", "u"))
    assert await cache.invalidate_tags("u") == 2
    assert await cache.invalidate_tags("t") == 1
    assert await cache.clear() == 0


async def test_a_server_that_lost_its_scripts_gets_the_tag_script_again(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    """After a restart (SCRIPT FLUSH here) the first tagged write loads the script and lands."""
    cache = await make_cache("L2_REDIS", "WRITE_THROUGH")
    await cache.set("a", 1, tags=("t",))
    raw_redis.script_flush()
    await cache.set("b", 2, tags=("t",))
    assert await cache.invalidate_tags("t") == 2


def multi_refusals(client: redis.Redis) -> int:
    """How many MULTI commands the server refused so far (ACL refusals among them)."""
    return int(client.info("commandstats").get("cmdstat_multi", {}).get("rejected_calls", 0))


async def test_a_server_refusing_the_transaction_gets_the_script_from_then_on(
    make_cache: MakeCache, raw_redis: redis.Redis, redis_backend: str, flavour: str, prefix: str,
    request: pytest.FixtureRequest,
) -> None:
    """A sync cache's tagged set is a transaction on its invalidation connection; refused (no MULTI here, or a
    server before 7.0), it lands as the script on the pool, and later ones go there at once."""
    if redis_backend != "redis" or flavour != "sync":
        pytest.skip("only a sync cache on a standalone server writes tagged sets as transactions")
    user = f"nomulti-{prefix}"
    raw_redis.execute_command("ACL", "SETUSER", user, "on", ">nomulti-pw", "~*", "&*", "+@all", "-multi")
    try:
        url = server_url(request, redis_backend).replace("redis://", f"redis://{user}:nomulti-pw@")
        cache = await make_cache(config=build_config(url, prefix, "BOTH", "WRITE_THROUGH"))
        assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["live"], timeout=5)
        refused = multi_refusals(raw_redis)
        for key in ("a", "b"):
            await cache.set(key, key, ttl=60, tags=("t",))
        assert multi_refusals(raw_redis) == refused + 1  # the first one tried the transaction, the second not
        await cache.set("c", "c", ttl=60)  # untagged: still on the invalidation connection
        assert await await_until(lambda: cache.raw.stats()["l1_coherence"]["echoes_kept"] == 2, timeout=2)
        assert cache.raw.stats()["l1_coherence"]["unechoed"] == 1
        assert await cache.get_many(["a", "b", "c"]) == {"a": "a", "b": "b", "c": "c"}
        assert await cache.invalidate_tags("t") == 2
        assert raw_redis.exists(cache.storage_key("a"), cache.storage_key("b")) == 0
    finally:
        raw_redis.execute_command("ACL", "DELUSER", user)
