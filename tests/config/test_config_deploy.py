"""Deployment templates: values from the profile alone, placeholders for secrets, a redis.conf a real server runs."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from qcache.cli import main as qcache_main
from qcache.config import CacheConfig
from qcache.config.deploy import (
    DISABLED_COMMANDS,
    SECRET_PLACEHOLDER,
    render_docker_compose,
    render_kubernetes,
    render_redis_conf,
)
from qcache.testing import RedisServerProcess

REAL_PASSWORD = "s3cret-from-the-shell"
REAL_KEY = "q" * 43 + "="


@pytest.fixture
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell that generates templates has real secrets: none may reach a file."""
    monkeypatch.setenv("REDIS_PASSWORD", REAL_PASSWORD)
    monkeypatch.setenv("CACHE_ENCRYPTION_KEY", REAL_KEY)


@pytest.mark.parametrize("profile", ["development", "production", "high-performance"])
def test_kubernetes_config_map_reproduces_the_profile(profile: str, secrets_in_environment: None) -> None:
    text = render_kubernetes(profile, namespace="rag")
    config_map, secret = yaml.safe_load_all(text)
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["namespace"] == "rag"
    expected = CacheConfig.from_profile(profile)
    rebuilt = CacheConfig.from_env(**config_map["data"])  # as a pod with envFrom would load it

    def public(config: CacheConfig) -> dict[str, str]:
        return {k: v for k, v in config.to_env().items() if k not in secret["stringData"]}

    assert public(rebuilt) == public(expected)
    assert all(isinstance(v, str) for v in config_map["data"].values())  # ConfigMap data are strings
    assert secret["kind"] == "Secret"
    assert {"REDIS_PASSWORD", "CACHE_ENCRYPTION_KEY"} <= set(secret["stringData"])
    assert set(secret["stringData"].values()) == {SECRET_PLACEHOLDER}
    assert REAL_PASSWORD not in text and REAL_KEY not in text


def test_bad_namespaces_are_refused() -> None:
    for bad in ("", "has space", "-leading"):
        with pytest.raises(ValueError, match="namespace"):
            render_kubernetes("production", namespace=bad)


def test_compose_publishes_on_loopback_and_takes_the_password_from_the_environment(
    secrets_in_environment: None,
) -> None:
    text = render_docker_compose("production")
    compose = yaml.safe_load(text)
    service = compose["services"]["redis-cache"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert "--requirepass" in service["command"][-1] and "$$REDIS_PASSWORD" in service["command"][-1]
    assert service["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in service["volumes"]
    assert REAL_PASSWORD not in text


def _served_lines(conf: str) -> list[str]:
    """The generated directives, less those the test server must keep its own (port, address, files)."""
    own = ("port ", "bind ", "dir ", "dbfilename ", "logfile ", "save ")
    return [line for line in conf.splitlines() if line and not line.startswith("#") and not line.startswith(own)]


def test_redis_conf_runs_on_a_real_server_and_refuses_wiping_commands(
    redis_server_factory: Callable[..., RedisServerProcess],
) -> None:
    conf = render_redis_conf("production", maxmemory="64mb")
    server = redis_server_factory(extra_config=_served_lines(conf))
    client: Any = redis.Redis(**server.endpoint.client_kwargs())
    try:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        for command in DISABLED_COMMANDS:
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(command, "*") if command == "KEYS" else client.execute_command(command)
        client.set("still", "works")
        assert client.get("still") == b"works"
    finally:
        client.close()


def test_the_generate_command_writes_each_kind(tmp_path: Path, secrets_in_environment: None) -> None:
    for kind, name in (("k8s", "k8s.yaml"), ("docker-compose", "compose.yml"), ("redis-conf", "redis.conf")):
        target = tmp_path / name
        assert qcache_main(["config", "generate", "prod", "--kind", kind, "--output", str(target)]) == 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert REAL_PASSWORD not in target.read_text()
    env_file = tmp_path / ".env.production"
    assert qcache_main(["config", "generate", "prod", "--output", str(env_file)]) == 0
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert qcache_main(["config", "generate", "prod", "--kind", "k8s", "--namespace", "a b"]) == 1
