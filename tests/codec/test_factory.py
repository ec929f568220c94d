"""Building codecs from CacheConfig (skipped while qcache.config is not importable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qcache.codec import (
    CodecIntegrityError,
    IntegrityReason,
    Keyring,
    KeyStore,
    RotatingKeyring,
    build_codec,
    codec_for_type,
    decode_key,
    encode_key,
    generate_key,
)
from qcache.errors import ConfigError

from .support import ManualClock

config_module = pytest.importorskip("qcache.config")
CacheConfig = config_module.CacheConfig


def make_config(tmp_path: Path, **overrides: object) -> Any:
    """A config from explicit variables only (no process environment, no .env file)."""
    environ = {"ENCRYPTION_KEY_STORE_PATH": str(tmp_path / "keys"), **{k: str(v) for k, v in overrides.items()}}
    return CacheConfig.from_env(env_file=None, environ=environ)


def test_defaults_give_lz4_with_the_threshold_and_no_keys(tmp_path: Path) -> None:
    config = make_config(tmp_path, CACHE_COMPRESSION_THRESHOLD=2048)
    codec = build_codec(config)
    assert codec.compressor.name == "lz4" and codec.compression_threshold == 2048
    assert codec.keys is None
    assert not (tmp_path / "keys").exists()


def test_per_type_flags_follow_the_master_switches(tmp_path: Path) -> None:
    key = encode_key(generate_key())
    config = make_config(tmp_path, CACHE_ENCRYPTION_KEY=key, PROJECT_CACHE_ENCRYPTION="true")
    codec = build_codec(config)
    search, project = codec_for_type(codec, config, "search"), codec_for_type(codec, config, "project")
    assert (search.compress, search.encrypt) == (True, False)
    assert (project.compress, project.encrypt) == (False, True)
    off = make_config(
        tmp_path, CACHE_COMPRESSION_ENABLED="false", CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=key
    )
    search_off = codec_for_type(build_codec(off), off, "search")
    assert (search_off.compress, search_off.encrypt) == (False, True)
    with pytest.raises(ConfigError, match="unknown cache type"):
        codec_for_type(codec, config, "nope")


def test_type_codec_round_trips_and_counts_separately(tmp_path: Path) -> None:
    config = make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=encode_key(generate_key()))
    codec = build_codec(config)
    search = codec_for_type(codec, config, "search")
    value = [{"path": "a.py", "snippet": "x" * 200}] * 20
    data = search.encode(value, "ns:search:q")
    header = codec.inspect(data)
    assert header.encrypted and header.compression_id == 1
    assert search.decode(data, "ns:search:q") == value
    with pytest.raises(CodecIntegrityError):
        search.decode(data, "ns:search:other")
    stats = search.stats.snapshot()
    assert stats.encoded == 1 and stats.encrypted == 1 and stats.integrity_errors == {"authentication_failed": 1}
    assert codec.stats.snapshot().encoded == 0


def test_store_keys_rotate_and_survive_turning_encryption_off(tmp_path: Path, clock: ManualClock) -> None:
    key = encode_key(generate_key())
    on = make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=key)
    writer = build_codec(on, clock=clock)
    assert isinstance(writer.keys, RotatingKeyring)
    old = writer.encode("secret", key="k", encrypt=True)
    clock.advance(604800)
    new = writer.encode("secret", key="k", encrypt=True)
    assert old[4:8] != new[4:8]

    off = make_config(tmp_path, CACHE_ENCRYPTION_KEY=key)  # encryption switched off, key kept
    reader = build_codec(off, clock=clock)
    assert reader.decode(old, key="k") == "secret" and reader.decode(new, key="k") == "secret"
    clock.advance(10 * 604800)
    assert reader.encode("x", key="k", encrypt=True)[4:8] == new[4:8]  # read-only: never rotates
    assert len(KeyStore(tmp_path / "keys", master_key=decode_key(key)).load()) == 2

    no_key = build_codec(make_config(tmp_path))
    with pytest.raises(CodecIntegrityError) as info:
        no_key.decode(new, key="k")
    assert info.value.reason is IntegrityReason.UNKNOWN_KEY_ID


def test_empty_store_path_uses_the_key_itself(tmp_path: Path) -> None:
    config = CacheConfig.from_env(
        env_file=None,
        environ={
            "CACHE_ENCRYPTION_ENABLED": "true",
            "CACHE_ENCRYPTION_KEY": encode_key(generate_key()),
            "ENCRYPTION_KEY_STORE_PATH": "",
        },
    )
    assert isinstance(build_codec(config).keys, Keyring)


def test_encryption_without_a_usable_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CACHE_ENCRYPTION_KEY"):
        build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true"))
    with pytest.raises(ConfigError, match="CACHE_ENCRYPTION_KEY"):
        build_codec(make_config(tmp_path, EMBEDDING_CACHE_ENCRYPTION="true"))
    with pytest.raises(ConfigError, match="32 bytes"):
        build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY="c2hvcnQ="))


def test_encryption_required_applies_only_to_types_that_encrypt(tmp_path: Path) -> None:
    key = encode_key(generate_key())
    config = make_config(
        tmp_path, CACHE_ENCRYPTION_KEY=key, PROJECT_CACHE_ENCRYPTION="true", CACHE_ENCRYPTION_REQUIRED="true"
    )
    codec = build_codec(config)
    project, search = codec_for_type(codec, config, "project"), codec_for_type(codec, config, "search")
    assert (project.encrypt, project.require_encryption) == (True, True)
    assert (search.encrypt, search.require_encryption) == (False, False)
    plain = codec.encode("old", key="k")
    assert search.decode(plain, "k") == "old"
    with pytest.raises(CodecIntegrityError) as info:
        project.decode(plain, "k")
    assert info.value.reason is IntegrityReason.PLAINTEXT_REJECTED
    default = make_config(tmp_path, CACHE_ENCRYPTION_KEY=key, PROJECT_CACHE_ENCRYPTION="true")
    assert codec_for_type(build_codec(default), default, "project").require_encryption is False


def test_rotating_the_master_key_starts_a_new_store_warns_once_and_old_entries_miss(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = encode_key(generate_key()), encode_key(generate_key())
    before = build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=first),
                         clock=clock)
    old = before.encode("secret", key="k", encrypt=True)
    with caplog.at_level("WARNING", logger="qcache"):
        # The service restarts with the new key: it starts, it does not stop on a ConfigError.
        after = build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=second),
                            clock=clock)
        again = build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=second),
                            clock=clock)
    warnings = [r for r in caplog.records if "starting a new key store" in r.getMessage()]
    assert len(warnings) == 1 and second not in caplog.text and first not in caplog.text
    with pytest.raises(CodecIntegrityError) as info:  # the facade counts it and misses
        after.decode(old, key="k")
    assert info.value.reason is IntegrityReason.UNKNOWN_KEY_ID
    fresh = after.encode("new", key="k", encrypt=True)
    assert again.decode(fresh, key="k") == "new"
    # Putting the old key back finds its store where it was: its entries read again.
    back = build_codec(make_config(tmp_path, CACHE_ENCRYPTION_ENABLED="true", CACHE_ENCRYPTION_KEY=first),
                       clock=clock)
    assert back.decode(old, key="k") == "secret"
