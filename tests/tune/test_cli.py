"""``qcache tune`` end to end against a real Redis: it measures, explains and writes a .env that validates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from qcache.cli import main
from qcache.testing import RedisEndpoint

pytestmark = pytest.mark.redis


def test_tune_writes_a_valid_env_with_a_reason_per_setting(
    redis_endpoint: RedisEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if redis_endpoint.tls is not None or redis_endpoint.password:
        pytest.skip("the probe connects with a plain URL")
    output = tmp_path / ".env.tuned"
    code = main(
        [
            "tune",
            "--synthetic",
            "zipf:keys=2000,requests=20000,exponent=1.0,seed=2",
            "--memory-budget-mb",
            "8",
            "--read-ratio",
            "0.5",
            "--value-size",
            "2048",
            "--redis-url",
            redis_endpoint.url,
            "--output",
            str(output),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o600
    text = output.read_text()
    for setting in (
        "MEMORY_CACHE_EVICTION_POLICY",
        "MEMORY_CACHE_MAX_SIZE",
        "CACHE_WRITE_STRATEGY",
        "CACHE_BATCH_SIZE",
        "CACHE_CONNECTION_POOL_SIZE",
    ):
        assert f"{setting}=" in text and f"{setting}=" in out
    assert "ns per L1 hit" in out  # the policies' hit cost was measured too
    assert redis_endpoint.url not in text + out  # the Redis it measured is nobody's configuration
    assert main(["config", "validate", "--env-file", str(output)]) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--read-ratio", "1.5"], "read ratio"),
        (["--memory-budget-mb", "0"], "memory budget"),
        (["--trace", "missing-trace.txt"], "missing-trace.txt"),
    ],
)
def test_bad_input_is_a_clear_error(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", *arguments, "--output", str(tmp_path / "x.env"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.env").exists()


@pytest.mark.redis
def test_tune_reads_a_csv_trace_by_column_name(
    redis_endpoint: RedisEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if redis_endpoint.tls is not None or redis_endpoint.password:
        pytest.skip("the probe connects with a plain URL")
    trace = tmp_path / "access.csv"
    trace.write_text("ts,key\n" + "".join(f"{i},k{(i * 7919) % 300 if i % 3 else i % 20}\n" for i in range(6000)))
    code = main(["tune", "--trace", str(trace), "--trace-column", "key", "--redis-url", redis_endpoint.url,
                 "--output", str(tmp_path / "t.env"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "access.csv" in out and (tmp_path / "t.env").is_file()
