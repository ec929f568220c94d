"""The encryption stage: AES-256-GCM with a random 96-bit nonce per value.

The associated data is the header (including the key id) followed by the
full cache key, so a value copied to another key, or a header edited to
claim another serializer or compression, fails authentication.
"""

from __future__ import annotations

import os
import threading

from cryptography.exceptions import InvalidTag

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.header import BASE_SIZE, CIPHERTEXT_OFFSET, ENCRYPTED_PREFIX_SIZE, NONCE_SIZE, TAG_SIZE
from qcache.codec.keys import KeySource

_NONCES_PER_REFILL = 256


class NonceSource:
    """Random 96-bit nonces from the OS CSPRNG, fetched in batches.

    One ``os.urandom`` call costs about as much as encrypting a small value,
    so nonces are drawn 256 at a time into a per-thread pool. The pools are
    discarded in a forked child, which would otherwise reuse its parent's
    nonces under the same key (the one fatal mistake with GCM).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        # Hooks cannot be unregistered: create few sources (the stage shares one by default).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._local = threading.local()

    def __call__(self) -> bytes:
        """A fresh nonce."""
        try:
            return self._local.pool.pop()  # type: ignore[no-any-return]
        except (AttributeError, IndexError):
            block = os.urandom(NONCE_SIZE * _NONCES_PER_REFILL)
            pool = [block[i : i + NONCE_SIZE] for i in range(0, len(block), NONCE_SIZE)]
            self._local.pool = pool
            return pool.pop()


#: The source every stage uses unless given one; nonces need only be unique, not per key.
default_nonces = NonceSource()


class AesGcmStage:
    """Seals payloads under the keyring's current key and opens them by the key id they carry."""

    def __init__(self, keys: KeySource, nonces: NonceSource | None = None) -> None:
        self._keys = keys
        self._nonce = nonces if nonces is not None else default_nonces
        # Bound once: these run for every value, where a few attribute loads are measurable.
        self._current = keys.current
        self._lookup = keys.lookup

    @property
    def keys(self) -> KeySource:
        """The keyring in use."""
        return self._keys

    def seal(self, base: bytes, payload: bytes, key: bytes) -> bytes:
        """``base`` header + key id + nonce + ciphertext of ``payload``, bound to cache ``key``."""
        data_key = self._current()
        prefix = base + data_key.key_id
        nonce = self._nonce()
        return b"".join((prefix, nonce, data_key.aead.encrypt(nonce, payload, prefix + key)))

    def open(self, data: bytes, key: bytes) -> bytes:
        """The payload sealed in ``data`` (a whole stored value whose header says encrypted)."""
        aead = self._lookup(data[BASE_SIZE:ENCRYPTED_PREFIX_SIZE])
        if aead is None:
            raise CodecIntegrityError(IntegrityReason.UNKNOWN_KEY_ID, "encrypted under a key not held here")
        try:
            # Plain slices: at these sizes they cost less than memoryview's slower buffer path.
            return aead.decrypt(
                data[ENCRYPTED_PREFIX_SIZE:CIPHERTEXT_OFFSET],
                data[CIPHERTEXT_OFFSET:],
                data[:ENCRYPTED_PREFIX_SIZE] + key,
            )
        except (InvalidTag, ValueError):  # ValueError: too short for a nonce
            if len(data) < CIPHERTEXT_OFFSET + TAG_SIZE:
                raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than nonce and tag") from None
            raise CodecIntegrityError(
                IntegrityReason.AUTHENTICATION_FAILED, "tampered, wrong key, or stored under another key"
            ) from None
