"""The `qcache config` commands, through qcache.cli.main and once through the console script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qcache.cli import main
from qcache.config import CacheConfig
from qcache.config.formats import to_yaml

from .conftest import ALL_ENV_NAMES, write_env

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["config", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("sub", [[], ["validate"], ["show"], ["set"], ["generate"]])
def test_every_command_has_help(sub: list[str], capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", *sub, "--help"])
    assert info.value.code == 0
    assert "usage: qcache config" in capsys.readouterr().out


def test_config_without_subcommand_prints_help(capsys: Capture) -> None:
    assert main(["config"]) == 2
    assert "SUBCOMMAND" in capsys.readouterr().out


# -- validate -----------------------------------------------------------------


def test_validate_valid_config_prints_warnings_and_exits_0(
    clean_env: Path, capsys: Capture
) -> None:
    code, out, _ = run(capsys, "validate")
    assert code == 0
    assert "WARNING REDIS_PASSWORD: Redis password not set - security risk" in out
    assert "configuration is valid (1 warning(s))" in out


def test_validate_errors_exit_1(clean_env: Path, capsys: Capture) -> None:
    path = write_env(clean_env / "prod.env", "ENVIRONMENT=staging\nREDIS_PASSWORD=pw\n")
    code, out, _ = run(capsys, "validate", "--env-file", str(path))
    assert code == 1
    assert "ERROR   CACHE_ENCRYPTION_KEY: Encryption enabled but no encryption key" in out
    assert "[encryption_key_missing]" in out
    assert "1 error(s), 0 warning(s)" in out


def test_validate_parse_error_exits_1_without_traceback(clean_env: Path, capsys: Capture) -> None:
    write_env(clean_env / ".env", "REDIS_PORT=abc\nCACHE_LEVEL=L3\n")
    code, out, err = run(capsys, "validate")
    assert code == 1
    assert "REDIS_PORT: expected an integer, got 'abc'" in err
    assert "CACHE_LEVEL: expected one of" in err
    assert "Traceback" not in out + err


def test_validate_reads_the_process_environment(
    clean_env: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_BATCH_SIZE", "0")
    code, out, _ = run(capsys, "validate")
    assert code == 1 and "[batch_size_not_positive]" in out


def test_missing_explicit_env_file(clean_env: Path, capsys: Capture) -> None:
    code, _, err = run(capsys, "validate", "--env-file", "nope.env")
    assert code == 1 and "env file not found: nope.env" in err


# -- show ---------------------------------------------------------------------


def test_show_json(clean_env: Path, capsys: Capture) -> None:
    write_env(clean_env / ".env", "REDIS_PORT=7000\n")
    code, out, _ = run(capsys, "show")
    assert code == 0
    data = json.loads(out)
    assert data == CacheConfig.from_env().to_dict()
    assert data["redis"]["port"] == 7000
    assert data["core"]["level"] == "BOTH"
    assert data["cache_types"]["search"]["max_size"] == 5000


def test_show_yaml(clean_env: Path, capsys: Capture) -> None:
    code, out, _ = run(capsys, "show", "--format", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == CacheConfig.from_env().to_dict()


def test_show_env_loads_back_to_the_same_config(clean_env: Path, capsys: Capture) -> None:
    write_env(clean_env / "in.env", "ENVIRONMENT=high-performance\nCACHE_KEY_PREFIX='a#b'\n")
    code, out, _ = run(capsys, "show", "--format", "env", "--env-file", "in.env")
    assert code == 0
    assert set(line.split("=", 1)[0] for line in out.splitlines()) == set(ALL_ENV_NAMES)
    write_env(clean_env / "out.env", out)
    again = CacheConfig.from_env(env_file="out.env", environ={})
    assert again.snapshot() == CacheConfig.from_env(env_file="in.env", environ={}).snapshot()


def test_show_parse_error_exits_1(clean_env: Path, capsys: Capture) -> None:
    write_env(clean_env / ".env", "CACHE_ENABLED=maybe\n")
    code, _, err = run(capsys, "show")
    assert code == 1 and "CACHE_ENABLED" in err


def test_yaml_round_trips_awkward_scalars() -> None:
    data = CacheConfig.from_profile("production").to_dict()
    data["odd"] = {"yes": "yes", "empty": {}, "quote": 'a "b": c', "null": None, "f": 0.5, "n": "1.0"}
    assert yaml.safe_load(to_yaml(data)) == data


def test_yaml_without_pyyaml_names_the_extra_to_install(
    clean_env: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now fails
    code, out, err = run(capsys, "show", "--format", "yaml")
    assert code == 1 and out == ""
    assert "PyYAML" in err and "pip install 'qcache[yaml]'" in err


# -- set ----------------------------------------------------------------------

ORIGINAL = (
    "# Redis connection\n"
    "REDIS_HOST=localhost\n"
    "export REDIS_PORT=6379  # Redis server port\n"
    "\n"
    "# Memory cache\n"
    "MEMORY_CACHE_MAX_SIZE=1000\n"
)


def test_set_replaces_line_keeping_comments(clean_env: Path, capsys: Capture) -> None:
    path = write_env(clean_env / ".env", ORIGINAL)
    code, out, _ = run(capsys, "set", "REDIS_PORT", "7000")
    assert code == 0
    assert "REDIS_PORT=7000 written to .env" in out
    # Every other line, comments included, stays; the edited line is rewritten whole.
    assert path.read_text() == ORIGINAL.replace("export REDIS_PORT=6379  # Redis server port", "REDIS_PORT=7000")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CacheConfig.from_env().redis.port == 7000


def test_set_appends_normalised_value(clean_env: Path, capsys: Capture) -> None:
    path = write_env(clean_env / ".env", ORIGINAL)
    assert run(capsys, "set", "CACHE_LEVEL", "l1_memory")[0] == 0
    assert run(capsys, "set", "CACHE_KEY_PREFIX", "app#1")[0] == 0
    assert path.read_text() == ORIGINAL + "CACHE_LEVEL=L1_MEMORY\nCACHE_KEY_PREFIX='app#1'\n"


def test_set_creates_missing_file_with_mode_600(clean_env: Path, capsys: Capture) -> None:
    code, _, _ = run(capsys, "set", "REDIS_DB", "2", "--env-file", "sub.env")
    assert code == 0
    path = clean_env / "sub.env"
    assert path.read_text() == "REDIS_DB=2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("REDIS_PORT", "abc", "REDIS_PORT: expected an integer, got 'abc'"),
        ("REDIS_PORT", "70000", "[redis_port_out_of_range]"),
        ("CACHE_DEFAULT_TTL", "-5", "must be a positive integer"),
        ("MEMORY_CACHE_MAX_SIZE", "0", "[memory_max_size_not_positive]"),
        ("REDIS_PROT", "1", "unknown setting 'REDIS_PROT'; did you mean REDIS_PORT"),
        ("REDIS_URL", "redis://localhost:99999/0", "[redis_url_port_invalid]"),
        ("REDIS_URL", "redis://localhost:port/0", "[redis_url_port_invalid]"),
        ("REDIS_URL", "redis://localhost:6379/zero", "[redis_url_db_invalid]"),
    ],
)
def test_set_refuses_and_leaves_file_untouched(
    clean_env: Path, capsys: Capture, key: str, value: str, message: str
) -> None:
    path = write_env(clean_env / ".env", ORIGINAL)
    os.chmod(path, 0o640)
    before = path.stat()
    code, _, err = run(capsys, "set", key, value)
    assert code == 1
    assert message in err
    assert path.read_text() == ORIGINAL
    assert path.stat().st_ino == before.st_ino and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_set_considers_the_whole_config(clean_env: Path, capsys: Capture) -> None:
    write_env(clean_env / ".env", "REDIS_PASSWORD=pw\n")
    code, _, err = run(capsys, "set", "CACHE_ENCRYPTION_ENABLED", "true")
    assert code == 1 and "[encryption_key_missing]" in err


def test_set_can_fix_one_error_at_a_time(clean_env: Path, capsys: Capture) -> None:
    # A fresh production template has several errors; each fix must be writable.
    assert main(["config", "generate", "prod", "--output", ".env"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "set", "REDIS_PASSWORD", "a-password")
    assert code == 0 and "REDIS_PASSWORD written" in out
    assert "still has 4 error(s)" in err
    # But a new problem with the key being set is refused.
    code, _, err = run(capsys, "set", "CACHE_ENCRYPTION_KEY", "short")
    assert code == 1 and "[encryption_key_invalid]" in err


def test_set_notes_when_the_environment_overrides_the_file(
    clean_env: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_DB", "1")
    code, _, err = run(capsys, "set", "REDIS_DB", "2")
    assert code == 0 and "also set in the environment" in err
    # The written value is validated even though the environment shadows it.
    code, _, err = run(capsys, "set", "REDIS_DB", "-1")
    assert code == 1 and "[redis_db_negative]" in err
    assert (clean_env / ".env").read_text() == "REDIS_DB=2\n"


def test_set_reports_unwritable_file_without_traceback(clean_env: Path, capsys: Capture) -> None:
    (clean_env / "plain").write_text("a file, not a directory\n")
    code, out, err = run(capsys, "set", "REDIS_DB", "2", "--env-file", "plain/.env")
    assert code == 1 and "cannot write plain/.env" in err
    assert "Traceback" not in out + err


# -- generate -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "profile"),
    [
        ("dev", "development"),
        ("test", "testing"),
        ("staging", "staging"),
        ("prod", "production"),
        ("high-performance", "high-performance"),
    ],
)
def test_generate_template_reproduces_the_profile(
    clean_env: Path, capsys: Capture, choice: str, profile: str
) -> None:
    code, out, _ = run(capsys, "generate", choice)
    assert code == 0
    path = write_env(clean_env / "t.env", out)
    loaded = CacheConfig.from_env(env_file=path, environ={})
    assert loaded.snapshot() == CacheConfig.from_profile(profile).snapshot()
    for env in ALL_ENV_NAMES:
        assert f"\n{env}=" in out
    assert "\nREDIS_PASSWORD=\n" in out and "\nCACHE_ENCRYPTION_KEY=\n" in out
    assert out.count("# SECRET: set it here or in the environment") == 3  # + REDIS_URL


def test_generate_documents_each_variable(capsys: Capture) -> None:
    _, out, _ = run(capsys, "generate", "prod")
    lines = out.splitlines()
    port = lines.index("REDIS_PORT=6380")
    assert lines[port - 1] == "# Redis server port (integer) [default: 6379]"


def test_generate_output_mode_and_no_overwrite(clean_env: Path, capsys: Capture) -> None:
    code, out, _ = run(capsys, "generate", "staging", "--output", "staging.env")
    assert code == 0 and "staging.env" in out
    path = clean_env / "staging.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("mine\n")
    code, _, err = run(capsys, "generate", "prod", "--output", "staging.env")
    assert code == 1 and "--force" in err
    assert path.read_text() == "mine\n"
    assert run(capsys, "generate", "prod", "--output", "staging.env", "--force")[0] == 0
    assert "production profile" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_rejects_unknown_profile(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["config", "generate", "qa"])
    assert info.value.code == 2


# -- the installed console script -----------------------------------------------


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "qcache"
    if not script.exists():
        pytest.skip("the qcache console script is not installed in this environment")
    env = {k: v for k, v in os.environ.items() if k not in ALL_ENV_NAMES}
    write_env(tmp_path / ".env", "REDIS_PORT=abc\n")
    bad = subprocess.run(
        [str(script), "config", "validate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "REDIS_PORT: expected an integer, got 'abc'" in bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
    write_env(tmp_path / ".env", "REDIS_PORT=7000\n")
    good = subprocess.run(
        [str(script), "config", "show", "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0
    assert json.loads(good.stdout)["redis"]["port"] == 7000
