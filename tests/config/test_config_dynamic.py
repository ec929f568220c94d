"""Runtime updates: atomic, validated, with sync and async callbacks; cache type registration."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from qcache.config import CacheConfig, CacheTypeConfig, RedisConfig, Secret
from qcache.errors import ConfigError

from .conftest import write_env


def make() -> CacheConfig:
    return CacheConfig(redis=RedisConfig(password=Secret("pw")))


def test_update_applies_and_returns_dotted_changes() -> None:
    config = make()
    changes = config.update({"CACHE_DEFAULT_TTL": "7200"}, **{"memory.max_size": 5})
    assert changes == {"core.default_ttl": (3600, 7200), "memory.max_size": (1000, 5)}
    assert config.core.default_ttl == 7200
    assert config.memory.max_size == 5


def test_update_with_same_values_changes_nothing_and_calls_nobody() -> None:
    config = make()
    calls: list[Any] = []
    config.on_change(lambda c, ch: calls.append(ch))
    before = config.snapshot()
    assert config.update(REDIS_PORT=6379) == {}
    assert calls == []
    assert config.snapshot() is before


@pytest.mark.parametrize(
    "changes",
    [
        {"REDIS_PORT": "abc"},  # unparsable
        {"REDIS_PORT": 70000},  # parses, fails validation
        {"CACHE_DEFAULT_TTL": 100, "MEMORY_CACHE_MAX_SIZE": 0},  # one good, one bad
        {"NO_SUCH_SETTING": 1},
        {"cache_types.nope.ttl": 5},
        {"ENVIRONMENT": "production"},  # a profile is a load-time layer
    ],
)
def test_invalid_update_changes_nothing_and_calls_nobody(changes: dict[str, Any]) -> None:
    config = make()
    calls: list[Any] = []
    config.on_change(lambda c, ch: calls.append(ch))
    before = config.snapshot()
    with pytest.raises(ConfigError):
        config.update(changes)
    assert config.snapshot() is before
    assert calls == []


def test_update_refused_while_errors_remain() -> None:
    config = CacheConfig.from_profile("staging")  # encryption on, no key
    with pytest.raises(ConfigError, match="encryption_key_missing"):
        config.update(CACHE_DEFAULT_TTL=10)
    assert config.core.default_ttl == 1800


def test_sync_callback_sees_new_config() -> None:
    config = make()
    seen: list[tuple[int, dict[str, Any]]] = []
    config.on_change(lambda cfg, ch: seen.append((cfg.core.default_ttl, ch)))
    config.update(CACHE_DEFAULT_TTL=10)
    assert seen == [(10, {"core.default_ttl": (3600, 10)})]


def test_unsubscribe() -> None:
    config = make()
    calls: list[int] = []
    unsubscribe = config.on_change(lambda c, ch: calls.append(1))
    config.update(CACHE_DEFAULT_TTL=10)
    unsubscribe()
    unsubscribe()  # idempotent
    config.update(CACHE_DEFAULT_TTL=11)
    assert calls == [1]


def test_failing_callback_is_logged_and_does_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make()
    calls: list[str] = []

    def broken(_c: CacheConfig, _ch: dict[str, Any]) -> None:
        raise RuntimeError("callback exploded")

    async def broken_async(_c: CacheConfig, _ch: dict[str, Any]) -> None:
        raise RuntimeError("async callback exploded")

    config.on_change(broken)
    config.on_change(broken_async)
    config.on_change(lambda c, ch: calls.append("after"))
    with caplog.at_level(logging.ERROR, logger="qcache.config"):
        config.update(CACHE_DEFAULT_TTL=10)
    assert calls == ["after"]
    assert config.core.default_ttl == 10
    assert "callback exploded" in caplog.text and "async callback exploded" in caplog.text


def test_async_callback_runs_to_completion_from_sync_update() -> None:
    config = make()
    done: list[int] = []

    async def callback(cfg: CacheConfig, _changes: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        done.append(cfg.core.default_ttl)

    config.on_change(callback)
    config.update(CACHE_DEFAULT_TTL=10)
    assert done == [10]


async def test_sync_update_inside_a_running_loop_schedules_async_callbacks() -> None:
    config = make()
    ran = asyncio.Event()
    order: list[str] = []

    async def callback(_cfg: CacheConfig, _changes: dict[str, Any]) -> None:
        order.append("callback")
        ran.set()

    config.on_change(callback)
    config.update(CACHE_DEFAULT_TTL=10)
    order.append("returned")
    await asyncio.wait_for(ran.wait(), timeout=5)
    assert order == ["returned", "callback"]


async def test_aupdate_awaits_async_callbacks_and_runs_sync_ones() -> None:
    config = make()
    order: list[str] = []

    async def slow(_cfg: CacheConfig, _changes: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        order.append("async")

    config.on_change(slow)
    config.on_change(lambda c, ch: order.append("sync"))
    changes = await config.aupdate({"SEARCH_CACHE_TTL": "60"})
    assert changes == {"cache_types.search.ttl": (1800, 60)}
    assert order == ["async", "sync"]


async def test_invalid_aupdate_changes_nothing() -> None:
    config = make()
    before = config.snapshot()
    with pytest.raises(ConfigError):
        await config.aupdate(REDIS_PORT=0)
    assert config.snapshot() is before


def test_readers_never_see_a_half_applied_update() -> None:
    config = make()
    stop = threading.Event()
    torn: list[Any] = []

    def reader() -> None:
        while not stop.is_set():
            snapshot = config.snapshot()
            redis = config.redis  # one section read at once is consistent too
            if snapshot.core.default_ttl != snapshot.memory.ttl:
                torn.append(("snapshot", snapshot.core.default_ttl, snapshot.memory.ttl))
            if redis.port != redis.max_connections + 1000:
                torn.append(("section", redis.port, redis.max_connections))

    config.update(REDIS_PORT=1010, REDIS_MAX_CONNECTIONS=10)
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for n in range(1, 301):
            config.update(
                CACHE_DEFAULT_TTL=n,
                MEMORY_CACHE_TTL=n,
                REDIS_PORT=1000 + (n % 50) + 1,
                REDIS_MAX_CONNECTIONS=(n % 50) + 1,
            )
    finally:
        stop.set()
        for thread in readers:
            thread.join(5)
    assert torn == []
    assert config.core.default_ttl == 300


def test_concurrent_updates_are_not_lost() -> None:
    config = make()
    keys = ["EMBEDDING_CACHE_TTL", "SEARCH_CACHE_TTL", "PROJECT_CACHE_TTL", "FILE_CACHE_TTL"]

    def writer(key: str) -> None:
        for n in range(1, 51):
            config.update({key: n})

    threads = [threading.Thread(target=writer, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [t.ttl for t in config.cache_types.values()] == [50, 50, 50, 50]


def test_updates_survive_a_reload(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "REDIS_PASSWORD=pw\nCACHE_DEFAULT_TTL=100\n")
    config = CacheConfig.from_env(env_file=path, environ={})
    config.update(MEMORY_CACHE_MAX_SIZE=7)
    write_env(path, "REDIS_PASSWORD=pw\nCACHE_DEFAULT_TTL=200\n")
    assert config.reload() == {"core.default_ttl": (100, 200)}
    assert config.memory.max_size == 7


def test_reload_needs_load_sources() -> None:
    with pytest.raises(ConfigError, match="from_env"):
        make().reload()


def test_cache_types_mapping_is_read_only() -> None:
    config = make()
    with pytest.raises(TypeError):
        config.cache_types["x"] = CacheTypeConfig()  # type: ignore[index]
    assert list(config.cache_types) == ["embedding", "search", "project", "file"]


def test_unknown_cache_type_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        make().cache_type("graph")
    assert "graph" in str(info.value)
    assert "embedding, file, project, search" in str(info.value)


def test_register_cache_type_and_override_it_from_env_on_next_load(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env", "REDIS_PASSWORD=pw\nGRAPH_CACHE_TTL=60\n")
    config = CacheConfig.from_env(env_file=path, environ={"GRAPH_CACHE_ENCRYPTION": "false"})
    calls: list[dict[str, Any]] = []
    config.on_change(lambda c, ch: calls.append(ch))
    config.register_cache_type("graph", CacheTypeConfig(ttl=900, max_size=20, compression=True))
    assert config.cache_type("graph") == CacheTypeConfig(ttl=900, max_size=20, compression=True)
    assert calls and calls[0]["cache_types.graph.ttl"] == (None, 900)
    assert config.to_env()["GRAPH_CACHE_TTL"] == "900"
    config.reload()  # the next load applies GRAPH_CACHE_* variables
    assert config.cache_type("graph").ttl == 60
    assert config.cache_type("graph").max_size == 20
    config.update(GRAPH_CACHE_MAX_SIZE=30)
    assert config.cache_type("graph").max_size == 30


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Graph", "lower-case identifier"),
        ("9lives", "lower-case identifier"),
        ("with-dash", "lower-case identifier"),
        ("search", "already registered"),
        ("memory", "MEMORY_CACHE_TTL"),  # would shadow the memory tier's variables
    ],
)
def test_register_cache_type_rejects_bad_names(name: str, message: str) -> None:
    config = make()
    before = config.snapshot()
    with pytest.raises(ConfigError, match=message):
        config.register_cache_type(name, CacheTypeConfig())
    assert config.snapshot() is before


def test_register_cache_type_rejects_invalid_settings_only_for_itself() -> None:
    config = CacheConfig.from_profile("staging")  # has an unrelated error
    with pytest.raises(ConfigError, match="cache_type_ttl_not_positive"):
        config.register_cache_type("graph", CacheTypeConfig(ttl=0))
    assert "graph" not in config.cache_types
    config.register_cache_type("graph", CacheTypeConfig(ttl=5))
    assert config.cache_type("graph").ttl == 5


def test_compression_and_encryption_per_type() -> None:
    snapshot = make().snapshot()
    assert snapshot.compresses("search") and not snapshot.compresses("project")
    assert not snapshot.encrypts("search")
    off = CacheConfig(cache_types={"project": CacheTypeConfig(encryption=True)}).snapshot()
    assert off.encrypts("project") and not off.encrypts("file")
    everything = CacheConfig.from_env(
        env_file=None,
        environ={"CACHE_ENCRYPTION_ENABLED": "true", "CACHE_COMPRESSION_ENABLED": "no"},
    )
    assert everything.snapshot().encrypts("file")
    assert not everything.snapshot().compresses("search")


def test_async_callback_fired_from_another_thread_runs_on_its_own_loop() -> None:
    """The .env watcher updates from its thread; an async service's callback must run on the service's loop."""
    seen: list[object] = []

    async def service() -> None:
        home = asyncio.get_running_loop()
        lock = asyncio.Lock()  # bound to this loop: would fail on any other
        done = asyncio.Event()
        config = CacheConfig()

        async def on_change(_config: CacheConfig, changes: Any) -> None:
            async with lock:
                seen.append((asyncio.get_running_loop() is home, dict(changes)))
            done.set()

        config.on_change(on_change)
        worker = threading.Thread(target=config.update, kwargs={"CACHE_DEFAULT_TTL": 99})
        worker.start()
        await asyncio.wait_for(done.wait(), timeout=5)
        worker.join(5)

    asyncio.run(service())
    assert seen == [(True, {"core.default_ttl": (3600, 99)})]

