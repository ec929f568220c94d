"""The L2 record: what the facade stores in Redis around the codec's bytes.

Layout (big-endian)::

    magic 0xC7 | version 4 | flags | expires_at_ms u64 | ttl_ms u64 | [key_len u16 | key utf-8]
        | [source digest, 16 bytes] | codec bytes

``expires_at_ms`` (the writer's wall-clock epoch milliseconds) lets an L2 hit
fill L1 with the entry's remaining lifetime without a second round trip for
``PTTL``. ``ttl_ms`` is the lifetime the writer asked for: a reader caps the
L1 copy at it, so a writer whose clock runs ahead of the reader's cannot make
the L1 copy outlive the L2 one. The caller's key is embedded only when the
storage key is a hash of it (keys longer than ``CACHE_MAX_KEY_LENGTH``) and is
compared on every read, so two keys that share a hash can never read each
other's value. The digest of the data the value was computed from is there
only when the writer passed ``source=`` (see :mod:`qcache.cache.content`).

The codec bytes carry their own versioned header and integrity check (a CRC,
or the AES-GCM tag), computed over :func:`binding`: the storage key followed
by this header. Editing the expiry, the TTL, the embedded key or the source digest, or moving the
record to another key, therefore fails the codec's check, so an old ciphertext
replanted with a forged expiry is refused like any corrupt entry. With the
storage key first, an unencrypted record is checked in one pass over its
stored bytes: the CRC-32 of the record, started from the CRC-32 of the storage
key, is :data:`~qcache.codec.header.CRC_RESIDUE` (see :mod:`qcache.codec.header`).
Records of versions 1 and 2 (whose header nothing authenticated) and 3 (the
header before the storage key, and the value format before it) are refused
(``UNSUPPORTED_VERSION``): an upgrade refills the cache instead of trusting them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qcache.codec import CodecIntegrityError, IntegrityReason

RECORD_MAGIC = 0xC7
RECORD_VERSION = 4
FLAG_KEY_EMBEDDED = 0x01
FLAG_SOURCE_DIGEST = 0x02
_KNOWN_FLAGS = FLAG_KEY_EMBEDDED | FLAG_SOURCE_DIGEST
SOURCE_DIGEST_SIZE = 16

_FIXED = struct.Struct(">BBBQQ")
_KEY_LEN = struct.Struct(">H")
_MAX_EMBEDDED_KEY = 0xFFFF

#: Bytes of a plain record's header (no embedded key, no digest), where its codec bytes start.
PLAIN_HEADER_SIZE = _FIXED.size
#: A plain record's header and the codec header behind it, read in one step:
#: (magic << 8 | version, flags, expires_at_ms, ttl_ms, codec header). See :data:`PLAIN_MARK`.
PLAIN_HEAD = struct.Struct(">HBQQ4s")
#: The first field of :data:`PLAIN_HEAD` for a record of this version.
PLAIN_MARK = RECORD_MAGIC << 8 | RECORD_VERSION


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed record: expiry, the embedded caller key (if any), the codec bytes, the TTL (0: unknown)."""

    expires_at_ms: int
    caller_key: str | None
    payload: memoryview
    ttl_ms: int = 0
    source_digest: bytes | None = None
    header: bytes = b""

    def binding(self, skey: str) -> bytes:
        """What the codec bytes must be decoded with when the record is stored under ``skey``."""
        return binding(self.header, skey)


def record_header(
    expires_at_ms: int, caller_key: str | None = None, ttl_ms: int = 0, source_digest: bytes | None = None
) -> bytes:
    """The record's bytes in front of the codec's: version, expiry, TTL, embedded caller key, source digest.

    ``ttl_ms`` is the entry's lifetime as the writer set it (0: unknown, no cap on readers' L1 copies);
    ``source_digest`` the content hash of the data the value came from (see :mod:`qcache.cache.content`).
    """
    if caller_key is None and source_digest is None:
        return _FIXED.pack(RECORD_MAGIC, RECORD_VERSION, 0, expires_at_ms, ttl_ms)
    flags = 0
    parts = [b""]
    if caller_key is not None:
        encoded = caller_key.encode("utf-8", "surrogatepass")
        if len(encoded) > _MAX_EMBEDDED_KEY:
            raise ValueError(f"cache keys are limited to {_MAX_EMBEDDED_KEY} bytes, got {len(encoded)}")
        flags |= FLAG_KEY_EMBEDDED
        parts += (_KEY_LEN.pack(len(encoded)), encoded)
    if source_digest is not None:
        if len(source_digest) != SOURCE_DIGEST_SIZE:
            raise ValueError(f"a source digest has {SOURCE_DIGEST_SIZE} bytes, got {len(source_digest)}")
        flags |= FLAG_SOURCE_DIGEST
        parts.append(source_digest)
    parts[0] = _FIXED.pack(RECORD_MAGIC, RECORD_VERSION, flags, expires_at_ms, ttl_ms)
    return b"".join(parts)


