"""The .env watcher: valid changes are applied and logged, invalid ones are refused."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qcache.config import CacheConfig, EnvFileWatcher, WatchOutcome
from qcache.errors import ConfigError

from .conftest import write_env

BASE = "REDIS_PASSWORD=pw\nCACHE_DEFAULT_TTL=3600\n"


@pytest.fixture
def env_path(tmp_path: Path) -> Path:
    return write_env(tmp_path / ".env", BASE)


@pytest.fixture
def watched(env_path: Path) -> Iterator[tuple[CacheConfig, EnvFileWatcher]]:
    config = CacheConfig.from_env(env_file=env_path, environ={})
    # A long interval: the tests drive polls themselves with poll_once().
    watcher = config.watch_env_file(env_path, interval=3600)
    yield config, watcher
    watcher.stop()


def test_valid_change_is_applied_and_logged(
    watched: tuple[CacheConfig, EnvFileWatcher], env_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config, watcher = watched
    calls: list[dict[str, Any]] = []
    config.on_change(lambda _c, changes: calls.append(changes))
    assert watcher.poll_once() is WatchOutcome.UNCHANGED
    write_env(env_path, BASE.replace("3600", "7200"))
    with caplog.at_level(logging.INFO, logger="qcache.config"):
        assert watcher.poll_once() is WatchOutcome.APPLIED
    assert config.core.default_ttl == 7200
    assert calls == [{"core.default_ttl": (3600, 7200)}]
    assert "CACHE_DEFAULT_TTL: 3600 -> 7200" in caplog.text
    assert watcher.poll_once() is WatchOutcome.UNCHANGED


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "REDIS_PASSWORD=pw\nCACHE_DEFAULT_TTL=-5\n",
            "CACHE_DEFAULT_TTL: must be a positive integer",
        ),
        ("REDIS_PASSWORD=pw\nREDIS_PORT=70000\n", "redis_port_out_of_range"),
        ("REDIS_PASSWORD=pw\nENVIRONMENT=qa\n", "ENVIRONMENT"),
    ],
)
def test_invalid_change_is_logged_and_old_config_kept(
    watched: tuple[CacheConfig, EnvFileWatcher],
    env_path: Path,
    caplog: pytest.LogCaptureFixture,
    text: str,
    problem: str,
) -> None:
    config, watcher = watched
    calls: list[Any] = []
    config.on_change(lambda _c, ch: calls.append(ch))
    before = config.snapshot()
    write_env(env_path, text)
    with caplog.at_level(logging.INFO, logger="qcache.config"):
        assert watcher.poll_once() is WatchOutcome.REJECTED
    assert config.snapshot() is before
    assert calls == []
    assert problem in caplog.text
    assert "keeping the previous configuration" in caplog.text
    # Fixing the file afterwards is picked up.
    write_env(env_path, BASE.replace("3600", "60"))
    assert watcher.poll_once() is WatchOutcome.APPLIED
    assert config.core.default_ttl == 60


def test_deleted_file_keeps_the_old_config(
    watched: tuple[CacheConfig, EnvFileWatcher], env_path: Path
) -> None:
    config, watcher = watched
    env_path.unlink()
    assert watcher.poll_once() is WatchOutcome.REJECTED
    assert config.redis.password is not None


def test_comment_only_change_changes_no_setting(
    watched: tuple[CacheConfig, EnvFileWatcher], env_path: Path
) -> None:
    _config, watcher = watched
    write_env(env_path, "# a comment\n" + BASE)
    assert watcher.poll_once() is WatchOutcome.NO_CHANGES


def test_same_size_rewrite_is_detected(
    watched: tuple[CacheConfig, EnvFileWatcher], env_path: Path
) -> None:
    config, watcher = watched
    write_env(env_path, BASE.replace("3600", "3601"))  # same size, maybe same mtime tick
    assert watcher.poll_once() is WatchOutcome.APPLIED
    assert config.core.default_ttl == 3601


def test_environment_and_explicit_layers_still_win_on_reload(env_path: Path) -> None:
    config = CacheConfig.from_env(
        env_file=env_path, environ={"REDIS_PORT": "7000"}, MEMORY_CACHE_MAX_SIZE=5
    )
    with config.watch_env_file(env_path, interval=3600) as watcher:
        write_env(env_path, BASE + "REDIS_PORT=7100\nMEMORY_CACHE_MAX_SIZE=9\nREDIS_DB=2\n")
        assert watcher.poll_once() is WatchOutcome.APPLIED
    assert (config.redis.port, config.memory.max_size, config.redis.db) == (7000, 5, 2)


def test_background_thread_applies_a_change(env_path: Path) -> None:
    config = CacheConfig.from_env(env_file=env_path, environ={})
    applied = threading.Event()
    config.on_change(lambda _c, ch: applied.set() if "core.default_ttl" in ch else None)
    watcher = config.watch_env_file(env_path, interval=0.02)
    try:
        assert watcher.running
        write_env(env_path, BASE.replace("3600", "42"))
        assert applied.wait(timeout=10)
        assert config.core.default_ttl == 42
    finally:
        watcher.stop()
    assert not watcher.running


def test_watching_another_file_applies_it_at_once(env_path: Path, tmp_path: Path) -> None:
    config = CacheConfig.from_env(env_file=env_path, environ={})
    other = write_env(tmp_path / "other.env", BASE + "REDIS_DB=4\n")
    watcher = config.watch_env_file(other, interval=3600)
    watcher.stop()
    assert config.redis.db == 4


def test_watching_an_invalid_file_raises_and_keeps_config(env_path: Path, tmp_path: Path) -> None:
    config = CacheConfig.from_env(env_file=env_path, environ={})
    bad = write_env(tmp_path / "bad.env", "REDIS_PORT=x\n")
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        config.watch_env_file(bad)
    assert config.redis.port == 6379
    write_env(env_path, BASE.replace("3600", "5"))
    assert config.reload() == {"core.default_ttl": (3600, 5)}  # still tracking the first file


def test_watch_needs_load_sources(env_path: Path) -> None:
    with pytest.raises(ConfigError):
        CacheConfig().watch_env_file(env_path)


def test_interval_must_be_positive(env_path: Path) -> None:
    config = CacheConfig.from_env(env_file=env_path, environ={})
    with pytest.raises(ConfigError, match="interval"):
        config.watch_env_file(env_path, interval=0)
