"""The values' CRC-32 is zlib's whichever implementation computes it: stored values never depend on the extra."""

from __future__ import annotations

import os
import zlib

import pytest

from qcache.codec import Codec
from qcache.codec.checksum import crc32
from qcache.codec.header import CHECKSUM, CRC_RESIDUE


@pytest.mark.parametrize("size", [0, 1, 93, 6_174, 100_003])
def test_the_checksum_is_zlibs_crc32_chained_the_same_way(size: int) -> None:
    data = os.urandom(size)
    for start in (0, 1, 0xFFFFFFFF, zlib.crc32(b"header")):
        assert crc32(data, start) == zlib.crc32(data, start)
        assert crc32(memoryview(data)[size // 3 :], start) == zlib.crc32(data[size // 3 :], start)


def test_a_stored_value_ends_with_zlibs_crc32_of_key_header_and_body() -> None:
    stored = Codec(compressor="none").encode({"v": list(range(50))}, key="ns:k")
    expected = zlib.crc32(stored[:-4], zlib.crc32(b"ns:k"))
    assert CHECKSUM.unpack_from(stored, len(stored) - 4)[0] == expected
    # Little-endian at the end: the CRC over the key and the whole value is a constant.
    assert zlib.crc32(stored, zlib.crc32(b"ns:k")) == CRC_RESIDUE
    # A record is checked the same way: the storage key's CRC, then the record header and the value.
    assert zlib.crc32(b"header" + stored, zlib.crc32(b"ns:")) == zlib.crc32(stored, zlib.crc32(b"ns:header"))
