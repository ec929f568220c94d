"""Generated encryption keys on disk, rotated on a clock, shared between processes.

The store is a directory (``ENCRYPTION_KEY_STORE_PATH``, created with mode
700) holding ``keys.json`` (mode 600, replaced atomically on every change)
and ``keys.lock``. Processes serialise rotation through an exclusive
``flock`` on the lock file, so two processes reaching the rotation deadline
together still add a single key; processes on several hosts agree on keys
only if they share the directory. A key file readable by group or others is
refused rather than used.

Given a ``master_key`` (``CACHE_ENCRYPTION_KEY``), every stored key is
wrapped with AES-256-GCM under it, so the file alone reveals no key, and the
file is named after a fingerprint of the master key (``keys-<16 hex>.json``).
Rotating ``CACHE_ENCRYPTION_KEY`` therefore starts a new store beside the old
one instead of stopping the service: a warning says so once, and values
encrypted under the old store's keys read as misses (cached data can be
thrown away; putting the old key back makes them readable again). A
``keys.json`` written before the files were named so is still used while the
master key opens it. A file named after this master key that it cannot open
has been tampered with: that stays a ConfigError.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qcache.codec.keys import KEY_SIZE, generate_key, key_id_for
from qcache.errors import ConfigError

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]  # no fcntl on this platform: the store is not locked

_FORMAT = "qcache-keystore"
_VERSION = 1
_PRIVATE = 0o600
KEYS_FILE = "keys.json"
LOCK_FILE = "keys.lock"
_WRAP_LABEL = b"qcache/keystore/v1\x00"
_WRAP_NONCE = 12
_NAME_LABEL = b"qcache/keystore/file-name"

logger = logging.getLogger("qcache")
#: Directories whose "new key store" warning this process has given (once each).
_warned: set[Path] = set()


class ForeignKeyStore(ConfigError):
    """A key store written under another master key (or none): not this key's store."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One key from the store; the key bytes are kept out of ``repr``."""

    key_id: bytes
    key: bytes = field(repr=False)
    created_at: float


