"""The versioned header in front of every encoded value.

Layout (big-endian unless said), version 3::

    byte 0      magic 0xC1 (never produced by msgpack, never valid UTF-8,
                never the first byte of a pickle)
    byte 1      format version
    byte 2      serializer id
    byte 3      flags: bits 0-2 compression id, bit 3 encrypted, others zero
    encrypted:  4-byte key id | 12-byte nonce | ciphertext with 16-byte GCM tag
    otherwise:  payload | 4-byte CRC-32, little-endian

An unencrypted value's CRC-32 (zlib's) covers the key it is bound to, then
the header and the payload: ``crc32(header + payload, crc32(key))``. Stored
last, little-endian, it makes the CRC-32 of ``key`` followed by the whole
value the constant :data:`CRC_RESIDUE`, so one pass over the stored bytes
checks them, wherever they sit in a larger buffer that ends with them.

Version 3 moved the CRC from the front of the payload to its end (and starts
it with the key); version 2 encrypts as version 3 does, under a subkey
derived for the eight header and key-id bytes, with the cache key alone as
associated data; version 1 put header and cache key together in the
associated data. Entries of other versions are read as ``unsupported_version``
misses (a cache refills them), never decrypted.

Reading is driven by these fields only, never by the current settings, so an
entry written before compression or encryption was switched on or off is still
read back correctly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qcache.codec.errors import CodecIntegrityError, IntegrityReason

MAGIC = 0xC1
FORMAT_VERSION = 3

#: Bytes of the fixed part (magic, version, serializer, flags).
BASE_SIZE = 4
KEY_ID_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
CHECKSUM_SIZE = 4
#: Offset of the payload (plain), which the CRC follows; of the nonce (encrypted) and of the ciphertext.
PLAIN_BODY_OFFSET = BASE_SIZE
#: Bytes of an unencrypted value with an empty payload.
PLAIN_MIN_SIZE = BASE_SIZE + CHECKSUM_SIZE
ENCRYPTED_PREFIX_SIZE = BASE_SIZE + KEY_ID_SIZE
CIPHERTEXT_OFFSET = ENCRYPTED_PREFIX_SIZE + NONCE_SIZE

COMPRESSION_MASK = 0x07
FLAG_ENCRYPTED = 0x08
_KNOWN_FLAGS = COMPRESSION_MASK | FLAG_ENCRYPTED

#: The CRC field of an unencrypted value (its last four bytes).
CHECKSUM = struct.Struct("<I")
#: zlib's CRC-32 of any bytes followed by their own CRC-32, little-endian: what checks a plain value in one pass.
CRC_RESIDUE = 0x2144DF1C


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded header fields of one stored value."""

    version: int
    serializer_id: int
    compression_id: int
    encrypted: bool
    key_id: bytes | None

    @property
    def size(self) -> int:
        """Bytes in front of the payload or ciphertext."""
        return CIPHERTEXT_OFFSET if self.encrypted else PLAIN_BODY_OFFSET


def build_base(serializer_id: int, compression_id: int, encrypted: bool) -> bytes:
    """The four fixed header bytes for one combination of stages."""
    if not 0 < serializer_id < 256:
        raise ValueError(f"serializer id must be in 1..255, got {serializer_id}")
    if not 0 <= compression_id <= COMPRESSION_MASK:
        raise ValueError(f"compression id must be in 0..{COMPRESSION_MASK}, got {compression_id}")
    flags = compression_id | (FLAG_ENCRYPTED if encrypted else 0)
    return bytes((MAGIC, FORMAT_VERSION, serializer_id, flags))


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse and validate the header of ``data``.

    Raises :class:`~qcache.codec.errors.CodecIntegrityError` for anything that
    is not a complete header of the current version: foreign bytes, unknown versions,
    reserved flag bits, or a value too short for the fields it announces.
    """
    if len(data) < BASE_SIZE:
        raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than the header")
    magic, version, serializer_id, flags = data[0], data[1], data[2], data[3]
    if magic != MAGIC:
        raise CodecIntegrityError(IntegrityReason.FOREIGN, "no qcache magic byte")
    if version != FORMAT_VERSION:
        raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_VERSION, f"format version {version}")
    if flags & ~_KNOWN_FLAGS:
        raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_FORMAT, f"reserved flag bits {flags:#04x}")
    encrypted = bool(flags & FLAG_ENCRYPTED)
    if encrypted:
        if len(data) < CIPHERTEXT_OFFSET + TAG_SIZE:
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than nonce and tag")
        key_id: bytes | None = bytes(data[BASE_SIZE:ENCRYPTED_PREFIX_SIZE])
    else:
        if len(data) < PLAIN_MIN_SIZE:
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than the checksum")
        key_id = None
    return Header(version, serializer_id, flags & COMPRESSION_MASK, encrypted, key_id)
