"""Namespace snapshots of the Redis tier: create, list, verify and restore, values kept as stored.

A backup is a folder written atomically (a hidden ``.partial`` folder renamed
into place once complete, so a crash leaves no half backup under the name):

- ``entries.msgpack``: one msgpack array per entry, ``[key, value, expires_at_ms]``,
  the key relative to ``<CACHE_KEY_PREFIX>:``, the value the exact bytes
  Redis held (an encrypted entry stays encrypted), ``expires_at_ms`` the
  wall-clock expiry in epoch milliseconds or nil for none;
- ``manifest.json``: what was backed up, the entry count and the SHA-256 of
  the data file.

Creation walks the namespace with ``SCAN`` (``TYPE string``), in batches read
through one pipeline of ``GET`` and ``PTTL`` each, so memory stays bounded
by the batch whatever the namespace holds. Nothing is ever pickled; nothing
uses ``KEYS`` or flushes a database.

Restore verifies the whole backup (checksum, count, every entry's shape)
before writing anything, skips entries that expired meanwhile, and sets the
others with their remaining TTL. It can write into another prefix or
project: keys in the hashed form are rebuilt from the caller's key that the
entry carries, and encrypted entries, bound to their original storage key by
authentication, are skipped and counted instead of being written where they
could never be read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import msgpack
import redis

from qcache.cache.keys import GLOBAL_NAMESPACE, HASHED_MARK, KeyBuilder, check_name
from qcache.cache.record import binding, parse_record
from qcache.codec import CodecIntegrityError
from qcache.codec.rebind import BoundToKeyError, rebind
from qcache.errors import QCacheError
from qcache.l2 import escape_glob

FORMAT = "qcache-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA = "entries.msgpack"
BATCH = 1000
_READ_CHUNK = 1 << 20


class BackupError(QCacheError):
    """A backup that cannot be written, read or trusted (the message says which and why)."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds."""

    format: str
    version: int
    created_at: str
    prefix: str
    project: str | None  # None: every project under the prefix
    entries: int
    data_bytes: int
    sha256: str
    skipped_expired: int = 0  # gone or expired between SCAN and GET

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupError(f"{folder} is not a backup: it has no {MANIFEST}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupError(f"{path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupError(f"{path} is not a {FORMAT} manifest")
        if data.get("version") != FORMAT_VERSION:
            raise BackupError(f"{path} is version {data.get('version')!r}; this release reads {FORMAT_VERSION}")
        try:
            manifest = cls(**data)
        except TypeError as exc:
            raise BackupError(f"{path} has missing or unknown fields: {exc}") from exc
        if not isinstance(manifest.entries, int) or not isinstance(manifest.sha256, str):
            raise BackupError(f"{path} has fields of the wrong type")
        return manifest


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    restored: int
    skipped_expired: int
    skipped_bound: int  # encrypted entries that cannot move to another prefix or project
    skipped_existing: int  # with overwrite=False, keys that were already there
    prefix: str
    project: str | None


def _check_project(project: str) -> str:
    """A project name, or ``_``: the namespace of keys written outside any project view."""
    return project if project == GLOBAL_NAMESPACE else check_name("project", project)


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


def _scan_pattern(prefix: str, project: str | None) -> str:
    base = f"{prefix}:{project}:" if project is not None else f"{prefix}:"
    return escape_glob(base) + "*"


def _batches(client: redis.Redis, pattern: str) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=BATCH, _type="string"):
        batch.append(key)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def create_backup(
    client: redis.Redis,
    path: Path,
    *,
    prefix: str,
    project: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Manifest:
    """Snapshot ``<prefix>:<project>:*`` (every project when ``project`` is None) into the folder ``path``."""
    check_name("key prefix", prefix)
    if project is not None:
        _check_project(project)
    if path.exists():
        raise BackupError(f"{path} already exists; a backup never overwrites anything")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a folder")
    partial = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir(mode=0o700)
    try:
        digest = hashlib.sha256()
        entries = skipped = size = 0
        strip = len(prefix) + 1
        packer = msgpack.Packer(use_bin_type=True)
        with open(partial / DATA, "wb") as out:
            for keys in _batches(client, _scan_pattern(prefix, project)):
                with client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.get(key)
                        pipe.pttl(key)
                    replies = pipe.execute()
                now = _now_ms(clock)
                for i, key in enumerate(keys):
                    value, pttl = replies[2 * i], replies[2 * i + 1]
                    if value is None or pttl in (-2, 0):  # deleted or expiring between SCAN and GET
                        skipped += 1
                        continue
                    expires_at = None if pttl == -1 else now + int(pttl)
                    chunk = packer.pack([bytes(key[strip:]), bytes(value), expires_at])
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    entries += 1
            out.flush()
            os.fsync(out.fileno())
        manifest = Manifest(
            format=FORMAT, version=FORMAT_VERSION,
            created_at=datetime.fromtimestamp(clock(), tz=UTC).isoformat(timespec="seconds"),
            prefix=prefix, project=project, entries=entries, data_bytes=size, sha256=digest.hexdigest(),
            skipped_expired=skipped,
        )
        (partial / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        os.replace(partial, path)  # the backup appears whole or not at all
        return manifest
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def list_backups(folder: Path) -> list[tuple[Path, Manifest | BackupError]]:
    """The backups directly under ``folder``, each with its manifest or why it cannot be read."""
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder")
    found: list[tuple[Path, Manifest | BackupError]] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST).exists():
            try:
                found.append((child, Manifest.read(child)))
            except BackupError as exc:
                found.append((child, exc))
    return found


def _entries(folder: Path, manifest: Manifest) -> Iterator[tuple[bytes, bytes, int | None]]:
    """Every entry of the data file, checked for shape; the checksum and count are checked at the end."""
    path = folder / DATA
    try:
        handle: BinaryIO = open(path, "rb")
    except OSError as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from exc
    digest = hashlib.sha256()
    count = 0
    unpacker = msgpack.Unpacker(raw=True, max_buffer_size=64 * _READ_CHUNK)
    with handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
            unpacker.feed(chunk)
            try:
                for item in unpacker:
                    if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], bytes)
                            or not isinstance(item[1], bytes)
                            or not (item[2] is None or (isinstance(item[2], int) and item[2] >= 0))):
                        raise BackupError(f"{path}: entry {count + 1} is not [key, value, expiry]")
                    count += 1
                    yield item[0], item[1], item[2]
            except (msgpack.UnpackException, ValueError) as exc:
                raise BackupError(f"{path}: entry {count + 1} is corrupt: {exc}") from exc
    if unpacker.tell() != path.stat().st_size:
        raise BackupError(f"{path} ends inside an entry: the file is truncated")
    if digest.hexdigest() != manifest.sha256:
        raise BackupError(f"{path} does not match the SHA-256 in its manifest: the backup is corrupt")
    if count != manifest.entries:
        raise BackupError(f"{path} holds {count} entries, its manifest says {manifest.entries}")


