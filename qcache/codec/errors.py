"""Why stored bytes were rejected: the reason codes the facade turns into metrics."""

from __future__ import annotations

from enum import Enum

from qcache.errors import IntegrityError


class IntegrityReason(str, Enum):
    """Short, stable reason codes for rejected stored bytes.

    They are safe to use as metric labels and in log lines: none of them
    carries any part of the value or of the key material.
    """

    NOT_BYTES = "not_bytes"  # the tier handed over something that is not bytes-like
    TRUNCATED = "truncated"  # shorter than the header and the fixed-size fields it announces
    FOREIGN = "foreign"  # no qcache magic byte: written by something else
    UNSUPPORTED_VERSION = "unsupported_version"  # a format version this build cannot read
    UNSUPPORTED_FORMAT = "unsupported_format"  # unknown serializer, compression or flag bits
    CHECKSUM_MISMATCH = "checksum_mismatch"  # unencrypted entry corrupted or copied to another key
    UNKNOWN_KEY_ID = "unknown_key_id"  # encrypted under a key this process does not hold
    AUTHENTICATION_FAILED = "authentication_failed"  # tampered, wrong key, or moved to another cache key
    PLAINTEXT_REJECTED = "plaintext_rejected"  # unencrypted entry where encryption is required
    TOO_LARGE = "too_large"  # announces a size above the configured limit
    DECOMPRESSION_FAILED = "decompression_failed"
    CODEC_UNAVAILABLE = "codec_unavailable"  # e.g. a zstd entry without the zstandard package
    PICKLE_DISABLED = "pickle_disabled"  # a pickle entry while signed pickle is not enabled
    BAD_SIGNATURE = "bad_signature"  # pickle bytes whose HMAC does not verify
    UNKNOWN_TYPE = "unknown_type"  # a custom type name that is not registered here
    MALFORMED = "malformed"  # the payload does not deserialize


class CodecIntegrityError(IntegrityError):
    """Stored bytes that the codec refuses to turn into a value.

    ``reason`` says why, so the facade can count the miss under a stable
    label and log one line without ever echoing the stored bytes.
    """

    def __init__(self, reason: IntegrityReason, detail: str = "") -> None:
        self.reason = reason
        message = f"cached value rejected ({reason.value})"
        super().__init__(f"{message}: {detail}" if detail else message)
