"""Key parsing, key ids and the static keyring."""

from __future__ import annotations

import base64

import pytest

from qcache.codec import Keyring, decode_key, encode_key, generate_key, key_id_for
from qcache.errors import ConfigError


def test_key_round_trips_through_base64_in_both_alphabets() -> None:
    key = bytes(range(250, 256)) + generate_key()[6:]
    assert decode_key(encode_key(key)) == key
    assert decode_key(base64.urlsafe_b64encode(key).decode()) == key
    assert decode_key("  " + encode_key(key) + "\n") == key
    assert decode_key(encode_key(key).rstrip("=")) == key  # padding stripped by a secret manager


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not base64 at all!", "not valid base64"),
        (base64.urlsafe_b64encode(b"\xfb" * 32).decode()[:-2] + "!=", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "got 16"),
        (base64.b64encode(b"x" * 33).decode(), "got 33"),
    ],
)
def test_bad_keys_are_clear_config_errors_that_do_not_echo_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        decode_key(text)
    assert "CACHE_ENCRYPTION_KEY" in str(info.value)
    if text:
        assert text not in str(info.value)


def test_key_ids_are_deterministic_and_distinct() -> None:
    key = generate_key()
    assert key_id_for(key) == key_id_for(bytes(key)) and len(key_id_for(key)) == 4
    assert key_id_for(key) != key_id_for(generate_key())


def test_keyring_first_key_encrypts_all_decrypt() -> None:
    new, old = generate_key(), generate_key()
    ring = Keyring([new, old])
    assert ring.current().key_id == key_id_for(new)
    assert ring.lookup(key_id_for(old)) is not None
    assert ring.lookup(b"\x00\x00\x00\x00") is None
    assert ring.key_ids() == [key_id_for(new).hex(), key_id_for(old).hex()]
    assert Keyring.from_base64(encode_key(new)).current().key_id == key_id_for(new)
    assert str(new) not in repr(ring.current())


def test_keyring_refuses_empty_duplicate_and_malformed_keys() -> None:
    key = generate_key()
    with pytest.raises(ConfigError):
        Keyring([])
    with pytest.raises(ConfigError, match="same key"):
        Keyring([key, key])
    with pytest.raises(ConfigError, match="32"):
        Keyring([b"short"])
