"""``QueryCache.from_env`` / ``AsyncQueryCache.from_env`` build from the environment, not defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from qcache import AsyncQueryCache, CacheLevel, QueryCache


@pytest.fixture
def memory_only_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CACHE_LEVEL", "L1_MEMORY")
    monkeypatch.setenv("CACHE_KEY_PREFIX", "from-env")
    monkeypatch.setenv("MEMORY_CACHE_MAX_SIZE", "7")


def test_sync_cache_from_env(memory_only_env: None) -> None:
    with QueryCache.from_env() as cache:
        assert type(cache) is QueryCache
        assert cache.config.core.level is CacheLevel.L1_MEMORY
        assert cache.config.memory.max_size == 7
        cache.set("k", {"v": 1})
        assert cache.get("k") == {"v": 1}


async def test_async_cache_from_env(memory_only_env: None) -> None:
    async with AsyncQueryCache.from_env() as cache:
        assert type(cache) is AsyncQueryCache
        assert cache.config.core.key_prefix == "from-env"
        await cache.set("k", [1, 2])
        assert await cache.get("k") == [1, 2]
