"""Pickle is opt-in, signed, and a planted pickle never runs."""

from __future__ import annotations

import pathlib
import pickle
import struct
from zlib import crc32

import pytest

from qcache.codec import Codec, CodecIntegrityError, IntegrityReason, Keyring, SignedPickleSerializer
from qcache.codec.header import FORMAT_VERSION, MAGIC
from qcache.errors import ConfigError, SerializationError

SECRET = b"k" * 32
KEY = "qc:file:acme:parsed"


class Exploit:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.marker,))


class Unsupported:
    """Neither msgpack nor the registry knows this type."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsupported) and other.n == self.n


def frame(serializer_id: int, payload: bytes, key: str = KEY) -> bytes:
    """A well-formed unencrypted entry around ``payload`` (valid checksum), as an attacker could write."""
    header = bytes((MAGIC, FORMAT_VERSION, serializer_id, 0))
    return header + payload + struct.pack("<I", crc32(header + payload, crc32(key.encode())))


def rejected(codec: Codec, data: bytes) -> IntegrityReason:
    with pytest.raises(CodecIntegrityError) as info:
        codec.decode(data, key=KEY)
    return info.value.reason


def test_planted_pickle_is_never_executed(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Exploit(marker))
    plain = Codec()
    with_pickle = Codec(pickle=SignedPickleSerializer(SECRET))
    forged_signature = SignedPickleSerializer(b"attacker-secret-" * 2).dumps(Exploit(marker))

    assert rejected(plain, payload) is IntegrityReason.FOREIGN  # raw pickle as the stored value
    assert rejected(plain, frame(2, payload)) is IntegrityReason.PICKLE_DISABLED
    assert rejected(plain, frame(2, forged_signature)) is IntegrityReason.PICKLE_DISABLED
    assert rejected(with_pickle, frame(2, payload)) is IntegrityReason.BAD_SIGNATURE  # unsigned
    assert rejected(with_pickle, frame(2, b"\x00" * 32 + payload)) is IntegrityReason.BAD_SIGNATURE
    assert rejected(with_pickle, frame(2, forged_signature)) is IntegrityReason.BAD_SIGNATURE
    assert rejected(with_pickle, frame(1, payload)) is IntegrityReason.MALFORMED  # claims msgpack
    assert not marker.exists()

    # Control: the very same payload, signed with the reader's secret, does run. So the
    # signature check is what kept it out above, not a payload that never worked.
    signed = SignedPickleSerializer(SECRET).dumps(Exploit(marker))
    with_pickle.decode(frame(2, signed), key=KEY)
    assert marker.exists()


def test_pickle_is_only_a_fallback_when_enabled() -> None:
    with pytest.raises(SerializationError, match="Unsupported"):
        Codec().encode(Unsupported(1), key=KEY)
    codec = Codec(pickle=SignedPickleSerializer(SECRET))
    data = codec.encode(Unsupported(2), key=KEY)
    assert data[2] == SignedPickleSerializer.id
    assert codec.decode(data, key=KEY) == Unsupported(2)
    assert codec.encode({"plain": 1}, key=KEY)[2] == 1  # msgpack-able values never use pickle


def test_pickle_entries_need_the_same_secret(keyring: Keyring) -> None:
    writer = Codec(pickle=SignedPickleSerializer(SECRET), keys=keyring)
    other_secret = Codec(pickle=SignedPickleSerializer(b"z" * 32), keys=keyring)
    for encrypt in (False, True):
        data = writer.encode(Unsupported(3), key=KEY, encrypt=encrypt, compress=True)
        assert writer.decode(data, key=KEY) == Unsupported(3)
        assert rejected(other_secret, data) is IntegrityReason.BAD_SIGNATURE
        assert rejected(Codec(keys=keyring), data) is IntegrityReason.PICKLE_DISABLED


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        SignedPickleSerializer(b"short")
