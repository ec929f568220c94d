"""Opt-in pickle for values msgpack cannot represent, gated by an HMAC signature.

Unpickling runs code chosen by whoever wrote the bytes, so a pickle payload is
only ever unpickled after its HMAC-SHA256 has been verified with a secret the
reader holds. Unsigned or badly signed bytes raise
:class:`~qcache.codec.errors.CodecIntegrityError` and are never loaded.
Anyone holding the secret can still make every reader run code: share it only
with processes that are trusted to the same degree.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any, ClassVar

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.serializer import Serializer, type_name
from qcache.errors import ConfigError, SerializationError

_TAG_SIZE = hashlib.sha256().digest_size
_MIN_SECRET_BYTES = 32
# Derive the signing key so the same secret used elsewhere never signs pickles directly.
_SIGNING_LABEL = b"qcache/signed-pickle/v1"


class SignedPickleSerializer(Serializer):
    """Pickle with an HMAC-SHA256 tag in front; ``loads`` verifies before unpickling."""

    id: ClassVar[int] = 2
    name: ClassVar[str] = "pickle-hmac-sha256"

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
            raise ConfigError(f"the pickle signing secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._key = hmac.digest(secret, _SIGNING_LABEL, "sha256")

    def dumps(self, value: Any) -> bytes:
        """Signed pickle of ``value``."""
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # pickle raises several unrelated types for unpicklable objects
            raise SerializationError(f"cannot pickle value of type {type_name(value)}: {exc}") from exc
        return hmac.digest(self._key, body, "sha256") + body

    def loads(self, data: bytes | memoryview) -> Any:
        """Verify the tag, then unpickle; raises CodecIntegrityError before loading anything unverified."""
        view = memoryview(data)
        if len(view) <= _TAG_SIZE:
            raise CodecIntegrityError(IntegrityReason.BAD_SIGNATURE, "pickle payload has no signature")
        body = view[_TAG_SIZE:]
        expected = hmac.digest(self._key, body, "sha256")
        if not hmac.compare_digest(expected, view[:_TAG_SIZE]):
            raise CodecIntegrityError(IntegrityReason.BAD_SIGNATURE, "pickle signature does not verify")
        return pickle.loads(body)
