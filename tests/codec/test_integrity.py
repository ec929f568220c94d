"""Bad stored bytes are an IntegrityError with a reason, never another exception, never a wrong value."""

from __future__ import annotations

import itertools
import random
import struct
from typing import Any
from zlib import crc32

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcache.codec import Codec, CodecIntegrityError, DataKey, IntegrityReason, Keyring, generate_key
from qcache.codec.header import FORMAT_VERSION, MAGIC
from qcache.errors import SerializationError

from .support import STAGE_COMBINATIONS, stage_id

VALUE = {"query": "vector index", "hits": [{"path": f"src/{i}.py", "score": i / 7} for i in range(40)]}
KEY = "qc:search:acme:q1"


def reason_of(codec: Codec, data: Any, key: str = KEY, **kwargs: Any) -> IntegrityReason:
    """Decode ``data`` expecting a rejection; the reason it was rejected."""
    with pytest.raises(CodecIntegrityError) as info:
        codec.decode(data, key=key, **kwargs)
    return info.value.reason


class AnswersToEveryId:
    """A key source that hands out its one (wrong) key for any key id."""

    def __init__(self) -> None:
        self._key = DataKey.from_bytes(generate_key())

    def current(self) -> DataKey:
        return self._key

    def lookup(self, key_id: bytes) -> DataKey | None:
        return self._key

    def key_ids(self) -> list[str]:
        return [self._key.key_id.hex()]

    def subscribe(self, listener: object) -> None:
        pass  # its answer never changes


@pytest.fixture(params=STAGE_COMBINATIONS, ids=[stage_id(c) for c in STAGE_COMBINATIONS])
def stored(request: pytest.FixtureRequest, codecs: dict[str, Codec]) -> tuple[Codec, bytes]:
    """A codec and VALUE encoded by it, over every stage combination."""
    algorithm, encrypt = request.param
    codec = codecs[algorithm]
    return codec, codec.encode(VALUE, key=KEY, compress=True, encrypt=encrypt)


def test_intact_value_decodes(stored: tuple[Codec, bytes]) -> None:
    codec, data = stored
    assert codec.decode(data, key=KEY) == VALUE


def test_every_single_byte_flip_is_detected(stored: tuple[Codec, bytes]) -> None:
    codec, data = stored
    for position in range(len(data)):
        for mask in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[position] ^= mask
            reason_of(codec, bytes(mutated))


def test_every_truncation_is_detected(stored: tuple[Codec, bytes]) -> None:
    codec, data = stored
    for length in range(len(data)):
        reason_of(codec, data[:length])
    reason_of(codec, data + b"\x00")


def test_value_copied_to_another_key_is_rejected(stored: tuple[Codec, bytes]) -> None:
    codec, data = stored
    reason = reason_of(codec, data, key=KEY + "x")
    assert reason in (IntegrityReason.AUTHENTICATION_FAILED, IntegrityReason.CHECKSUM_MISMATCH)


def test_foreign_values_are_recognised(codecs: dict[str, Codec]) -> None:
    codec = codecs["lz4"]
    for foreign in (b"", b"{}", b'{"json": true}', b"\x80\x05K\x01.", b"\x93\x01\x02\x03", "text", 42, None):
        assert reason_of(codec, foreign) in (
            IntegrityReason.FOREIGN,
            IntegrityReason.TRUNCATED,
            IntegrityReason.NOT_BYTES,
        )
    assert reason_of(codec, b"plain old string value") is IntegrityReason.FOREIGN


def test_header_fields_are_validated(codecs: dict[str, Codec]) -> None:
    codec = codecs["lz4"]
    good = codec.encode(VALUE, key=KEY)
    def forged(header: bytes) -> bytes:  # valid checksum, so only the header is wrong
        body = good[4:-4]
        return header + body + struct.pack("<I", crc32(header + body, crc32(KEY.encode())))

    assert codec.decode(forged(good[:4]), key=KEY) == VALUE  # the forging helper itself is right
    v = FORMAT_VERSION
    assert reason_of(codec, forged(bytes((MAGIC, v + 1, 1, 0)))) is IntegrityReason.UNSUPPORTED_VERSION
    assert reason_of(codec, forged(bytes((MAGIC, 1, 1, 0)))) is IntegrityReason.UNSUPPORTED_VERSION  # earlier format
    assert reason_of(codec, forged(bytes((MAGIC, v, 9, 0)))) is IntegrityReason.UNSUPPORTED_FORMAT
    assert reason_of(codec, forged(bytes((MAGIC, v, 1, 0x10)))) is IntegrityReason.UNSUPPORTED_FORMAT
    assert reason_of(codec, forged(bytes((MAGIC, v, 1, 0x05)))) is IntegrityReason.UNSUPPORTED_FORMAT
    assert reason_of(codec, forged(bytes((MAGIC, v, 2, 0)))) is IntegrityReason.PICKLE_DISABLED
    # A header claiming lz4 over a payload that is not lz4.
    assert reason_of(codec, forged(bytes((MAGIC, v, 1, 1)))) in (
        IntegrityReason.DECOMPRESSION_FAILED,
        IntegrityReason.TOO_LARGE,
    )


