"""The pytest plugin: its fixtures here, and its reporting and cleanup in an inner pytest run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from qcache.testing import RedisEndpoint, RedisServerProcess
from qcache.testing.pytest_plugin import session_redis

from .support import pid_alive, require_executable


def test_redis_client_talks_to_the_session_endpoint(
    redis_client: redis.Redis, redis_endpoint: RedisEndpoint, key_prefix: str, request: pytest.FixtureRequest
) -> None:
    assert redis_client.ping()
    redis_client.set(key_prefix + "k", b"v", ex=60)
    assert redis_client.get(key_prefix + "k") == b"v"
    info = session_redis(request.config).info()
    assert info is not None and info["method"] == redis_endpoint.method
    assert request.node.get_closest_marker("redis") is not None


_PREFIXES_SEEN: set[str] = set()


@pytest.mark.parametrize("run", range(3))
def test_key_prefix_is_unique_per_test(key_prefix: str, run: int) -> None:
    assert key_prefix.startswith("qcache-test:") and key_prefix.endswith(":")
    assert len(key_prefix) == len("qcache-test:") + 8 + 1
    assert key_prefix not in _PREFIXES_SEEN
    _PREFIXES_SEEN.add(key_prefix)


def test_private_server_can_be_killed_and_restarted(redis_server: RedisServerProcess) -> None:
    client = redis.Redis(**redis_server.endpoint.client_kwargs(), socket_timeout=1.0)
    try:
        assert client.ping()
        port, pid = redis_server.port, redis_server.pid
        assert pid is not None
        redis_server.kill()
        assert not pid_alive(pid)
        redis_server.restart()
        assert redis_server.port == port
        assert client.ping()  # the same client finds the server at the same address
    finally:
        client.close()


def test_server_factory_passes_options(redis_server_factory: Callable[..., RedisServerProcess]) -> None:
    server = redis_server_factory(password="pw", extra_config=["maxmemory 5mb"])
    client = redis.Redis(**server.endpoint.client_kwargs())
    try:
        assert client.config_get("maxmemory")["maxmemory"] == str(5 * 1024 * 1024)
    finally:
        client.close()


# The inner run relies on file order and needs no asyncio support.
_INNER_ARGS = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:randomly")

_INNER_TESTS = """
import os

import pytest
import redis

seen = {}

def test_write(redis_client, key_prefix):
    seen["prefix"] = key_prefix
    for i in range(1200):  # more than one SCAN/UNLINK batch
        redis_client.set(f"{key_prefix}{i}", i)
    redis_client.set("qcache-inner-foreign-key", 1)  # not under the prefix: must survive

def test_private_server(redis_server):
    seen["pid"] = redis_server.pid
    assert redis_server.is_running

def test_cleaned(redis_client):
    assert seen["prefix"]
    assert list(redis_client.scan_iter(match=seen["prefix"] + "*")) == []
    assert redis_client.get("qcache-inner-foreign-key") == b"1"
    redis_client.delete("qcache-inner-foreign-key")
    # The private server of the previous test was stopped (and reaped) at its teardown.
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)

def test_without_redis():
    pass
"""


def test_inner_run_reports_provisioning_and_cleans_up_prefixed_keys(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, process_method: str
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    pytester.makeconftest('pytest_plugins = ["qcache.testing.pytest_plugin"]')
    pytester.makepyfile(test_inner=_INNER_TESTS)
    result = pytester.runpytest_inprocess(*_INNER_ARGS)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "qcache redis candidates: REDIS_URL=unset, binary=*, embedded=*",
            "collected 4 items",
            f"qcache redis: method={process_method}, server_version=*, url=redis://127.0.0.1:*/0,"
            " tls=False, password=False",
        ]
    )
    deselected = pytester.runpytest_inprocess(*_INNER_ARGS, "-m", "not redis")
    deselected.assert_outcomes(passed=1)
    assert "qcache redis: method=" not in deselected.stdout.str()  # nothing provisioned when not needed


def test_inner_run_without_any_server_errors_loudly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://not-a-redis-url")
    pytester.makeconftest('pytest_plugins = ["qcache.testing.pytest_plugin"]')
    pytester.makepyfile(test_inner="def test_needs(redis_endpoint):\n    pass\n")
    result = pytester.runpytest_inprocess(*_INNER_ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["qcache redis: UNAVAILABLE: REDIS_URL * must be a redis://*"])


def test_factory_skips_tls_when_the_build_has_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    require_executable("embedded")
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("emptypath")))  # embedded only
    pytester.makeconftest('pytest_plugins = ["qcache.testing.pytest_plugin"]')
    pytester.makepyfile(
        test_inner="def test_tls(redis_server_factory):\n    redis_server_factory(tls=True)\n"
    )
    result = pytester.runpytest_inprocess(*_INNER_ARGS, "-rs")
    if result.parseoutcomes().get("passed"):
        return  # this embedded build has TLS after all; the server started and the test passed
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a TLS-capable redis-server*without TLS support*"])