def verify_backup(folder: Path) -> Manifest:
    """Read the whole backup: manifest, every entry's shape, count and checksum; raise on any problem."""
    manifest = Manifest.read(folder)
    for _ in _entries(folder, manifest):
        pass
    return manifest


def _moved(
    relative: bytes, value: bytes, *, source: Manifest, prefix: str, project: str | None, max_key_length: int
) -> tuple[bytes, bytes] | None:
    """The key and value of an entry in its new place, or None when it cannot move (encrypted).

    Back in its own place an entry is written exactly as stored. Elsewhere the
    key is rebuilt (a hashed key from the caller's key the record carries) and
    an unencrypted value gets the checksum that binds it to the new key; the
    rest of its bytes is untouched.
    """
    namespace, sep, rest = relative.partition(b":")
    cache_type, sep2, key = rest.partition(b":")
    if not sep or not sep2:
        raise BackupError(f"entry key {relative!r} is not <project>:<type>:<key>")
    new_namespace = project if project is not None else namespace.decode()
    old_key = f"{source.prefix}:".encode() + relative
    if prefix == source.prefix and new_namespace.encode() == namespace:
        return old_key, value  # back where it was: every entry fits
    try:
        _, _, caller_key, payload = parse_record(value)
    except CodecIntegrityError:
        return f"{prefix}:{new_namespace}:".encode() + cache_type + b":" + key, value  # not ours: moved as is
    if key.startswith(HASHED_MARK.encode()) and caller_key is not None:
        new_key, _ = KeyBuilder(prefix, max_key_length).build(new_namespace, cache_type.decode(), caller_key)
    else:
        new_key = f"{prefix}:{new_namespace}:{cache_type.decode()}:{key.decode('utf-8', 'surrogatepass')}"
    try:
        header = value[: len(value) - len(payload)]
        rebound = rebind(
            bytes(payload), binding(header, old_key.decode("utf-8", "surrogatepass")), binding(header, new_key)
        )
    except BoundToKeyError:
        return None
    except CodecIntegrityError as exc:
        raise BackupError(f"entry {relative!r} is not intact: {exc}") from exc
    return new_key.encode("utf-8", "surrogatepass"), value[: len(value) - len(payload)] + rebound


def restore_backup(
    client: redis.Redis,
    folder: Path,
    *,
    prefix: str | None = None,
    project: str | None = None,
    overwrite: bool = True,
    max_key_length: int = 250,
    clock: Callable[[], float] = time.time,
) -> RestoreReport:
    """Verify the whole backup, then write it into ``prefix`` (default: its own) and optionally ``project``."""
    manifest = verify_backup(folder)  # nothing is written from a backup that does not verify
    target_prefix = check_name("key prefix", prefix) if prefix is not None else manifest.prefix
    if project is not None:
        _check_project(project)
    restored = expired = bound = existing = 0
    pending: list[tuple[bytes, bytes, int | None]] = []

    def write(batch: list[tuple[bytes, bytes, int | None]]) -> None:
        nonlocal restored, existing
        with client.pipeline(transaction=False) as pipe:
            for key, value, px in batch:
                pipe.set(key, value, px=px, nx=not overwrite)
            results = pipe.execute()
        written = sum(1 for result in results if result)
        restored += written
        existing += len(results) - written

    for relative, value, expires_at in _entries(folder, manifest):
        remaining: int | None = None
        if expires_at is not None:
            remaining = expires_at - _now_ms(clock)
            if remaining <= 0:
                expired += 1
                continue
        moved = _moved(relative, value, source=manifest, prefix=target_prefix, project=project,
                       max_key_length=max_key_length)
        if moved is None:
            bound += 1
            continue
        pending.append((moved[0], moved[1], remaining))
        if len(pending) == BATCH:
            write(pending)
            pending = []
    if pending:
        write(pending)
    return RestoreReport(restored, expired, bound, existing, target_prefix, project)