def binding(header: bytes | memoryview, skey: str) -> bytes:
    """What the codec authenticates besides the value: the storage key, then the record header.

    No two (key, header) pairs give the same bytes: a header starts with the
    magic byte 0xC7 and the version, which no UTF-8 text holds (0xC7 leads a
    two-byte sequence, and the version is no continuation byte), so the key
    ends where they start; the header says its own length.
    """
    return skey.encode("utf-8", "surrogatepass") + header


def pack_record(
    payload: bytes, expires_at_ms: int, caller_key: str | None = None, ttl_ms: int = 0,
    source_digest: bytes | None = None,
) -> bytes:
    """Wrap codec bytes; ``caller_key`` is embedded when the storage key is hashed.

    The codec bytes must have been encoded for ``binding(record_header(...), skey)``
    with the same arguments, or readers refuse the record.
    """
    return record_header(expires_at_ms, caller_key, ttl_ms, source_digest) + payload


def unpack_record(data: bytes) -> Record:
    """Parse a record; :class:`CodecIntegrityError` when ``data`` is not one."""
    expires_at_ms, ttl_ms, caller_key, payload = parse_record(data)
    digest = None
    if data[2] & FLAG_SOURCE_DIGEST:  # parse_record checked it is there, right before the payload
        start = len(data) - len(payload) - SOURCE_DIGEST_SIZE
        digest = bytes(data[start : start + SOURCE_DIGEST_SIZE])
    return Record(expires_at_ms, caller_key, payload, ttl_ms, digest, bytes(data[: len(data) - len(payload)]))


def parse_record(data: bytes) -> tuple[int, int, str | None, memoryview]:
    """``(expires_at_ms, ttl_ms, caller_key, payload)`` of a record, as :func:`unpack_record` without the object.

    The facade's read path uses this form: it runs once per L2 hit, where
    building a frozen dataclass costs a measurable share of the facade's time.
    The header is ``data[: len(data) - len(payload)]`` (see :func:`binding`).
    """
    if len(data) < _FIXED.size:
        if data[:1] not in (b"", bytes((RECORD_MAGIC,))):
            raise CodecIntegrityError(IntegrityReason.FOREIGN, "not a qcache record")
        raise CodecIntegrityError(IntegrityReason.TRUNCATED, "record shorter than its header")
    magic, version, flags, expires_at_ms, ttl_ms = _FIXED.unpack_from(data)
    if magic != RECORD_MAGIC:
        raise CodecIntegrityError(IntegrityReason.FOREIGN, "not a qcache record")
    if version != RECORD_VERSION or flags & ~_KNOWN_FLAGS:
        raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_VERSION, "unknown record version or flags")
    offset = _FIXED.size
    view = memoryview(data)
    caller_key = None
    if flags & FLAG_KEY_EMBEDDED:
        if len(data) < offset + _KEY_LEN.size:
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "record key length missing")
        (length,) = _KEY_LEN.unpack_from(data, offset)
        offset += _KEY_LEN.size
        if len(data) < offset + length:
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "record key truncated")
        try:
            caller_key = bytes(view[offset : offset + length]).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise CodecIntegrityError(IntegrityReason.MALFORMED, "record key is not UTF-8") from exc
        offset += length
    if flags & FLAG_SOURCE_DIGEST:
        if len(data) < offset + SOURCE_DIGEST_SIZE:
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "record source digest truncated")
        offset += SOURCE_DIGEST_SIZE
    return expires_at_ms, ttl_ms, caller_key, view[offset:]
