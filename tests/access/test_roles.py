"""Roles and role-bound views on real caches: what each role may do, audit, alerts, sessions."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.access.policy import AccessPolicy, namespace_wide, token_digest
from qcache.access.view import SessionExpired
from qcache.cache.monitor import Alert
from qcache.errors import AccessDenied, ConfigError
from qcache.testing import RedisEndpoint


def _config(tmp_path: Path, **settings: Any) -> CacheConfig:
    return CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY",
                                SECURITY_AUDIT_LOG_PATH=str(tmp_path / "audit.log"), **settings)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[QueryCache]:
    with QueryCache(_config(tmp_path)) as c:
        yield c


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_each_builtin_role_does_what_the_seed_says(cache: QueryCache) -> None:
    cache.set("k", 1, cache_type="search")
    client, service, admin = cache.as_role("client"), cache.as_role("service"), cache.as_role("admin")
    assert client.get("k", cache_type="search") == 1 and client.get_many(["k"], cache_type="search") == {"k": 1}
    for refused in (lambda: client.set("k", 2), lambda: client.delete("k"), lambda: client.clear(),
                    lambda: client.get_or_set("x", lambda: 1), lambda: service.delete("k"),
                    lambda: service.clear(), lambda: service.config):
        with pytest.raises(AccessDenied) as denied:
            refused()
        assert isinstance(denied.value, PermissionError)
    service.set("k", 3, cache_type="search")
    assert service.get_or_set("y", lambda: 4) == 4
    assert admin.config is cache.config
    assert admin.invalidate_pattern("*") >= 1 and admin.clear() >= 0
    assert admin.get("k", cache_type="search") is None


def test_a_namespace_wide_pattern_needs_admin(tmp_path: Path) -> None:
    assert namespace_wide("*") and namespace_wide("*:*") and not namespace_wide("search:*")
    with QueryCache(_config(tmp_path)) as cache:
        cache.use_access_policy(AccessPolicy(roles={"janitor": ["read", "delete"]}))
        janitor = cache.as_role("janitor")
        cache.set("a", 1, cache_type="search")
        with pytest.raises(AccessDenied, match="whole namespace"):
            janitor.invalidate_pattern("*")
        assert janitor.invalidate_pattern("a*") == 1


def test_tokens_and_project_grants(tmp_path: Path) -> None:
    with QueryCache(_config(tmp_path)) as cache:
        cache.use_access_policy(AccessPolicy(tokens={"admin": token_digest("s3cret")},
                                             grants={"service": ["acme"]}))
        with pytest.raises(AccessDenied, match="needs its token"):
            cache.as_role("admin")
        with pytest.raises(AccessDenied, match="needs its token"):
            cache.as_role("admin", token="guess")
        assert cache.as_role("admin", token="s3cret").role == "admin"
        with pytest.raises(AccessDenied, match="no grant for project '_'"):
            cache.as_role("service")
        acme = cache.for_project("acme").as_role("service")
        acme.set("k", 1)
        assert cache.for_project("acme").get("k") == 1
        with pytest.raises(AccessDenied, match="no grant for project 'other'"):
            acme.for_project("other")
        with pytest.raises(AccessDenied, match="unknown role"):
            cache.as_role("root")


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown permission 'fly'"):
        AccessPolicy(roles={"pilot": ["fly"]})
    with pytest.raises(ConfigError, match="grant for unknown role"):
        AccessPolicy(grants={"ghost": ["acme"]})
    with pytest.raises(ConfigError, match="SHA-256"):
        AccessPolicy(tokens={"admin": "plain-token"})


def test_allowed_operations_are_the_caches_own_methods_without_access_logging(tmp_path: Path) -> None:
    with QueryCache(_config(tmp_path, CACHE_ACCESS_LOGGING=False)) as cache:
        client = cache.as_role("client")
        assert client.get == cache.get and client.get_many == cache.get_many  # no wrapper: no cost


def test_the_audit_trail_records_access_and_denials_without_values(cache: QueryCache, tmp_path: Path) -> None:
    cache.set("secret-key", {"card": "4111"}, cache_type="search")
    client = cache.for_project("acme").as_role("client")
    client.get("secret-key", cache_type="search")
    with pytest.raises(AccessDenied):
        client.set("secret-key", "x")
    cache.close()  # drains the queue
    lines = _audit(tmp_path)
    assert [(e["role"], e["project"], e["operation"], e["outcome"]) for e in lines] == [
        ("client", "acme", "get", "allowed"), ("client", "acme", "set", "denied")
    ]
    text = (tmp_path / "audit.log").read_text()
    assert "4111" not in text and "secret-key" not in text and len(lines[0]["key_hash"]) == 16
    assert "lacks write" in lines[1]["detail"]
    assert (tmp_path / "audit.log").stat().st_mode & 0o777 == 0o600


def test_keys_reach_the_audit_trail_only_when_configured(tmp_path: Path) -> None:
    with QueryCache(_config(tmp_path, SECURITY_AUDIT_INCLUDE_KEYS=True)) as cache:
        cache.as_role("client").get("visible-key")
    [entry] = _audit(tmp_path)
    assert entry["key"] == "visible-key" and entry["key_hash"]


def test_an_unwritable_audit_path_warns_at_start_and_never_fails_a_request(tmp_path: Path) -> None:
    config = CacheConfig.from_env(None, {}, CACHE_LEVEL="L1_MEMORY",
                                  SECURITY_AUDIT_LOG_PATH=str(tmp_path / "missing-dir" / "audit.log"))
    with QueryCache(config) as cache:
        with pytest.warns(RuntimeWarning, match="audit trail is off"):
            client = cache.as_role("client")
        assert client.get("k") is None
        with pytest.raises(AccessDenied):
            client.set("k", 1)


def test_repeated_denials_raise_one_alert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alerts: list[Alert] = []
    with QueryCache(_config(tmp_path, FAILED_ACCESS_THRESHOLD=3, FAILED_ACCESS_WINDOW=60)) as cache:
        cache.on_alert(alerts.append)
        client = cache.as_role("client")
        with caplog.at_level(logging.WARNING, logger="qcache.access"):
            for _ in range(5):
                with pytest.raises(AccessDenied):
                    client.delete("k")
        assert [(a.check, a.value) for a in alerts] == [("failed_access", 3.0)]
        assert "3 denied accesses by role 'client'" in caplog.text
        errors = cache.stats()["errors"]
        assert errors["access_denied"] == 5 and errors["access_alert"] == 1


def test_a_view_expires_after_the_session_timeout(tmp_path: Path) -> None:
    with QueryCache(_config(tmp_path, CACHE_SESSION_TIMEOUT=1)) as cache:
        client = cache.as_role("client")
        assert client.get("k") is None and not client.expired
        deadline = time.monotonic() + 5
        while not client.expired and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        with pytest.raises(SessionExpired, match="expired"):
            client.get("k")
        with pytest.raises(SessionExpired):
            client.for_project("acme")
        assert cache.as_role("client").get("k") is None  # a new session works


async def test_the_async_cache_has_role_views_too(redis_endpoint: RedisEndpoint, key_prefix: str,
                                                  tmp_path: Path) -> None:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    config = CacheConfig.from_env(None, {}, REDIS_URL=redis_endpoint.url, CACHE_KEY_PREFIX=prefix,
                                  SECURITY_AUDIT_LOG_PATH=str(tmp_path / "audit.log"))
    async with AsyncQueryCache(config) as cache:
        await cache.set("k", 1)
        client = cache.as_role("client")
        assert await client.get("k") == 1
        with pytest.raises(AccessDenied):
            await client.set("k", 2)
        await cache.clear()


def test_backup_and_restore_through_a_view_are_admin_only(redis_endpoint: RedisEndpoint, key_prefix: str,
                                                          tmp_path: Path) -> None:
    prefix = key_prefix.rstrip(":").replace(":", "-")
    config = CacheConfig.from_env(None, {}, REDIS_URL=redis_endpoint.url, CACHE_KEY_PREFIX=prefix,
                                  SECURITY_AUDIT_LOG_PATH=str(tmp_path / "audit.log"))
    with QueryCache(config) as cache:
        acme = cache.for_project("acme")
        acme.set("k", {"v": 1})
        with pytest.raises(AccessDenied, match="lacks admin: backup is not allowed"):
            acme.as_role("service").backup(tmp_path / "b")
        manifest = acme.as_role("admin").backup(tmp_path / "b")
        assert manifest.entries == 1 and manifest.project == "acme"
        acme.delete("k")
        with pytest.raises(AccessDenied, match="restore is not allowed"):
            acme.as_role("client").restore(tmp_path / "b")
        assert acme.as_role("admin").restore(tmp_path / "b").restored == 1
        assert acme.get("k") == {"v": 1}
        acme.clear()
