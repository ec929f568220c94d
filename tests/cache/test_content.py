"""Content hashes and ``validate``, and the schema version in the key space."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from qcache.cache.content import content_hash

from .conftest import MakeCache
from .support import redis_keys

pytestmark = pytest.mark.redis

LEVELS_STRATEGIES = [
    ("BOTH", "WRITE_THROUGH"),
    ("BOTH", "WRITE_BACK"),
    ("L1_MEMORY", "WRITE_THROUGH"),
    ("L2_REDIS", "WRITE_THROUGH"),
]


def test_the_digest_covers_the_whole_source_and_the_types() -> None:
    array = np.zeros(1000, dtype=np.float32)
    changed = array.copy()
    changed[999] = 1.0  # past the first 100 elements, which a sample would miss
    assert content_hash(array) != content_hash(changed)
    assert content_hash(array) != content_hash(array.astype(np.float64))
    assert content_hash(array) != content_hash(array.reshape(10, 100))
    assert len({content_hash(v) for v in (1, 1.0, "1", b"1", True, None, [1], (1,), {1})}) == 9
    assert content_hash({"a": 1, "b": [2, 3]}) == content_hash({"b": [2, 3], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash(["ab", "c"]) != content_hash(["a", "bc"])


def test_a_source_without_a_canonical_form_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot hash a object"):
        content_hash(object())
    with pytest.raises(TypeError, match="Python objects"):
        content_hash(np.array([object()]))


@pytest.mark.parametrize(("level", "strategy"), LEVELS_STRATEGIES)
async def test_validate_keeps_an_entry_whose_source_is_unchanged_and_drops_it_otherwise(
    make_cache: MakeCache, level: str, strategy: str
) -> None:
    cache = await make_cache(level, strategy)
    source = {"path": "src/app.py", "text": "print(1)"}
    await cache.set("parsed:app", {"ast": 1}, cache_type="file", source=source)
    assert await cache.validate("parsed:app", dict(source), cache_type="file") is True
    assert await cache.get("parsed:app", cache_type="file") == {"ast": 1}
    assert await cache.validate("parsed:app", {**source, "text": "print(2)"}, cache_type="file") is False
    assert await cache.get("parsed:app", cache_type="file") is None
    # Gone, so nothing can confirm it any more.
    assert await cache.validate("parsed:app", source, cache_type="file") is False


async def test_an_entry_stored_without_a_source_is_not_confirmed(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    await cache.set("k", 1)
    assert await cache.validate("k", "anything") is False
    assert await cache.get("k") is None


async def test_another_process_sees_the_digest_written_with_the_entry(make_cache: MakeCache) -> None:
    writer = await make_cache("BOTH", "WRITE_THROUGH")
    reader = await make_cache("BOTH", "WRITE_THROUGH", flavour="sync")
    long_key = "k" * 400  # a hashed storage key: the digest sits after the embedded caller key
    await writer.set(long_key, [1, 2], source=b"v1")
    assert await reader.validate(long_key, b"v1") is True
    assert await reader.get(long_key) == [1, 2]
    assert await reader.validate(long_key, b"v2") is False
    assert await reader.get(long_key) is None


async def test_a_new_schema_version_starts_empty_and_invalidation_reaches_every_version(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    v1 = await make_cache("L2_REDIS", "WRITE_THROUGH", CACHE_SCHEMA_VERSION="1")
    v2 = await make_cache("L2_REDIS", "WRITE_THROUGH", CACHE_SCHEMA_VERSION="2")
    unversioned = await make_cache("L2_REDIS", "WRITE_THROUGH")
    await v1.set("features:AAPL", "old shape", cache_type="search", tags=("sym",))
    assert await v2.get("features:AAPL", cache_type="search") is None
    await v2.set("features:AAPL", "new shape", cache_type="search", tags=("sym",))
    assert await v1.get("features:AAPL", cache_type="search") == "old shape"
    assert await v2.get("features:AAPL", cache_type="search") == "new shape"
    assert {k.split(":")[2] for k in redis_keys(raw_redis, prefix) if ":~tag:" not in k} == {"search@1", "search@2"}
    assert await unversioned.invalidate_pattern("features:*", cache_type="search") == 2
    await v1.set("a", 1, cache_type="search")
    await v2.set("b", 2, cache_type="search")
    assert await v1.invalidate_pattern("*", cache_type="search") == 2
    await v1.set("c", 1, tags=("t",))
    await v2.set("d", 2, tags=("t",))
    assert await v2.invalidate_tags("t") == 2
    assert not {k for k in redis_keys(raw_redis, prefix) if ":~tag:" not in k}


async def test_a_bad_schema_version_is_a_config_error(make_cache: MakeCache) -> None:
    from qcache.errors import ConfigError

    with pytest.raises(ConfigError, match="CACHE_SCHEMA_VERSION"):
        await make_cache("L2_REDIS", "WRITE_THROUGH", CACHE_SCHEMA_VERSION="v 2")
