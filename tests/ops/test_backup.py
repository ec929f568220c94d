"""Backups of the Redis namespace against a real server: round trips, moves, expiry, corruption, the CLI."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qcache import CacheConfig, QueryCache
from qcache.cli import main as qcache_main
from qcache.ops.backup import DATA, MANIFEST, BackupError, create_backup, list_backups, restore_backup, verify_backup
from qcache.testing import RedisEndpoint, RedisServerProcess

LONG_KEY = "q:" + "x" * 400  # stored under a hash of itself


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return key_prefix.rstrip(":").replace(":", "-")


def _config(url: str, prefix: str) -> CacheConfig:
    return CacheConfig.from_env(
        REDIS_URL=url, CACHE_KEY_PREFIX=prefix, CACHE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(),
        ENCRYPTION_KEY_STORE_PATH="", EMBEDDING_CACHE_ENCRYPTION=True,
    )


@pytest.fixture
def client(redis_endpoint: RedisEndpoint) -> Iterator[redis.Redis]:
    connection = redis.Redis(**redis_endpoint.client_kwargs())
    yield connection
    connection.close()


def _fill(cache: QueryCache) -> None:
    cache.set("q:rust", {"hits": [1, 2, 3]}, ttl=600, cache_type="search")
    cache.set(LONG_KEY, "long", ttl=600, cache_type="search")
    cache.set("emb:1", [0.25, 0.5], ttl=600, cache_type="embedding")  # encrypted
    cache.for_project("acme").set("meta", {"files": 3}, ttl=600, cache_type="project")


def _count(client: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=1000))


def test_a_backup_restores_every_entry_as_it_was(
    redis_endpoint: RedisEndpoint, client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    config = _config(redis_endpoint.url, prefix)
    with QueryCache(config) as cache:
        _fill(cache)
        stored = {key: client.get(key) for key in client.scan_iter(match=f"{prefix}:*")}
        manifest = create_backup(client, tmp_path / "b1", prefix=prefix)
        assert manifest.entries == len(stored) == 4
        assert verify_backup(tmp_path / "b1") == manifest
        assert [p.name for p, _ in list_backups(tmp_path)] == ["b1"]
        cache.clear()
        cache.for_project("acme").clear()
        assert _count(client, prefix) == 0
        report = restore_backup(client, tmp_path / "b1")
        assert (report.restored, report.skipped_expired, report.skipped_bound) == (4, 0, 0)
        assert {key: client.get(key) for key in client.scan_iter(match=f"{prefix}:*")} == stored  # byte for byte
        assert all(0 < client.pttl(key) <= 600_000 for key in stored)
    with QueryCache(config) as fresh:  # a new process reads them, the encrypted one included
        assert fresh.get("q:rust", cache_type="search") == {"hits": [1, 2, 3]}
        assert fresh.get(LONG_KEY, cache_type="search") == "long"
        assert fresh.get("emb:1", cache_type="embedding") == [0.25, 0.5]
        assert fresh.for_project("acme").get("meta", cache_type="project") == {"files": 3}
        fresh.clear()
        fresh.for_project("acme").clear()


def test_restoring_into_another_project_moves_what_can_move(
    redis_endpoint: RedisEndpoint, client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    config = _config(redis_endpoint.url, prefix)
    with QueryCache(config) as cache:
        _fill(cache)
        create_backup(client, tmp_path / "b", prefix=prefix, project="_")  # the global namespace only
        report = restore_backup(client, tmp_path / "b", project="copy")
        assert (report.restored, report.skipped_bound) == (2, 1)  # the encrypted entry cannot move
        copy = cache.for_project("copy")
        assert copy.get("q:rust", cache_type="search") == {"hits": [1, 2, 3]}
        assert copy.get(LONG_KEY, cache_type="search") == "long"  # its hashed key rebuilt for the new place
        assert copy.get("emb:1", cache_type="embedding") is None
        other_prefix = f"{prefix}-b"
        moved = restore_backup(client, tmp_path / "b", prefix=other_prefix)
        assert moved.restored == 2
        with QueryCache(_config(redis_endpoint.url, other_prefix)) as elsewhere:
            assert elsewhere.get("q:rust", cache_type="search") == {"hits": [1, 2, 3]}
            elsewhere.clear()
        copy.clear()
        cache.clear()
        cache.for_project("acme").clear()


def test_entries_expired_by_restore_time_are_skipped_and_no_overwrite_keeps_newer_values(
    redis_endpoint: RedisEndpoint, client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    with QueryCache(_config(redis_endpoint.url, prefix)) as cache:
        cache.set("short", 1, ttl=5, cache_type="search")
        cache.set("long", 2, ttl=600, cache_type="search")
        create_backup(client, tmp_path / "b", prefix=prefix)
        later = restore_backup(client, tmp_path / "b", clock=lambda: time.time() + 60)
        assert (later.restored, later.skipped_expired) == (1, 1)
        cache.set("long", 3, ttl=600, cache_type="search")
        kept = restore_backup(client, tmp_path / "b", overwrite=False)
        assert kept.skipped_existing == 2 and cache.get("long", cache_type="search") == 3
        cache.clear()


def _backup_of_three(client: redis.Redis, prefix: str, folder: Path) -> Path:
    for i in range(3):
        client.set(f"{prefix}:_:search:k{i}", b"value-%d" % i, px=600_000)
    create_backup(client, folder, prefix=prefix)
    for i in range(3):
        client.delete(f"{prefix}:_:search:k{i}")
    return folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-3], "truncated"),
        (lambda data: data[:10] + bytes([data[10] ^ 0xFF]) + data[11:], "SHA-256|corrupt|not \\[key"),
        (lambda data: data + data[:20], "SHA-256|truncated|holds"),
    ],
)
def test_a_damaged_backup_is_refused_and_nothing_is_written(
    client: redis.Redis, prefix: str, tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    folder = _backup_of_three(client, prefix, tmp_path / "b")
    data = (folder / DATA).read_bytes()
    (folder / DATA).write_bytes(damage(data))
    with pytest.raises(BackupError, match=message):
        verify_backup(folder)
    with pytest.raises(BackupError, match=message):
        restore_backup(client, folder)
    assert _count(client, prefix) == 0


def test_a_manifest_that_lies_is_refused(client: redis.Redis, prefix: str, tmp_path: Path) -> None:
    folder = _backup_of_three(client, prefix, tmp_path / "b")
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text.replace('"entries": 3', '"entries": 4'))
    with pytest.raises(BackupError, match="holds 3 entries, its manifest says 4"):
        verify_backup(folder)
    (folder / MANIFEST).write_text("{}")
    with pytest.raises(BackupError, match="not a qcache-backup manifest"):
        verify_backup(folder)
    with pytest.raises(BackupError, match="no manifest.json"):
        verify_backup(tmp_path)


def test_a_failed_backup_leaves_nothing_behind(
    redis_server_factory: Callable[..., RedisServerProcess], prefix: str, tmp_path: Path
) -> None:
    server = redis_server_factory()
    connection = redis.Redis(**server.endpoint.client_kwargs(), socket_timeout=1, socket_connect_timeout=1)
    connection.set(f"{prefix}:_:search:k", b"v")
    server.kill()
    with pytest.raises(redis.ConnectionError):
        create_backup(connection, tmp_path / "b", prefix=prefix)
    assert list(tmp_path.iterdir()) == []  # no backup, no partial folder
    connection.close()
    (tmp_path / "taken").mkdir()
    with pytest.raises(BackupError, match="never overwrites"):
        create_backup(connection, tmp_path / "taken", prefix=prefix)


def test_the_backup_command(
    redis_endpoint: RedisEndpoint, client: redis.Redis, prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_endpoint.url)
    monkeypatch.setenv("CACHE_KEY_PREFIX", prefix)
    monkeypatch.chdir(tmp_path)  # no stray .env
    client.set(f"{prefix}:_:search:k", b"v", px=600_000)
    assert qcache_main(["backup", "create", str(tmp_path / "b")]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert qcache_main(["backup", "list", str(tmp_path)]) == 0
    assert f"{prefix}:*  1 entries" in capsys.readouterr().out
    assert qcache_main(["backup", "verify", str(tmp_path / "b")]) == 0
    assert "sound, 1 entries" in capsys.readouterr().out
    client.delete(f"{prefix}:_:search:k")
    assert qcache_main(["backup", "restore", str(tmp_path / "b"), "--project", "p2"]) == 0
    assert client.get(f"{prefix}:p2:search:k") == b"v"
    assert qcache_main(["backup", "create", str(tmp_path / "b")]) == 1
    assert "never overwrites" in capsys.readouterr().err
    client.delete(f"{prefix}:p2:search:k")
