"""Generated Redis ACL users on a real server: what each role and project may do, enforced by Redis."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from qcache import CacheConfig, QueryCache
from qcache.access.acl import acl_users
from qcache.cli import main as qcache_main
from qcache.errors import AccessDenied, RedisAccessDenied
from qcache.testing import RedisServerProcess

PREFIX = "acltest"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def server(redis_server_factory: Callable[..., RedisServerProcess]) -> RedisServerProcess:
    rules = [user.rule for user in acl_users(PREFIX, ["acme", "globex"], password=PASSWORD)]
    return redis_server_factory(extra_config=rules)


def _cache(server: RedisServerProcess, user: str) -> QueryCache:
    return QueryCache(CacheConfig.from_env(
        None, {}, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port, REDIS_USERNAME=user, REDIS_PASSWORD=PASSWORD,
        CACHE_KEY_PREFIX=PREFIX, CACHE_LEVEL="L2_REDIS", REDIS_MAX_RETRIES=0,
    ))


def test_each_role_works_within_its_rights_and_gets_a_clear_access_denied_beyond(server: RedisServerProcess) -> None:
    with _cache(server, "acltest-service-acme") as service:
        acme = service.for_project("acme")
        acme.set("k", {"v": 1})
        assert acme.get("k") == {"v": 1}
        acme.set("tagged", 1, tags=("t",))  # a writer keeps its tags' sets up to date
        with pytest.raises(AccessDenied):  # but reading a tag's members to delete them needs delete
            acme.invalidate_tags("t")
        assert service.health()["status"] == "healthy"  # the probe key is allowed to every role
        with pytest.raises(AccessDenied):  # service lacks delete: Redis refuses UNLINK
            acme.delete("k")
        with pytest.raises(RedisAccessDenied, match="NOPERM|no permissions"):
            service.for_project("globex").set("k", 2)  # another project's keys
    with _cache(server, "acltest-client-acme") as client:
        acme = client.for_project("acme")
        assert acme.get("k") == {"v": 1}
        with pytest.raises(AccessDenied):
            acme.set("k", 3)  # a client cannot write
        assert acme.get("k") == {"v": 1}
        with pytest.raises(RedisAccessDenied):
            client.for_project("globex").get("k")  # nor read another project's keys
        assert client.stats()["errors"]["l2_access_denied"] == 2
    with _cache(server, "acltest-admin-globex") as admin:
        assert admin.for_project("acme").invalidate_tags("t") == 1
        assert admin.for_project("acme").delete("k") is True
        assert admin.for_project("acme").clear() == 0


def test_every_role_may_keep_its_l1_coherent(server: RedisServerProcess) -> None:
    # The invalidation connection needs CLIENT ID, CLIENT TRACKING and the __redis__:invalidate channel.
    for user in ("acltest-admin-acme", "acltest-service-acme", "acltest-client-globex"):
        with QueryCache(CacheConfig.from_env(
            None, {}, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port, REDIS_USERNAME=user, REDIS_PASSWORD=PASSWORD,
            CACHE_KEY_PREFIX=PREFIX, CACHE_LEVEL="BOTH", REDIS_MAX_RETRIES=0,
        )) as cache:
            assert cache.stats()["l1_coherence"]["live"], user


def test_no_user_may_wipe_or_list_the_database(server: RedisServerProcess) -> None:
    for user in ("acltest-admin-acme", "acltest-service-acme", "acltest-client-acme"):
        connection = redis.Redis(host="127.0.0.1", port=server.port, username=user, password=PASSWORD)
        try:
            for command in (("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*")):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    connection.execute_command(*command)
            if user != "acltest-admin-acme":
                with pytest.raises(redis.exceptions.NoPermissionError):
                    connection.execute_command("CONFIG", "GET", "maxmemory")
            with pytest.raises(redis.exceptions.NoPermissionError):
                connection.get("other-app:secret")  # keys outside the prefix
        finally:
            connection.close()


def test_the_generate_command_keeps_passwords_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CACHE_KEY_PREFIX", "svc")
    assert qcache_main(["acl", "generate", "--project", "acme", "-o", "users.acl"]) == 0
    rules = (tmp_path / "users.acl").read_text().splitlines()
    passwords = (tmp_path / "acl-passwords.env").read_text()
    assert [line.split()[1] for line in rules] == ["svc-admin-acme", "svc-client-acme", "svc-service-acme"]
    assert stat.S_IMODE((tmp_path / "acl-passwords.env").stat().st_mode) == 0o600
    for line in passwords.splitlines():
        if "_PASSWORD=" in line:
            assert line.split("=", 1)[1] not in "\n".join(rules)  # only digests in the ACL lines
    assert qcache_main(["acl", "generate", "--project", "acme", "-o", "users.acl"]) == 1
    assert "exists" in capsys.readouterr().err
    assert qcache_main(["acl", "generate", "--project", "bad name"]) == 2
