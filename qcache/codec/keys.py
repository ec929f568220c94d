"""Encryption keys: parsing, deterministic key ids, per-header ciphers and the static keyring.

A key id is the first four bytes of SHA-256 over a domain-separation label
and the key, so every process holding the same key computes the same id
without coordinating, and the id reveals nothing useful about the key.

Values are never encrypted under a data key itself but under a subkey derived
from it (HKDF-SHA256) for the exact header bytes in front of the value. The
header is thereby authenticated without being part of the associated data,
which stays the cache key alone: a header edited to claim another serializer,
compression or key decrypts under another subkey and fails authentication.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from qcache.errors import ConfigError

KEY_SIZE = 32  # AES-256
KEY_ID_SIZE = 4
_KEY_ID_LABEL = b"qcache/key-id/v1\x00"
#: HKDF salt: separates qcache's subkeys from any other use of the same key material.
_SUBKEY_SALT = b"qcache/aes-gcm-subkey/v2\x00"


def key_id_for(key: bytes) -> bytes:
    """The 4-byte id written into the header of values encrypted under ``key``."""
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_SIZE]


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_SIZE)


def encode_key(key: bytes) -> str:
    """Standard base64 text of ``key``, as ``CACHE_ENCRYPTION_KEY`` expects."""
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, *, source: str = "CACHE_ENCRYPTION_KEY") -> bytes:
    """The 32 raw bytes encoded in ``text`` (standard or URL-safe base64).

    Raises :class:`~qcache.errors.ConfigError` naming ``source`` (never the
    key itself) when the text is not base64 or does not decode to 32 bytes.
    """
    compact = "".join(text.split())
    if not compact:
        raise ConfigError(f"{source} is empty; expected base64 of a {KEY_SIZE}-byte key")
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    padded = compact + "=" * (-len(compact) % 4)  # accept keys stored without their padding
    try:
        raw = base64.b64decode(padded.encode("ascii"), altchars=altchars, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ConfigError(f"{source} is not valid base64") from exc
    if len(raw) != KEY_SIZE:
        raise ConfigError(
            f"{source} must decode to {KEY_SIZE} bytes for AES-256, got {len(raw)}; "
            "generate one with: python -c \"import base64, os; print(base64.b64encode(os.urandom(32)).decode())\""
        )
    return raw


def _require_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ConfigError(f"an encryption key must be {KEY_SIZE} raw bytes")
    return key


@dataclass(frozen=True, slots=True)
class DataKey:
    """A key ready for use: its id and the HKDF pseudorandom key its ciphers derive from.

    The key bytes themselves are not kept, only the HKDF-Extract output
    (RFC 5869), from which :meth:`cipher` expands one subkey per header.
    """

    key_id: bytes
    _prk: bytes = field(repr=False, compare=False)
    created_at: float | None = None

    @classmethod
    def from_bytes(cls, key: bytes, created_at: float | None = None) -> DataKey:
        """Wrap raw key bytes."""
        key = _require_key(key)
        return cls(key_id_for(key), hmac.digest(_SUBKEY_SALT, key, "sha256"), created_at)

    def cipher(self, context: bytes) -> AESGCM:
        """The AES-256-GCM cipher for values whose stored bytes start with ``context``.

        ``context`` is the header plus this key's id; deriving costs a few
        microseconds, so callers remember the result per context.
        """
        return AESGCM(HKDFExpand(SHA256(), KEY_SIZE, context).derive(self._prk))


class KeyListener(Protocol):
    """Something that remembers ``lookup`` answers and must forget them when the keys change."""

    def keys_changed(self) -> None:
        """The set of keys that decrypt has changed."""
        ...


class KeySource(Protocol):
    """What the encryption stage needs from a keyring."""

    def current(self) -> DataKey:
        """The key new values are encrypted under."""
        ...

    def lookup(self, key_id: bytes) -> DataKey | None:
        """The key with id ``key_id``, or None when this process does not hold it."""
        ...

    def key_ids(self) -> list[str]:
        """Hex ids of every key that can decrypt, newest writer key first."""
        ...

    def subscribe(self, listener: KeyListener) -> None:
        """Call ``listener.keys_changed()`` after every change to the keys that decrypt.

        This is what lets the stage remember ciphers instead of asking on
        every read. Hold listeners weakly (a keyring outlives the codecs
        built on it); a source whose keys never change may ignore them.
        """
        ...


class Keyring:
    """A fixed set of keys: the first one encrypts, all of them decrypt.

    Passing old keys after the current one keeps entries written under them
    readable while they expire, which is how a key given through the
    environment is rotated by hand.
    """

    #: The key for a key id, or None: the dict's own ``get``, as the set never changes.
    lookup: Callable[[bytes], DataKey | None]

    def __init__(self, keys: Iterable[bytes]) -> None:
        entries = [DataKey.from_bytes(k) for k in keys]
        if not entries:
            raise ConfigError("a keyring needs at least one key")
        by_id: dict[bytes, DataKey] = {}
        for entry in entries:
            if entry.key_id in by_id:
                raise ConfigError(f"two keys share the id {entry.key_id.hex()} (the same key given twice?)")
            by_id[entry.key_id] = entry
        self._current = entries[0]
        self._by_id = by_id
        self._ids = [e.key_id.hex() for e in entries]
        self.lookup = by_id.get

    @classmethod
    def from_base64(cls, *texts: str) -> Keyring:
        """A keyring from base64 keys, e.g. ``CACHE_ENCRYPTION_KEY``; the first encrypts."""
        return cls(decode_key(t) for t in texts)

    def current(self) -> DataKey:
        """The key new values are encrypted under."""
        return self._current

    def key_ids(self) -> list[str]:
        """Hex ids, current first."""
        return list(self._ids)

    def subscribe(self, listener: KeyListener) -> None:
        """Nothing to report: the keys never change."""
