"""The versioned header: layout, parsing and what it refuses."""

from __future__ import annotations

import pytest

from qcache.codec import (
    FORMAT_VERSION,
    MAGIC,
    Codec,
    CodecIntegrityError,
    Header,
    IntegrityReason,
    Keyring,
    parse_header,
)
from qcache.codec.header import build_base


def test_layout_of_a_plain_and_an_encrypted_entry(keyring: Keyring) -> None:
    codec = Codec(keys=keyring, compression_threshold=0)
    plain = codec.encode("x" * 100, key="k", compress=True)
    assert plain[:4] == bytes((MAGIC, FORMAT_VERSION, 1, 1))
    assert parse_header(plain) == Header(FORMAT_VERSION, 1, 1, False, None)
    sealed = codec.encode(7, key="k", encrypt=True)
    header = parse_header(sealed)
    assert header == Header(FORMAT_VERSION, 1, 0, True, keyring.current().key_id)
    assert len(sealed) == header.size + len(b"\x07") + 16  # one msgpack byte plus the GCM tag


def header(version: int = FORMAT_VERSION, serializer: int = 1, flags: int = 0) -> bytes:
    """Four header bytes, by default a valid unencrypted msgpack one."""
    return bytes((MAGIC, version, serializer, flags))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", IntegrityReason.TRUNCATED),
        (header()[:3], IntegrityReason.TRUNCATED),
        (b"\x00" + header()[1:] + bytes(4), IntegrityReason.FOREIGN),
        (header(version=FORMAT_VERSION + 1) + bytes(4), IntegrityReason.UNSUPPORTED_VERSION),
        (header(version=1) + bytes(4), IntegrityReason.UNSUPPORTED_VERSION),  # the earlier format
        (header(flags=0x40) + bytes(4), IntegrityReason.UNSUPPORTED_FORMAT),
        (header() + bytes(2), IntegrityReason.TRUNCATED),
        (header(flags=0x08) + bytes(20), IntegrityReason.TRUNCATED),
    ],
)
def test_bad_headers_are_refused_with_a_reason(data: bytes, reason: IntegrityReason) -> None:
    with pytest.raises(CodecIntegrityError) as info:
        parse_header(data)
    assert info.value.reason is reason


def test_build_refuses_ids_out_of_range() -> None:
    with pytest.raises(ValueError):
        build_base(0, 0, False)
    with pytest.raises(ValueError):
        build_base(1, 8, False)
