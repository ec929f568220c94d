"""Project isolation: a project view can never touch another project's keys, whatever the glob.

Run on every level (so L1, L2 and both are covered) and on both facades.
Keys and patterns are full of glob metacharacters: ``* ? [ ] \\``.
"""

from __future__ import annotations

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qcache.l2.glob import compile_glob, escape_glob

from .conftest import MakeCache
from .support import Handle

pytestmark = pytest.mark.redis

TRICKY_KEYS = [
    "plain",
    "star*",
    "starX",
    "q?",
    "qZ",
    "[br]",
    "b",
    "back\\slash",
    "back\\\\slash",
    "*",
    "a:b:c",
    "acme:plain",
    "x" * 300,  # hashed: its storage key does not contain it
]
ATTACK_PATTERNS = [
    "*",
    "?*",
    "*:*",
    "\\*",
    "*\\",
    "*\\*",
    "[a-z]*",
    "[^z]*",
    "[*]",
    "default:*",
    "*acme*",
    "*:acme:*",
    "..:acme:*",
    "\\",
    "x*",
]


@pytest.fixture(params=["L1_MEMORY", "L2_REDIS", "BOTH"])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def expect_intact(victim: Handle, make_cache: MakeCache, level: str) -> None:
    """The victim's values, read through its own view and, for L2 levels, straight from L2."""
    expected = {key: ("acme", key) for key in TRICKY_KEYS}
    assert await victim.get_many(TRICKY_KEYS) == expected
    if victim.core.use_l2:
        fresh = (await make_cache("L2_REDIS")).for_project("acme")  # no L1: what Redis holds
        assert await fresh.get_many(TRICKY_KEYS) == expected


async def test_another_project_cannot_read_write_delete_clear_or_invalidate(
    make_cache: MakeCache, level: str
) -> None:
    cache = await make_cache(level)
    acme, evil = cache.for_project("acme"), cache.for_project("evil")
    await acme.set_many({key: ("acme", key) for key in TRICKY_KEYS}, ttl=60)

    for key in TRICKY_KEYS:
        assert await evil.get(key) is None
        assert await cache.get(key) is None  # the global namespace is just another one
    assert await evil.get_many(TRICKY_KEYS) == {}

    for key in TRICKY_KEYS:
        await evil.set(key, ("evil", key), ttl=60)
        assert await evil.get(key) == ("evil", key)
    await expect_intact(acme, make_cache, level)

    for key in TRICKY_KEYS:
        assert await evil.delete(key) is True  # its own copy
        assert await evil.delete(key) is False
    await expect_intact(acme, make_cache, level)

    await evil.set_many({key: 0 for key in TRICKY_KEYS}, ttl=60)
    for pattern in ATTACK_PATTERNS:
        await evil.invalidate_pattern(pattern)
        await evil.invalidate_pattern(pattern, cache_type="search")
        await cache.invalidate_pattern(pattern)
    assert await evil.get_many(TRICKY_KEYS) == {}  # "*" did reach all of evil's own keys
    await expect_intact(acme, make_cache, level)

    await evil.set("k", 1, ttl=60)
    assert await evil.clear() == 1
    assert await cache.clear() == 0
    await expect_intact(acme, make_cache, level)
    assert await acme.clear() == len(TRICKY_KEYS)
    assert await acme.get_many(TRICKY_KEYS) == {}


async def test_metacharacters_in_patterns_match_literally_when_escaped(make_cache: MakeCache, level: str) -> None:
    acme = (await make_cache(level)).for_project("acme")
    await acme.set_many({key: key for key in TRICKY_KEYS}, ttl=60)
    cases = [
        ("star\\*", {"star*"}),
        ("q\\?", {"q?"}),
        ("\\[br\\]", {"[br]"}),
        ("[[]br[]]", set()),  # "[[]" holds "[", but "[]" is an empty class that matches nothing
        ("back\\\\slash", {"back\\slash"}),
        ("\\*", {"*"}),
        ("a:*", {"a:b:c"}),
        ("x" * 299 + "?", {"x" * 300}),
    ]
    remaining = set(TRICKY_KEYS)
    for pattern, removed in cases:
        assert await acme.invalidate_pattern(pattern, cache_type="default") == len(removed), pattern
        remaining -= removed
        assert set(await acme.get_many(TRICKY_KEYS)) == remaining, pattern


async def test_project_names_must_be_plain(make_cache: MakeCache, level: str) -> None:
    cache = await make_cache(level)
    for bad in ("a*", "a?", "[a]", "a\\b", "acme:x", "", "_", "-x", "a b", "x" * 65):
        with pytest.raises(ValueError):
            cache.for_project(bad)


async def test_without_isolation_every_view_shares_the_global_namespace(make_cache: MakeCache, level: str) -> None:
    cache = await make_cache(level, CACHE_PROJECT_ISOLATION="false")
    await cache.for_project("acme").set("k", 1, ttl=60)
    assert await cache.for_project("other").get("k") == 1
    assert await cache.get("k") == 1


ALPHABET = "ab:-^*?[]\\"


@example(pattern="[a-]]", keys=["a", "]", "^", "-]", "a]"])  # "a-]" is a range, as in Redis
@example(pattern="[?*-]", keys=["[", "\\", "]", "?", "-"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pattern=st.text(ALPHABET, min_size=1, max_size=8),
    keys=st.lists(st.text(ALPHABET, max_size=6), min_size=1, max_size=6, unique=True),
)
def test_l1_globs_match_exactly_what_redis_scan_matches(
    raw_redis: redis.Redis, prefix: str, pattern: str, keys: list[str]
) -> None:
    """L1 invalidation (qcache.l2.glob) and L2 invalidation (SCAN MATCH) must remove the same keys."""
    try:
        regex = compile_glob(pattern)
    except ValueError:
        return  # an unterminated class is refused before any tier is touched
    base = f"{prefix}:glob:"
    with raw_redis.pipeline(transaction=False) as pipe:  # not MSET: on a cluster the keys span slots
        for key in keys:
            pipe.set(base + key, b"1")
        pipe.execute()
    try:
        scanned = {
            k.decode()[len(base) :] for k in raw_redis.scan_iter(match=escape_glob(base) + pattern, count=1000)
        }
        assert {key for key in keys if regex.fullmatch(key)} == scanned
    finally:
        raw_redis.delete(*(base + key for key in keys))
