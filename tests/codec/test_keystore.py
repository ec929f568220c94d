"""The key store on disk and the rotating keyring on top of it."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from qcache.codec import (
    Codec,
    CodecIntegrityError,
    IntegrityReason,
    KeyStore,
    RotatingKeyring,
    StoredKey,
    generate_key,
)
from qcache.errors import ConfigError

from .support import ManualClock

DAY = 86_400.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_keys_are_private_and_wrapped(tmp_path: Path, clock: ManualClock) -> None:
    master = generate_key()
    store = KeyStore(tmp_path / "keys", master_key=master)
    keys = store.ensure_current(now=clock(), rotation_interval=DAY)
    assert len(keys) == 1
    assert mode(store.path) == 0o600 and mode(store.directory) == 0o700
    text = store.path.read_text()
    assert keys[0].key.hex() not in text and "wrapped_key" in text
    assert KeyStore(tmp_path / "keys", master_key=master).load() == keys
    # Another master key has a store of its own (a rotation of CACHE_ENCRYPTION_KEY starts afresh) ...
    other = KeyStore(tmp_path / "keys", master_key=generate_key())
    assert other.load() == [] and other.path != store.path
    # ... but this key's own file, altered, is not silently replaced.
    document = json.loads(text)
    sealed = bytearray(base64.b64decode(document["keys"][0]["wrapped_key"]))
    sealed[-1] ^= 1
    document["keys"][0]["wrapped_key"] = base64.b64encode(bytes(sealed)).decode()
    store.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="tampered"):
        KeyStore(tmp_path / "keys", master_key=master).load()


def test_unwrapped_store_and_rotation_schedule(tmp_path: Path, clock: ManualClock) -> None:
    store = KeyStore(tmp_path)
    first = store.ensure_current(now=clock(), rotation_interval=DAY)
    assert store.ensure_current(now=clock() + DAY - 1, rotation_interval=DAY) == first
    second = store.ensure_current(now=clock() + DAY, rotation_interval=DAY)
    assert len(second) == 2 and second[1] == first[0] and second[0].created_at == clock() + DAY
    assert store.ensure_current(now=clock() + 100 * DAY, rotation_interval=0) == second  # 0: never


def test_retired_keys_are_dropped_after_the_retention(tmp_path: Path, clock: ManualClock) -> None:
    store = KeyStore(tmp_path)
    store.ensure_current(now=0, rotation_interval=DAY, retention=2 * DAY)
    store.ensure_current(now=DAY, rotation_interval=DAY, retention=2 * DAY)
    assert len(store.ensure_current(now=2 * DAY, rotation_interval=DAY, retention=2 * DAY)) == 3
    # The first key was retired at DAY; at 3 * DAY + 1 it is past its retention.
    kept = store.ensure_current(now=3 * DAY + 1, rotation_interval=DAY, retention=2 * DAY)
    assert [k.created_at for k in kept] == [3 * DAY + 1, 2 * DAY, DAY]


def test_loose_permissions_and_corruption_are_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure_current(now=0, rotation_interval=DAY)
    os.chmod(store.path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.load()
    os.chmod(store.path, 0o600)
    document = json.loads(store.path.read_text())
    document["keys"][0]["id"] = "00000000"
    store.path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="wrong or duplicate id"):
        store.load()
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        store.load()


def test_rotating_keyring_rotates_on_the_clock_and_old_entries_stay_readable(
    tmp_path: Path, clock: ManualClock
) -> None:
    ring = RotatingKeyring(KeyStore(tmp_path), rotation_interval=DAY, clock=clock)
    codec = Codec(keys=ring)
    old = codec.encode("v1", key="k", encrypt=True)
    clock.advance(DAY)
    new = codec.encode("v2", key="k", encrypt=True)
    assert old[4:8] != new[4:8] and ring.current().key_id == new[4:8]
    assert codec.decode(old, key="k") == "v1" and codec.decode(new, key="k") == "v2"
    assert len(ring.key_ids()) == 2


def test_a_rotation_by_another_process_is_adopted(tmp_path: Path, clock: ManualClock) -> None:
    a = RotatingKeyring(KeyStore(tmp_path), rotation_interval=DAY, clock=clock, reload_interval=1.0)
    b = RotatingKeyring(KeyStore(tmp_path), rotation_interval=DAY, clock=clock, reload_interval=1.0)
    assert a.current().key_id == b.current().key_id
    clock.advance(DAY)
    rotated = a.current().key_id  # a rotates first
    written = Codec(keys=a).encode("fresh", key="k", encrypt=True)
    clock.advance(1.0)
    assert Codec(keys=b).decode(written, key="k") == "fresh"  # b re-reads the store for the unknown id
    assert b.current().key_id == rotated  # and at its own deadline adopts a's key instead of adding one
    assert len(KeyStore(tmp_path).load()) == 2


def test_a_key_the_keyring_drops_stops_decrypting_even_after_use(tmp_path: Path, clock: ManualClock) -> None:
    ring = RotatingKeyring(KeyStore(tmp_path), rotation_interval=DAY, clock=clock, retention=DAY)
    codec = Codec(keys=ring)
    old = codec.encode("v1", key="k", encrypt=True)
    assert codec.decode(old, key="k") == "v1"  # the stage now remembers the cipher for this header
    clock.advance(DAY)
    codec.encode("v2", key="k", encrypt=True)  # rotates; the old key stays for the retention period
    assert codec.decode(old, key="k") == "v1"
    clock.advance(2 * DAY)
    codec.encode("v3", key="k", encrypt=True)  # rotates again; the old key is past its retention
    assert old[4:8].hex() not in ring.key_ids()
    with pytest.raises(CodecIntegrityError) as info:
        codec.decode(old, key="k")
    assert info.value.reason is IntegrityReason.UNKNOWN_KEY_ID


class CountingStore(KeyStore):
    """A key store that counts how often it is read."""

    loads = 0

    def load(self) -> list[StoredKey]:
        self.loads += 1
        return super().load()


def test_unknown_ids_re_read_the_store_at_most_once_per_interval(tmp_path: Path, clock: ManualClock) -> None:
    store = CountingStore(tmp_path)
    ring = RotatingKeyring(store, rotation_interval=DAY, clock=clock, reload_interval=5.0)
    codec = Codec(keys=ring)
    foreign = Codec(keys=RotatingKeyring(KeyStore(tmp_path / "other"), rotation_interval=DAY, clock=clock))
    data = foreign.encode("x", key="k", encrypt=True)
    clock.advance(5.0)
    reads_before = store.loads
    for _ in range(3):
        with pytest.raises(CodecIntegrityError) as info:
            codec.decode(data, key="k")
        assert info.value.reason is IntegrityReason.UNKNOWN_KEY_ID
    assert store.loads == reads_before + 1
    clock.advance(5.0)
    with pytest.raises(CodecIntegrityError):
        codec.decode(data, key="k")
    assert store.loads == reads_before + 2


def test_failed_rotation_keeps_the_current_key(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    ring = RotatingKeyring(KeyStore(tmp_path), rotation_interval=DAY, clock=clock)
    before = ring.current().key_id
    KeyStore(tmp_path).path.chmod(0o644)
    clock.advance(DAY)
    with caplog.at_level("WARNING", logger="qcache.codec"):
        assert ring.current().key_id == before
    assert "rotation failed" in caplog.text


def test_read_only_keyring_never_creates_the_store(tmp_path: Path, clock: ManualClock) -> None:
    master = generate_key()
    ring = RotatingKeyring(
        KeyStore(tmp_path / "store", master_key=master),
        rotation_interval=DAY,
        clock=clock,
        read_only=True,
        extra_keys=[master],
    )
    assert not (tmp_path / "store").exists()
    with pytest.raises(ConfigError, match="read-only"):
        ring.current()
    assert len(ring.key_ids()) == 1


def _rotate_in_child(directory: str, now: float, barrier: Any, queue: Any) -> None:
    barrier.wait(timeout=10)
    keys = KeyStore(directory).ensure_current(now=now, rotation_interval=DAY)
    queue.put(keys[0].key_id.hex())


def test_concurrent_processes_add_a_single_key(tmp_path: Path) -> None:
    KeyStore(tmp_path).ensure_current(now=0, rotation_interval=DAY)
    context = multiprocessing.get_context("fork")
    queue, barrier = context.Queue(), context.Barrier(4)
    children = [
        context.Process(target=_rotate_in_child, args=(str(tmp_path), DAY, barrier, queue)) for _ in range(4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert len({queue.get(timeout=5) for _ in children}) == 1
    assert len(KeyStore(tmp_path).load()) == 2


def _touch_store(directory: str, go: Any) -> None:
    go.wait(timeout=10)
    KeyStore(directory).ensure_current(now=DAY, rotation_interval=DAY)


def test_rotation_waits_for_the_cross_process_lock(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure_current(now=0, rotation_interval=DAY)
    context = multiprocessing.get_context("fork")
    go = context.Event()
    # Fork before taking the lock: a child forked while it is held would inherit the locked descriptor.
    child = context.Process(target=_touch_store, args=(str(tmp_path), go))
    child.start()
    with store._locked():
        go.set()
        child.join(timeout=0.5)
        assert child.is_alive(), "the child rotated while another process held the lock"
        assert len(store.load()) == 1
    child.join(timeout=30)
    assert child.exitcode == 0
    assert len(store.load()) == 2


def test_an_unwritable_store_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot update the key store"):
        KeyStore(blocker / "keys").ensure_current(now=0, rotation_interval=DAY)
