"""Secrets never show: repr, str, to_dict, to_env, show output, logs, error messages."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from pathlib import Path

import pytest

from qcache.cli import main
from qcache.config import CacheConfig, RedisConfig, Secret, SecurityConfig
from qcache.config.secret import MASK
from qcache.errors import ConfigError

from .conftest import KEY_SECRET, REDIS_SECRET, write_env

URL_SECRET = f"redis://:{REDIS_SECRET}@cache.internal:6379/0"


def secret_config() -> CacheConfig:
    return CacheConfig.from_env(
        env_file=None,
        environ={
            "REDIS_PASSWORD": REDIS_SECRET,
            "CACHE_ENCRYPTION_KEY": KEY_SECRET,
            "REDIS_URL": URL_SECRET,
            "CACHE_ENCRYPTION_ENABLED": "true",
        },
    )


def assert_clean(text: str) -> None:
    assert REDIS_SECRET not in text
    assert KEY_SECRET not in text
    assert "cache.internal" not in text  # the URL is masked whole


def test_secret_basics() -> None:
    secret = Secret(REDIS_SECRET)
    assert secret.reveal() == REDIS_SECRET
    assert str(secret) == MASK
    assert repr(secret) == f"Secret('{MASK}')"
    assert f"{secret}" == MASK and f"{secret:>12}" == f"{MASK:>12}"
    assert "%s %r" % (secret, secret) == f"{MASK} Secret('{MASK}')"  # noqa: UP031  # %-formatting is the subject
    assert secret == Secret(REDIS_SECRET) and secret != Secret("other")
    assert secret != REDIS_SECRET  # equal only to another Secret
    assert hash(secret) == hash(Secret(REDIS_SECRET))
    assert copy.deepcopy(secret) == secret
    assert pickle.loads(pickle.dumps(secret)) == secret
    assert not Secret("") and bool(secret)
    with pytest.raises(TypeError) as info:
        Secret(12345)  # type: ignore[arg-type]
    assert "12345" not in str(info.value)


def test_config_renderings_are_masked() -> None:
    config = secret_config()
    assert_clean(repr(config))
    assert_clean(repr(config.snapshot()))
    assert_clean(repr(config.redis) + str(config.redis) + repr(config.security))
    assert_clean(json.dumps(config.to_dict()))
    assert_clean(json.dumps(config.to_env()))
    assert config.to_dict()["redis"]["password"] == MASK
    assert config.to_env()["CACHE_ENCRYPTION_KEY"] == MASK
    assert_clean(" ".join(str(i) for i in config.validate()))


def test_reveal_secrets_is_explicit() -> None:
    config = secret_config()
    assert config.to_dict(reveal_secrets=True)["redis"]["password"] == REDIS_SECRET
    assert config.to_env(reveal_secrets=True)["REDIS_URL"] == URL_SECRET
    assert config.redis.password is not None
    assert config.redis.password.reveal() == REDIS_SECRET


def test_unset_secrets_render_as_none_and_empty() -> None:
    config = CacheConfig()
    assert config.to_dict()["redis"]["password"] is None
    assert config.to_env()["REDIS_PASSWORD"] == ""


@pytest.mark.parametrize("fmt", ["json", "yaml", "env"])
def test_show_output_is_masked(
    fmt: str, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_env(
        clean_env / ".env", f"REDIS_PASSWORD={REDIS_SECRET}\nCACHE_ENCRYPTION_KEY={KEY_SECRET}\n"
    )
    assert main(["config", "show", "--format", fmt]) == 0
    out = capsys.readouterr()
    assert_clean(out.out + out.err)
    assert MASK in out.out


def test_update_log_and_changes_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    config = CacheConfig(redis=RedisConfig(password=Secret("old-" + REDIS_SECRET)))
    seen: list[str] = []
    config.on_change(lambda _cfg, changes: seen.append(repr(changes)))
    with caplog.at_level(logging.DEBUG, logger="qcache"):
        changes = config.update(REDIS_PASSWORD=REDIS_SECRET, CACHE_ENCRYPTION_KEY=KEY_SECRET)
    assert changes["redis.password"] == (Secret("old-" + REDIS_SECRET), Secret(REDIS_SECRET))
    assert "REDIS_PASSWORD: ********** -> **********" in caplog.text
    assert "CACHE_ENCRYPTION_KEY: (unset) -> **********" in caplog.text
    assert_clean(caplog.text + "".join(seen) + repr(changes))


def test_rejected_update_message_is_masked() -> None:
    config = CacheConfig(security=SecurityConfig(encryption_enabled=True))
    with pytest.raises(ConfigError) as info:
        config.update(CACHE_ENCRYPTION_KEY="not-a-valid-key-" + REDIS_SECRET)
    assert "encryption_key_invalid" in str(info.value)
    assert REDIS_SECRET not in str(info.value) + " ".join(info.value.problems)


def test_rejected_watch_reload_log_is_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_env(tmp_path / ".env", f"REDIS_PASSWORD={REDIS_SECRET}\n")
    config = CacheConfig.from_env(env_file=path, environ={})
    watcher = config.watch_env_file(path, interval=3600)
    try:
        write_env(
            path,
            f"REDIS_PASSWORD={REDIS_SECRET}x\nCACHE_ENCRYPTION_ENABLED=true\n"
            f"CACHE_ENCRYPTION_KEY=bad-{REDIS_SECRET}\n",
        )
        with caplog.at_level(logging.DEBUG, logger="qcache"):
            watcher.poll_once()
    finally:
        watcher.stop()
    assert "encryption_key_invalid" in caplog.text
    assert_clean(caplog.text)


def test_validate_cli_never_prints_secrets(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_env(
        clean_env / ".env",
        f"CACHE_ENCRYPTION_ENABLED=true\nCACHE_ENCRYPTION_KEY={REDIS_SECRET}\n"
        f"REDIS_URL=ftp://{REDIS_SECRET}@x\n",
    )
    assert main(["config", "validate"]) == 1
    out = capsys.readouterr()
    assert REDIS_SECRET not in out.out + out.err
    assert "encryption_key_invalid" in out.out and "redis_url_invalid" in out.out


def test_set_cli_does_not_echo_secret(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "REDIS_PASSWORD", REDIS_SECRET]) == 0
    out = capsys.readouterr()
    assert REDIS_SECRET not in out.out + out.err
    assert "REDIS_PASSWORD written to .env" in out.out
    assert f"REDIS_PASSWORD={REDIS_SECRET}" in (clean_env / ".env").read_text()