def test_wrong_key_and_unknown_key_id(keyring: Keyring, key_material: bytes) -> None:
    writer = Codec(keys=keyring)
    data = writer.encode(VALUE, key=KEY, encrypt=True)
    assert reason_of(Codec(keys=Keyring([generate_key()])), data) is IntegrityReason.UNKNOWN_KEY_ID
    assert reason_of(Codec(), data) is IntegrityReason.UNKNOWN_KEY_ID
    # A different key answering to the writer's key id: GCM authentication is what catches it.
    assert reason_of(Codec(keys=AnswersToEveryId()), data) is IntegrityReason.AUTHENTICATION_FAILED
    # Old keys stay readable while a newer key encrypts.
    rotated = Codec(keys=Keyring([generate_key(), key_material]))
    assert rotated.decode(data, key=KEY) == VALUE
    assert rotated.encode(VALUE, key=KEY, encrypt=True)[4:8] != data[4:8]


def test_plaintext_can_be_required(keyring: Keyring) -> None:
    codec = Codec(keys=keyring)
    plain = codec.encode(VALUE, key=KEY)
    assert codec.decode(plain, key=KEY) == VALUE
    assert reason_of(codec, plain, require_encryption=True) is IntegrityReason.PLAINTEXT_REJECTED
    sealed = codec.encode(VALUE, key=KEY, encrypt=True)
    assert codec.decode(sealed, key=KEY, require_encryption=True) == VALUE


def test_forged_sizes_are_refused_before_allocating() -> None:
    codec = Codec(compressor="lz4", compression_threshold=0, max_value_bytes=4096)
    data = bytearray(codec.encode("x" * 3000, key=KEY, compress=True))
    assert data[3] == 1  # lz4
    body = b"\xff\xff\xff\x7f" + bytes(data[8:-4])  # the lz4 size prefix now claims 2 GiB
    header = bytes(data[:4])
    forged = header + body + struct.pack("<I", crc32(header + body, crc32(KEY.encode())))
    assert reason_of(codec, forged) is IntegrityReason.TOO_LARGE
    with pytest.raises(SerializationError, match="limit"):
        codec.encode("y" * 5000, key=KEY)


def test_integrity_errors_are_counted_by_reason(keyring: Keyring) -> None:
    codec = Codec(keys=keyring)
    data = codec.encode(VALUE, key=KEY, encrypt=True)
    reason_of(codec, b"junk")
    reason_of(codec, data, key="other")
    reason_of(codec, data, key="other")
    counts = codec.stats.snapshot().integrity_errors
    assert counts == {"foreign": 1, "authentication_failed": 2}


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_never_escape_as_another_exception(codecs: dict[str, Codec], data: bytes) -> None:
    for codec in codecs.values():
        reason_of(codec, data)
        reason_of(codec, bytes((MAGIC, FORMAT_VERSION)) + data)
        for flags in (0, 1, 2, 8, 9, 10):
            reason_of(codec, bytes((MAGIC, FORMAT_VERSION, 1, flags)) + data)
        if codec.keys is not None:  # a key id the codec holds, so the bytes reach decryption
            for flags in (8, 9, 10):
                reason_of(codec, bytes((MAGIC, FORMAT_VERSION, 1, flags)) + codec.keys.current().key_id + data)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    """Apply edits to ``data``; positions wrap around its length."""
    out = bytearray(data)
    for kind, position, arg in mutations:
        if not out:
            out.append(arg)
            continue
        index = position % len(out)
        if kind == "flip":
            out[index] ^= arg
        elif kind == "truncate":
            del out[index:]
        elif kind == "insert":
            out.insert(index, arg)
        else:
            del out[index]
    return bytes(out)


# The last one stays above LARGE_VALUE_BYTES once stored, so decryption takes open_large.
VALUES = [VALUE, "short", 12345, [1.5, None, b"\x00" * 64], {"k": "v" * 2000}, random.Random(7).randbytes(12_000)]
ALL = list(itertools.product(range(len(VALUES)), (False, True)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.sampled_from(ALL),
    algorithm=st.sampled_from(sorted({c for c, _ in STAGE_COMBINATIONS})),
    mutations=st.lists(mutation, min_size=1, max_size=4),
)
def test_mutated_values_are_rejected_never_misread(
    codecs: dict[str, Codec], choice: tuple[int, bool], algorithm: str, mutations: list[tuple[str, int, int]]
) -> None:
    index, encrypt = choice
    codec = codecs[algorithm]
    original = codec.encode(VALUES[index], key=KEY, compress=True, encrypt=encrypt)
    mutated = mutate(original, mutations)
    if mutated == original:
        assert codec.decode(mutated, key=KEY) == VALUES[index]
    else:
        reason_of(codec, mutated)


def test_decode_accepts_a_memoryview_window_into_a_larger_record(stored: tuple[Codec, bytes]) -> None:
    codec, data = stored
    record = b"RECORD-HEADER" + data + b"TRAILER"
    window = memoryview(record)[13 : 13 + len(data)]
    assert codec.decode(window, key=KEY) == VALUE
    assert codec.decode(bytearray(data), key=KEY) == VALUE
