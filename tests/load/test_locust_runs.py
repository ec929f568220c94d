"""`locust -f loadtests/` as a user runs it: short headless runs against Redis, in a subprocess.

Each run is bounded (a few seconds of load, a hard timeout) and writes to its
own results folder. Unless a test says otherwise the run provisions and stops
its own Redis, as a fresh machine would; the chaos run kills and restarts that
server, never the test suite's.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from qcache.testing import RedisEndpoint

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"
ALL_USERS = ("ReadHeavyUser", "WriteHeavyUser", "MixedUser", "EmbeddingUser", "BatchUser",
             "AsyncReadHeavyUser", "RawRedisUser")


def run_locust(tmp_path: Path, *args: str, redis_url: str | None = None, timeout: float = 120) -> tuple[
        subprocess.CompletedProcess[str], dict[str, Any] | None, Path | None]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["QCACHE_LOAD_RESULTS"] = str(tmp_path)
    env["CACHE_BATCH_SIZE"] = "20"
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    command = [str(LOCUST), "-f", "loadtests/", "--headless", "--only-summary", "--keys", "2000",
               "--hot-keys", "200", *args]
    result = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    runs = sorted(p for p in tmp_path.iterdir() if (p / "summary.json").is_file()) if tmp_path.is_dir() else []
    if not runs:
        return result, None, None
    return result, json.loads((runs[-1] / "summary.json").read_text()), runs[-1]


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stderr ---\n{result.stderr[-4000:]}"


def _server_is_gone(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        return True
    finally:
        client.close()
    return False


def test_every_user_runs_and_the_run_folder_is_complete(tmp_path: Path) -> None:
    result, summary, folder = run_locust(tmp_path, "-u", "7", "-r", "7", "-t", "4s", *ALL_USERS)
    assert result.returncode == 0, _explain(result)
    assert summary is not None and folder is not None, _explain(result)
    users = {u["user"]: u for u in summary["users"]}
    assert set(users) == set(ALL_USERS)
    for name, user in users.items():
        assert user["count"] > 0 and user["errors"] == 0, user
        assert user["cache_user"] == (name != "RawRedisUser")
        assert user["p99_us"] is not None and user["p99_us"] > 0
    operations = {(op["user"], op["operation"]) for op in summary["operations"]}
    assert {("BatchUser", "get_many"), ("MixedUser", "get_or_set"), ("AsyncReadHeavyUser", "get"),
            ("EmbeddingUser", "get")} <= operations
    assert users["ReadHeavyUser"]["hit_rate"] > 0.5  # the hot keys were written before the load
    # Locust's own reports, beside ours, with the same requests.
    with (folder / "locust_stats.csv").open() as handle:
        locust_counts = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    for op in summary["operations"]:
        assert locust_counts[f"{op['user']}.{op['operation']}"] == op["count"]
    assert (folder / "locust_report.html").stat().st_size > 1000
    assert summary["config"]["CACHE_KEY_PREFIX"].endswith(summary["run_id"])
    assert _server_is_gone(_url_of(result))


def _url_of(result: subprocess.CompletedProcess[str]) -> str:
    for line in result.stderr.splitlines():
        if "qcache load: Redis redis://" in line:
            return line.split("qcache load: Redis ", 1)[1].split(" ", 1)[0]
    raise AssertionError("the run did not say which Redis it used:\n" + result.stderr[-2000:])


def test_two_processes_merge_their_histograms(tmp_path: Path) -> None:
    result, summary, folder = run_locust(tmp_path, "--processes", "2", "-u", "4", "-r", "4", "-t", "4s",
                                         "ReadHeavyUser", "RawRedisUser")
    assert summary is not None and folder is not None, _explain(result)
    assert summary["processes"] == 2
    with (folder / "locust_stats.csv").open() as handle:
        locust_counts = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    # Every request of both workers is in the merged histograms, none twice.
    for op in summary["operations"]:
        assert op["count"] == locust_counts[f"{op['user']}.{op['operation']}"] > 0
    assert _server_is_gone(_url_of(result))


def test_a_cluster_run_provisions_its_cluster_and_spreads_over_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REDIS_CLUSTER_ENABLED: the master starts a local cluster, both workers' caches and baselines use it."""
    monkeypatch.setenv("REDIS_CLUSTER_ENABLED", "true")
    result, summary, folder = run_locust(tmp_path, "--processes", "2", "-u", "4", "-r", "4", "-t", "4s",
                                         "BatchUser", "AsyncReadHeavyUser", "RawRedisUser")
    assert result.returncode == 0, _explain(result)
    assert summary is not None and folder is not None, _explain(result)
    assert summary["processes"] == 2 and summary["redis"]["nodes"] == 3
    assert summary["config"]["REDIS_CLUSTER_ENABLED"] in ("true", "True", True)
    users = {u["user"]: u for u in summary["users"]}
    assert set(users) == {"BatchUser", "AsyncReadHeavyUser", "RawRedisUser"}
    for user in users.values():
        assert user["count"] > 0 and user["errors"] == 0, user
    assert summary["caller_exceptions"] == 0
    assert _server_is_gone(summary["redis"]["url"])  # the run's cluster is stopped at quit


def test_compare_alternates_the_cache_and_the_raw_baseline(tmp_path: Path) -> None:
    result, summary, _ = run_locust(tmp_path, "--shape", "compare", "--compare-phase", "2",
                                    "--compare-rounds", "2", "-u", "2", "ReadHeavyUser", "RawRedisUser")
    assert summary is not None, _explain(result)
    [comparison] = summary["comparison"]
    assert comparison["user"] == "ReadHeavyUser" and comparison["baseline"] == "RawRedisUser"
    assert comparison["throughput_ratio"] > 0
    assert len(comparison["round_ratios"]) == 2 and comparison["median_round_ratio"] > 0
    active = {u["user"]: u["active_s"] for u in summary["users"]}
    assert 1.0 < active["ReadHeavyUser"] < 6.0 and 1.0 < active["RawRedisUser"] < 6.0


