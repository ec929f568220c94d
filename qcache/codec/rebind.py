"""Moving a stored value to another key without decoding it.

An unencrypted value's CRC covers the storage key as well as the bytes, so a
value copied under another key reads as corrupt: what the codec checks, it
must be given back. :func:`rebind` verifies the CRC under the old key, then
writes the one for the new key; the payload itself is untouched. An
encrypted value is authenticated with its key as associated data and cannot
be moved without the data key, so it is refused.
"""

from __future__ import annotations

from qcache.codec.checksum import crc32
from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.header import CHECKSUM, CRC_RESIDUE, parse_header


class BoundToKeyError(ValueError):
    """An encrypted value: authenticated with its storage key, it cannot move to another one."""




def rebind(data: bytes, old_key: str | bytes, new_key: str | bytes) -> bytes:
    """``data`` (a codec value stored under ``old_key``) as it must be stored under ``new_key``.

    The keys are what the value was encoded with: a storage key, or the bytes
    the facade binds (the storage key, then its record header). Raises
    :class:`BoundToKeyError` for an encrypted value and
    :class:`CodecIntegrityError` when ``data`` is not an intact value under ``old_key``.
    """
    header = parse_header(data)
    if header.encrypted:
        raise BoundToKeyError("an encrypted value is bound to its storage key")
    old, new = (k.encode("utf-8", "surrogatepass") if isinstance(k, str) else k for k in (old_key, new_key))
    # The codec's plain checksum: the key, then the header and the body, stored last (see pipeline.encode).
    if crc32(data, crc32(old)) != CRC_RESIDUE:
        raise CodecIntegrityError(IntegrityReason.CHECKSUM_MISMATCH, "corrupt or stored under another key")
    unchecked = data[: -CHECKSUM.size]
    return unchecked + CHECKSUM.pack(crc32(unchecked, crc32(new)))
