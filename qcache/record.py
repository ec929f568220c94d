"""The L2 record: what the facade stores in Redis around the codec's bytes.

Layout (big-endian)::

    magic 0xC7 | version 1 | flags | expires_at_ms u64 | [key_len u16 | key utf-8] | codec bytes

``expires_at_ms`` (wall-clock epoch milliseconds) lets an L2 hit fill L1 with
the entry's remaining lifetime without a second round trip for ``PTTL``. The
caller's key is embedded only when the storage key is a hash of it (keys longer
than ``CACHE_MAX_KEY_LENGTH``) and is compared on every read, so two keys that
share a hash can never read each other's value. The codec bytes carry their own
versioned header and integrity check; this wrapper only adds routing data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qcache.codec import CodecIntegrityError, IntegrityReason

RECORD_MAGIC = 0xC7
RECORD_VERSION = 1
FLAG_KEY_EMBEDDED = 0x01

_FIXED = struct.Struct(">BBBQ")
_KEY_LEN = struct.Struct(">H")
_MAX_EMBEDDED_KEY = 0xFFFF


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed record: expiry, the embedded caller key (if any) and the codec bytes."""

    expires_at_ms: int
    caller_key: str | None
    payload: memoryview


def pack_record(payload: bytes, expires_at_ms: int, caller_key: str | None = None) -> bytes:
    """Wrap codec bytes; ``caller_key`` is embedded when the storage key is hashed."""
    if caller_key is None:
        return _FIXED.pack(RECORD_MAGIC, RECORD_VERSION, 0, expires_at_ms) + payload
    encoded = caller_key.encode("utf-8", "surrogatepass")
    if len(encoded) > _MAX_EMBEDDED_KEY:
        raise ValueError(f"cache keys are limited to {_MAX_EMBEDDED_KEY} bytes, got {len(encoded)}")
    return b"".join(
        (
            _FIXED.pack(RECORD_MAGIC, RECORD_VERSION, FLAG_KEY_EMBEDDED, expires_at_ms),
            _KEY_LEN.pack(len(encoded)),
            encoded,
            payload,
        )
    )


def unpack_record(data: bytes) -> Record:
    """Parse a record; :class:`CodecIntegrityError` when ``data`` is not one."""
    return Record(*parse_record(data))


def parse_record(data: bytes) -> tuple[int, str | None, memoryview]:
    """``(expires_at_ms, caller_key, payload)`` of a record, as :func:`unpack_record` without the object.

    The facade's read path uses this form: it runs once per L2 hit, where
    building a frozen dataclass costs a measurable share of the facade's time.
    """
    if len(data) < _FIXED.size:
        raise CodecIntegrityError(IntegrityReason.TRUNCATED, "record shorter than its header")
    magic, version, flags, expires_at_ms = _FIXED.unpack_from(data)
    if magic != RECORD_MAGIC:
        raise CodecIntegrityError(IntegrityReason.FOREIGN, "not a qcache record")
    if version != RECORD_VERSION or flags & ~FLAG_KEY_EMBEDDED:
        raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_VERSION, "unknown record version or flags")
    view = memoryview(data)
    offset = _FIXED.size
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
    return expires_at_ms, caller_key, view[offset:]