@pytest.mark.parametrize(("mode", "after"), [("kill", "7"), ("pause", "3")])
def test_chaos_fails_the_runs_own_redis_and_callers_see_no_exception(tmp_path: Path, mode: str, after: str) -> None:
    result, summary, _ = run_locust(tmp_path, "--shape", "chaos", "--chaos-mode", mode, "--chaos-at", "2",
                                    "--chaos-down", "1", "--chaos-after", after, "-u", "3", "-r", "3",
                                    # More hot keys than L1 holds, so reads keep reaching L2.
                                    "--keys", "5000", "--hot-keys", "5000", "ReadHeavyUser")
    assert result.returncode == 0, _explain(result)
    assert summary is not None, _explain(result)
    chaos = summary["chaos"]
    assert chaos["mode"] == mode and "fault_error" not in summary
    assert chaos["restored_at_s"] - chaos["fault_at_s"] >= 1.0
    assert chaos["caller_exceptions"] == 0 and summary["caller_exceptions"] == 0
    assert chaos["l2_recovery_s"] is not None, summary["timeline"]  # L2 served again after the restart
    assert _server_is_gone(_url_of(result))


def test_chaos_refuses_a_server_it_did_not_start(tmp_path: Path, redis_endpoint: RedisEndpoint) -> None:
    result, summary, _ = run_locust(tmp_path, "--shape", "chaos", "-u", "1", "ReadHeavyUser",
                                    redis_url=redis_endpoint.url, timeout=60)
    assert result.returncode == 2
    assert "unset REDIS_URL" in result.stderr and summary is None
    client = redis.Redis(**redis_endpoint.client_kwargs())
    try:
        assert client.ping()  # untouched
    finally:
        client.close()


def test_a_run_against_redis_url_uses_it_and_removes_its_keys(tmp_path: Path, redis_endpoint: RedisEndpoint) -> None:
    client = redis.Redis(**redis_endpoint.client_kwargs())
    before = client.dbsize()
    result, summary, _ = run_locust(tmp_path, "-u", "2", "-r", "2", "-t", "2s", "ReadHeavyUser", "RawRedisUser",
                                    redis_url=redis_endpoint.url)
    try:
        assert result.returncode == 0, _explain(result)
        assert summary is not None and summary["redis"]["method"] == "url"
        prefix = summary["config"]["CACHE_KEY_PREFIX"]
        assert not list(client.scan_iter(match=f"{prefix}*", count=1000))
        assert client.dbsize() == before
    finally:
        client.close()


def test_bad_arguments_are_refused_before_any_load(tmp_path: Path) -> None:
    result, summary, _ = run_locust(tmp_path, "--shape", "ramp", "--ramp-users", "10,5", "-u", "1", timeout=60)
    assert result.returncode == 2 and "--ramp-users must be 3 comma-separated integers" in result.stderr
    assert summary is None


def test_chaos_on_a_cluster_is_refused_before_any_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CLUSTER_ENABLED", "true")
    result, summary, _ = run_locust(tmp_path, "--shape", "chaos", "-u", "1", timeout=60)
    assert result.returncode == 2 and "chaos shape and TLS need a standalone server" in result.stderr
    assert summary is None


def test_tags_pick_the_users_that_carry_them(tmp_path: Path) -> None:
    result, summary, _ = run_locust(tmp_path, "-u", "2", "-r", "2", "-t", "2s", "--tags", "batch", "async")
    assert result.returncode == 0, _explain(result)
    assert summary is not None
    assert {u["user"] for u in summary["users"]} == {"BatchUser", "AsyncReadHeavyUser"}
    batch = next(u for u in summary["users"] if u["user"] == "BatchUser")
    assert 0 < batch["hit_rate"] < 1  # counted key by key, not one hit per batch
    nothing, summary, _ = run_locust(tmp_path / "none", "-u", "1", "--tags", "no-such-tag", timeout=60)
    assert nothing.returncode == 2 and "no user class has a task with the selected tags" in nothing.stderr


def test_a_profile_is_load_tested_as_configured_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The production profile asks for TLS and encryption: the run starts a TLS server with throwaway
    # certificates, and refuses plainly, once, when a secret only the user can give is missing.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("ENCRYPTION_KEY_STORE_PATH", "")
    missing, summary, _ = run_locust(tmp_path / "refused", "-u", "1", "-t", "2s", "ReadHeavyUser", timeout=60)
    if "TLS" in missing.stderr and "no Redis" in missing.stderr:
        pytest.skip("this machine's redis-server was built without TLS")
    assert missing.returncode == 2 and summary is None
    assert "CACHE_ENCRYPTION_KEY" in missing.stderr and "Traceback" not in missing.stderr
    monkeypatch.setenv("CACHE_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
    result, summary, _ = run_locust(tmp_path / "ok", "-u", "2", "-r", "2", "-t", "3s", "ReadHeavyUser", "RawRedisUser")
    assert result.returncode == 0, _explain(result)
    assert summary is not None and summary["redis"]["tls"] is True
    assert summary["config"]["CACHE_ENCRYPTION_KEY"] == "**********"  # masked, never the key
    assert all(u["count"] > 0 and u["errors"] == 0 for u in summary["users"])
