"""The encryption stage: AES-256-GCM with a random 96-bit nonce per value.

Each value is encrypted under a subkey derived from the data key for the
exact header in front of it (see :mod:`qcache.codec.keys`), with the full
cache key as associated data: a value copied to another key, or a header
edited to claim another serializer, compression or key, fails authentication.
Binding the header through the subkey rather than the associated data means
neither direction builds an associated-data string per value.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.header import BASE_SIZE, CIPHERTEXT_OFFSET, ENCRYPTED_PREFIX_SIZE, NONCE_SIZE, TAG_SIZE
from qcache.codec.keys import DataKey, KeySource
from qcache.errors import ConfigError

_NONCES_PER_REFILL = 256
_BATCH = struct.Struct(f"{NONCE_SIZE}s" * _NONCES_PER_REFILL)  # splits a batch in one C call
#: Prefixes (header + key id) remembered per stage: a few per key in use, so this bound is
#: only ever reached by headers that are not the codec's own (the stage itself does not check them).
_MAX_REMEMBERED = 1024
#: ``AESGCM.decrypt`` / ``encrypt`` of one subkey, remembered bound so a call skips the attribute load.
_Decrypt = Callable[[bytes, bytes | memoryview, bytes], bytes]
_Encrypt = Callable[[bytes, bytes, bytes], bytes]
# Slice objects built once: a literal ``data[8:20]`` builds a new slice on every call.
_PREFIX = slice(0, ENCRYPTED_PREFIX_SIZE)
_KEY_ID = slice(BASE_SIZE, ENCRYPTED_PREFIX_SIZE)
_NONCE = slice(ENCRYPTED_PREFIX_SIZE, CIPHERTEXT_OFFSET)
_CIPHERTEXT = slice(CIPHERTEXT_OFFSET, None)
#: Stored size from which :meth:`AesGcmStage.open_large` beats :meth:`AesGcmStage.open`.
LARGE_VALUE_BYTES = 8 * 1024


class NonceSource:
    """Random 96-bit nonces from the OS CSPRNG, fetched in batches.

    One ``os.urandom`` call costs about as much as encrypting a small value,
    so nonces are drawn 256 at a time into one pool shared by all threads:
    ``list.pop`` is atomic, so no two callers ever get the same nonce, and a
    shared list costs less per call than a per-thread one. The pool is
    emptied in a forked child, which would otherwise reuse its parent's
    nonces under the same key (the one fatal mistake with GCM).
    """

    def __init__(self) -> None:
        self._pool: list[bytes] = []
        # Hooks cannot be unregistered: create few sources (the stage shares one by default).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool.clear()

    def __call__(self) -> bytes:
        """A fresh nonce."""
        try:
            return self._pool.pop()
        except IndexError:
            return self._refill()

    def _refill(self) -> bytes:
        """One nonce from a new batch; the rest join the pool (threads refilling together just add more)."""
        fresh = list(_BATCH.unpack(os.urandom(_BATCH.size)))
        nonce: bytes = fresh.pop()
        self._pool.extend(fresh)
        return nonce


#: The source every stage uses unless given one; nonces need only be unique, not per key.
default_nonces = NonceSource()


class AesGcmStage:
    """Seals payloads under the keyring's current key and opens them by the key id they carry.

    Reading resolves the subkey's ``decrypt`` with one dict lookup keyed by
    the first eight stored bytes (header and key id), which are exactly the
    bytes the subkey is derived for. The stage subscribes to the keyring and
    forgets every remembered cipher when its keys change, so a key the
    keyring drops stops decrypting here too.
    """

    def __init__(self, keys: KeySource, nonces: NonceSource | None = None) -> None:
        if not callable(getattr(keys, "subscribe", None)):
            raise ConfigError(f"{type(keys).__name__} is not a key source: it has no subscribe(listener)")
        self._keys = keys
        # Bound once: these run for every value, where a few attribute loads are measurable.
        self._nonce = (nonces if nonces is not None else default_nonces).__call__
        self._current = keys.current
        self._lookup = keys.lookup
        self._decrypts: dict[bytes, _Decrypt] = {}
        # Per header: the key it was derived from (checked by identity: rotation swaps it), prefix, encrypt.
        self._sealers: dict[bytes, tuple[DataKey, bytes, _Encrypt]] = {}
        _check_lookup_returns_data_keys(keys)
        keys.subscribe(self)

    @property
    def keys(self) -> KeySource:
        """The keyring in use."""
        return self._keys

    def keys_changed(self) -> None:
        """Forget the remembered ciphers: the keyring added or dropped keys."""
        self._decrypts = {}
        self._sealers = {}

    def seal(self, base: bytes, payload: bytes, key: bytes) -> bytes:
        """``base`` header + key id + nonce + ciphertext of ``payload``, bound to cache ``key``."""
        data_key = self._current()
        sealer = self._sealers.get(base)
        if sealer is None or sealer[0] is not data_key:
            sealer = self._sealer(base, data_key)
        _, prefix, encrypt = sealer
        nonce = self._nonce()
        return b"".join((prefix, nonce, encrypt(nonce, payload, key)))

    def open(
        self,
        data: bytes,
        key: bytes,
        _prefix: slice = _PREFIX,
        _nonce: slice = _NONCE,
        _ciphertext: slice = _CIPHERTEXT,
    ) -> bytes:
        """The payload sealed in ``data`` (a whole stored value whose header says encrypted).

        The slices arrive as defaults (fast locals, not global lookups): on a
        200-byte value the raw AES-GCM call takes ~0.5 us, so every load counts.
        """
        try:
            decrypt = self._decrypts[data[_prefix]]
        except KeyError:
            decrypt = self._resolve(data[_prefix])
        try:
            # Plain bytes slices: below LARGE_VALUE_BYTES they cost less than a memoryview.
            return decrypt(data[_nonce], data[_ciphertext], key)
        except (InvalidTag, ValueError):  # ValueError: too short for a nonce
            raise _rejection(data) from None

    def open_large(self, data: bytes, key: bytes) -> bytes:
        """:meth:`open` without copying the ciphertext: faster from ``LARGE_VALUE_BYTES`` on.

        A separate method (the pipeline picks by size) rather than a size
        test in :meth:`open`: that test alone adds ~4% to decrypting a 200 B value.
        """
        try:
            decrypt = self._decrypts[data[_PREFIX]]
        except KeyError:
            decrypt = self._resolve(data[_PREFIX])
        try:
            return decrypt(data[_NONCE], memoryview(data)[_CIPHERTEXT], key)
        except (InvalidTag, ValueError):
            raise _rejection(data) from None

    def _sealer(self, base: bytes, data_key: DataKey) -> tuple[DataKey, bytes, _Encrypt]:
        """Derive and remember the cipher that seals values behind ``base`` under ``data_key``."""
        sealers = self._sealers  # taken first, as in _resolve
        if not isinstance(data_key, DataKey):
            raise ConfigError(
                f"{type(self._keys).__name__}.current() returned {type(data_key).__name__}, not a DataKey"
            )
        prefix = base + data_key.key_id
        sealer = (data_key, prefix, data_key.cipher(prefix).encrypt)
        if len(sealers) >= _MAX_REMEMBERED:
            sealers.clear()
        sealers[base] = sealer
        return sealer

    def _resolve(self, prefix: bytes) -> _Decrypt:
        """Ask the keyring for the key id in ``prefix``; remember its subkey's decrypt under the prefix."""
        # Taken before asking: if the keys change meanwhile, the answer lands in a discarded dict.
        decrypts = self._decrypts
        if len(prefix) < ENCRYPTED_PREFIX_SIZE:  # checked first: asking may make the keyring re-read its store
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than header and key id")
        data_key = self._lookup(prefix[_KEY_ID])
        if data_key is None:  # not remembered: the keyring may learn the id later (another process rotated)
            raise CodecIntegrityError(IntegrityReason.UNKNOWN_KEY_ID, "encrypted under a key not held here")
        decrypt = data_key.cipher(prefix).decrypt
        if len(decrypts) >= _MAX_REMEMBERED:
            decrypts.clear()
        decrypts[prefix] = decrypt
        return decrypt


def _check_lookup_returns_data_keys(keys: KeySource) -> None:
    """Refuse, when the stage is built, a key source whose ``lookup`` returns something else.

    Reading cannot report it: decoding turns every failure into an integrity
    miss, so such a source would show up only as a silent 100% miss rate.
    A source with no writer key yet (a read-only store still empty) is not probed.
    """
    try:
        probe = keys.lookup(keys.current().key_id)
    except ConfigError:
        return
    if probe is not None and not isinstance(probe, DataKey):
        raise ConfigError(
            f"{type(keys).__name__}.lookup() returned {type(probe).__name__}; "
            "a key source must return the DataKey for an id (DataKey.cipher derives the per-header ciphers)"
        )


def _rejection(data: bytes) -> CodecIntegrityError:
    """Why ``data`` failed to decrypt: too short to hold a nonce and tag, or not authentic."""
    if len(data) < CIPHERTEXT_OFFSET + TAG_SIZE:
        return CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than nonce and tag")
    return CodecIntegrityError(
        IntegrityReason.AUTHENTICATION_FAILED, "tampered, wrong key, or stored under another key"
    )