class KeyStore:
    """The key store in ``directory`` and the operations on it."""

    def __init__(self, directory: str | os.PathLike[str], *, master_key: bytes | None = None) -> None:
        if master_key is not None and len(master_key) != KEY_SIZE:
            raise ConfigError(f"the key store master key must be {KEY_SIZE} bytes")
        self.directory = Path(directory).absolute()  # immune to a later chdir
        self._lock_path = self.directory / LOCK_FILE
        self._wrapper = AESGCM(master_key) if master_key is not None else None
        self._own = self.directory / (KEYS_FILE if master_key is None else f"keys-{_fingerprint(master_key)}.json")
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The file of this master key's store (chosen on first use; see the module docstring)."""
        if self._path is None:
            self._path = self._choose()
        return self._path

    def _choose(self) -> Path:
        """This key's own file; the older ``keys.json`` while this key opens it."""
        own = self._own
        legacy = self.directory / KEYS_FILE
        if own == legacy or own.exists() or not legacy.exists():
            if not own.exists():
                self._warn_if_others(own)
            return own
        try:
            self._read(legacy)
        except ForeignKeyStore:
            self._warn_if_others(own)
            return own
        return legacy

    def _warn_if_others(self, own: Path) -> None:
        """Other stores here mean CACHE_ENCRYPTION_KEY changed: say once that a new store starts."""
        try:
            others = [p for p in self.directory.glob("keys*.json") if p != own]
        except OSError:
            return
        if others and self.directory not in _warned:
            _warned.add(self.directory)
            logger.warning(
                "qcache: CACHE_ENCRYPTION_KEY does not open the key store in %s (it was written under "
                "another key): starting a new key store there; values encrypted before read as misses",
                self.directory,
            )

    def load(self) -> list[StoredKey]:
        """Keys in the store, newest first; empty when the file does not exist yet.

        Raises ConfigError when the file is corrupt or readable by others.
        """
        return self._read(self.path)

    def _read(self, path: Path) -> list[StoredKey]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot open the key store {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise ConfigError(
                    f"the key store {path} is accessible by group or others "
                    f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
                )
            raw = handle.read()
        return _parse(raw, path, self._wrapper)

    def ensure_current(
        self, *, now: float, rotation_interval: float, retention: float | None = None
    ) -> list[StoredKey]:
        """Add a key if there is none or the newest is ``rotation_interval`` old; drop expired ones.

        ``rotation_interval <= 0`` never rotates. A key stops encrypting when
        its successor appears and is dropped ``retention`` seconds later
        (never when ``retention`` is None): it should exceed the longest TTL,
        so entries stay readable until they expire. Returns the keys, newest
        first. Raises ConfigError when the store cannot be read or written.
        """
        try:
            return self._ensure_current(now, rotation_interval, retention)
        except OSError as exc:
            raise ConfigError(f"cannot update the key store in {self.directory}: {exc.strerror or exc}") from exc

    def _ensure_current(self, now: float, rotation_interval: float, retention: float | None) -> list[StoredKey]:
        with self._locked():
            keys = self.load()
            changed = False
            if not keys or (rotation_interval > 0 and now >= keys[0].created_at + rotation_interval):
                keys.insert(0, _new_key(now, {k.key_id for k in keys}))
                changed = True
            if retention is not None:
                # keys[i] was retired when keys[i - 1] (its successor) was created.
                kept = keys[:1] + [
                    k for successor, k in zip(keys, keys[1:]) if now - successor.created_at <= retention
                ]
                changed = changed or len(kept) != len(keys)
                keys = kept
            if changed:
                self._write(keys)
            return keys

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive cross-process lock for the duration of the block."""
        if fcntl is None:
            raise ConfigError("ENCRYPTION_KEY_STORE_PATH needs a POSIX system (file locks)")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, _PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, keys: list[StoredKey]) -> None:
        """Replace the store atomically with a private file holding ``keys``."""
        document = {
            "format": _FORMAT,
            "version": _VERSION,
            "wrapped": self._wrapper is not None,
            "keys": [_entry(k, self._wrapper) for k in keys],
        }
        payload = json.dumps(document, indent=1).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), _PRIVATE)  # the umask could only narrow it; be explicit
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)


def _new_key(now: float, taken: set[bytes]) -> StoredKey:
    """A random key whose id does not collide with ``taken`` (a 1 in 2**32 event, but cheap to rule out)."""
    while True:
        key = generate_key()
        key_id = key_id_for(key)
        if key_id not in taken:
            return StoredKey(key_id, key, now)


def _entry(key: StoredKey, wrapper: AESGCM | None) -> dict[str, Any]:
    """The JSON object for one key, wrapped under the master key when there is one."""
    entry: dict[str, Any] = {"id": key.key_id.hex(), "created_at": key.created_at}
    if wrapper is None:
        entry["key"] = base64.b64encode(key.key).decode("ascii")
    else:
        nonce = os.urandom(_WRAP_NONCE)
        sealed = nonce + wrapper.encrypt(nonce, key.key, _WRAP_LABEL + key.key_id)
        entry["wrapped_key"] = base64.b64encode(sealed).decode("ascii")
    return entry


def _parse(raw: bytes, path: Path, wrapper: AESGCM | None) -> list[StoredKey]:
    """Validate the store document; any deviation is a ConfigError, never a partial keyring."""
    problem = f"the key store {path} is corrupt"
    try:
        document: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{problem}: not JSON") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ConfigError(f"{problem}: not a qcache key store")
    if document.get("version") != _VERSION:
        raise ConfigError(f"{problem}: unsupported version {document.get('version')!r}")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ConfigError(f"{problem}: 'keys' is not a list")
    wrapped = document.get("wrapped")
    if wrapped is not (wrapper is not None):
        state = "wrapped under a master key" if wrapped else "not wrapped"
        raise ForeignKeyStore(
            f"the key store {path} is {state}, but CACHE_ENCRYPTION_KEY is "
            f"{'set' if wrapper is not None else 'not set'}; move the directory away to start afresh"
        )
    keys: list[StoredKey] = []
    seen: set[bytes] = set()
    for index, entry in enumerate(entries):
        where = f"{problem}: key #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not an object")
        created_at, id_text = entry.get("created_at"), entry.get("id")
        key_text = entry.get("key" if wrapper is None else "wrapped_key")
        if not isinstance(created_at, (int, float)) or isinstance(created_at, bool):
            raise ConfigError(f"{where} has no numeric created_at")
        if not isinstance(key_text, str) or not isinstance(id_text, str):
            raise ConfigError(f"{where} lacks its key or id")
        try:
            key = base64.b64decode(key_text.encode("ascii"), validate=True)
            expected_id = bytes.fromhex(id_text)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise ConfigError(f"{where} is not base64 / hex") from exc
        if wrapper is not None:
            try:
                key = wrapper.decrypt(key[:_WRAP_NONCE], key[_WRAP_NONCE:], _WRAP_LABEL + expected_id)
            except (InvalidTag, ValueError) as exc:
                raise ForeignKeyStore(
                    f"the key store {path} was written under another CACHE_ENCRYPTION_KEY "
                    "(or was tampered with); restore that key or move the directory away"
                ) from exc
        if len(key) != KEY_SIZE:
            raise ConfigError(f"{where} is not {KEY_SIZE} bytes")
        key_id = key_id_for(key)
        if key_id != expected_id or key_id in seen:
            raise ConfigError(f"{where} has a wrong or duplicate id")
        seen.add(key_id)
        keys.append(StoredKey(key_id, key, float(created_at)))
    keys.sort(key=lambda k: k.created_at, reverse=True)
    return keys


def _fingerprint(master_key: bytes) -> str:
    """16 hex digits naming a master key's store file; reveals nothing about the key."""
    return hmac.new(master_key, _NAME_LABEL, hashlib.sha256).hexdigest()[:16]


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some filesystems do not support it, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
