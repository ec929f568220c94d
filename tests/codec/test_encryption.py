"""The AES-GCM stage: nonces and key binding."""

from __future__ import annotations

import multiprocessing
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qcache.codec import (
    AesGcmStage,
    Codec,
    CodecIntegrityError,
    DataKey,
    IntegrityReason,
    Keyring,
    KeyStore,
    NonceSource,
    RotatingKeyring,
    SignedPickleSerializer,
    key_id_for,
)
from qcache.codec.encryption import LARGE_VALUE_BYTES
from qcache.codec.header import build_base
from qcache.errors import ConfigError

from .support import ManualClock


def test_nonces_are_unique_across_refills_and_threads() -> None:
    source = NonceSource()
    seen: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [source() for _ in range(2000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8000 and all(len(n) == 12 for n in seen)
    assert len(set(seen)) == len(seen)


def _draw_in_child(source: NonceSource, queue: Any) -> None:
    queue.put(source())


def test_a_forked_child_does_not_reuse_the_parents_pooled_nonces() -> None:
    source = NonceSource()
    source()  # fill this thread's pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_draw_in_child, args=(source, queue))
    child.start()
    child_nonce = queue.get(timeout=30)
    child.join(timeout=30)
    assert child_nonce != source()  # without the fork hook both would pop the same pooled nonce


def test_same_value_encrypts_differently_each_time(keyring: Keyring) -> None:
    codec = Codec(keys=keyring)
    a, b = (codec.encode("same", key="k", encrypt=True) for _ in range(2))
    assert a != b and a[8:20] != b[8:20]
    assert b"same" not in a


def test_a_key_source_must_say_when_its_keys_change(keyring: Keyring) -> None:
    class NoSubscribe:
        current = keyring.current
        lookup = keyring.lookup
        key_ids = keyring.key_ids

    with pytest.raises(ConfigError, match="subscribe"):
        Codec(keys=NoSubscribe())  # type: ignore[arg-type]


def test_a_keyring_does_not_keep_its_codecs_alive(tmp_path: Path, clock: ManualClock) -> None:
    ring = RotatingKeyring(KeyStore(tmp_path), rotation_interval=86_400.0, clock=clock)
    stage = AesGcmStage(ring)
    alive = weakref.ref(stage)
    del stage
    assert alive() is None


@pytest.mark.parametrize("size", [100, LARGE_VALUE_BYTES, 5 * LARGE_VALUE_BYTES])
def test_open_and_open_large_agree_and_reject_the_same_bytes(keyring: Keyring, size: int) -> None:
    stage = AesGcmStage(keyring)
    payload = os.urandom(size)
    sealed = stage.seal(build_base(1, 0, True), payload, b"key")
    assert stage.open(sealed, b"key") == stage.open_large(sealed, b"key") == payload
    for open_ in (stage.open, stage.open_large):
        for bad, key in ((sealed[:-1] + bytes((sealed[-1] ^ 1,)), b"key"), (sealed, b"other")):
            with pytest.raises(CodecIntegrityError) as info:
                open_(bad, key)
            assert info.value.reason is IntegrityReason.AUTHENTICATION_FAILED
        with pytest.raises(CodecIntegrityError) as info:
            open_(sealed[:30], b"key")
        assert info.value.reason is IntegrityReason.TRUNCATED


def test_large_values_round_trip_and_stay_bound_to_their_key(keyring: Keyring) -> None:
    codec = Codec(compressor="none", keys=keyring)
    value = os.urandom(3 * LARGE_VALUE_BYTES)
    data = codec.encode(value, key="k", encrypt=True)
    assert len(data) >= LARGE_VALUE_BYTES
    assert codec.decode(data, key="k") == value
    assert codec.decode(memoryview(data), key="k") == value
    with pytest.raises(CodecIntegrityError) as info:
        codec.decode(data, key="k2")
    assert info.value.reason is IntegrityReason.AUTHENTICATION_FAILED


def test_stored_format_is_hkdf_subkey_per_header_with_the_cache_key_as_associated_data(key_material: bytes) -> None:
    """The documented construction, recomputed with cryptography's one-shot HKDF, not qcache's code."""
    codec = Codec(keys=Keyring([key_material]), compression_threshold=0)
    data = codec.encode("x" * 500, key="acme:search:q", compress=True, encrypt=True)
    prefix, nonce, ciphertext = data[:8], data[8:20], data[20:]
    subkey = HKDF(SHA256(), 32, salt=b"qcache/aes-gcm-subkey/v2\x00", info=prefix).derive(key_material)
    payload = AESGCM(subkey).decrypt(nonce, ciphertext, b"acme:search:q")
    assert codec.decode(data, key="acme:search:q") == "x" * 500
    assert len(payload) < 500  # compressed before it was encrypted, as the header says
    with pytest.raises(InvalidTag):  # the data key itself is never used directly
        AESGCM(key_material).decrypt(nonce, ciphertext, b"acme:search:q")


@pytest.mark.parametrize("edit", ["compression", "serializer", "key id"])
def test_an_edited_header_fails_authentication(key_material: bytes, edit: str) -> None:
    """Every header the codec could read otherwise: edited, the value is a miss, never misread."""
    other_key = os.urandom(32)
    codec = Codec(
        keys=Keyring([key_material, other_key]),
        compression_threshold=0,
        pickle=SignedPickleSerializer(b"s" * 32),
    )
    data = bytearray(codec.encode(["same text"] * 100, key="k", compress=True, encrypt=True))
    assert data[3] & 0x07 == 1  # lz4
    if edit == "compression":
        data[3] &= ~0x07  # claims "stored uncompressed"
    elif edit == "serializer":
        data[2] = SignedPickleSerializer.id
    else:
        data[4:8] = key_id_for(other_key)  # a key the reader holds, but not the one used
    with pytest.raises(CodecIntegrityError) as info:
        codec.decode(bytes(data), key="k")
    assert info.value.reason is IntegrityReason.AUTHENTICATION_FAILED


def test_the_stage_alone_reports_values_too_short_for_a_key_id_as_truncated(keyring: Keyring) -> None:
    stage = AesGcmStage(keyring)
    sealed = stage.seal(build_base(1, 0, True), b"payload", b"key")
    for length in (0, 5, 7):
        with pytest.raises(CodecIntegrityError) as info:
            stage.open(sealed[:length], b"key")
        assert info.value.reason is IntegrityReason.TRUNCATED


class SwitchesKeysSilently:
    """A key source that changes its writer key without telling its listeners."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self.keys = [DataKey.from_bytes(first), DataKey.from_bytes(second)]
        self.writer = 0

    def current(self) -> DataKey:
        return self.keys[self.writer]

    def lookup(self, key_id: bytes) -> DataKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def key_ids(self) -> list[str]:
        return [k.key_id.hex() for k in self.keys]

    def subscribe(self, listener: object) -> None:
        pass


def test_sealing_follows_the_current_key_even_unannounced() -> None:
    source = SwitchesKeysSilently(os.urandom(32), os.urandom(32))
    codec = Codec(keys=source)
    before = codec.encode("v", key="k", encrypt=True)
    source.writer = 1
    after = codec.encode("v", key="k", encrypt=True)
    assert before[4:8] == source.keys[0].key_id and after[4:8] == source.keys[1].key_id
    assert codec.decode(before, key="k") == codec.decode(after, key="k") == "v"


def test_a_key_source_returning_bare_ciphers_is_refused_when_the_codec_is_built(keyring: Keyring) -> None:
    class ReturnsCiphers:
        current = keyring.current
        key_ids = keyring.key_ids

        def lookup(self, key_id: bytes) -> object:
            return AESGCM(os.urandom(32))

        def subscribe(self, listener: object) -> None:
            pass

    with pytest.raises(ConfigError, match="must return the DataKey"):
        Codec(keys=ReturnsCiphers())  # type: ignore[arg-type]


def test_the_stage_checks_length_before_asking_the_keyring(keyring: Keyring) -> None:
    asked: list[bytes] = []

    class Counting:
        current = keyring.current
        key_ids = keyring.key_ids

        def lookup(self, key_id: bytes) -> DataKey | None:
            asked.append(key_id)
            return keyring.lookup(key_id)

        def subscribe(self, listener: object) -> None:
            pass

    stage = AesGcmStage(Counting())  # type: ignore[arg-type]
    asked.clear()
    with pytest.raises(CodecIntegrityError):
        stage.open(b"\xc1\x02\x01\x08\x00\x00", b"k")
    assert asked == []
