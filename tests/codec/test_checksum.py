"""The values' CRC-32 is zlib's whichever implementation computes it: stored values never depend on the extra."""

from __future__ import annotations

import os
import zlib

import pytest

from qcache.codec import Codec
from qcache.codec.checksum import crc32
from qcache.codec.header import BASE_SIZE, CHECKSUM, PLAIN_BODY_OFFSET


@pytest.mark.parametrize("size", [0, 1, 93, 6_174, 100_003])
def test_the_checksum_is_zlibs_crc32_chained_the_same_way(size: int) -> None:
    data = os.urandom(size)
    for start in (0, 1, 0xFFFFFFFF, zlib.crc32(b"header")):
        assert crc32(data, start) == zlib.crc32(data, start)
        assert crc32(memoryview(data)[size // 3 :], start) == zlib.crc32(data[size // 3 :], start)


def test_a_stored_value_carries_zlibs_crc32_of_header_key_and_body() -> None:
    stored = Codec(compressor="none").encode({"v": list(range(50))}, key="ns:k")
    expected = zlib.crc32(stored[PLAIN_BODY_OFFSET:], zlib.crc32(b"ns:k", zlib.crc32(stored[:BASE_SIZE])))
    assert CHECKSUM.unpack_from(stored, BASE_SIZE)[0] == expected
