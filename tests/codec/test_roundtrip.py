"""Every supported value survives every combination of stages, exactly."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcache.codec import Codec, Keyring, SignedPickleSerializer, available_compressors, parse_header

from .support import assert_identical, python_values, supported_values

SERIALIZERS = ("msgpack", "signed-pickle")
COMBINATIONS = list(itertools.product(SERIALIZERS, available_compressors(), (False, True)))
IDS = [f"{s}-{c}-{'aesgcm' if e else 'plain'}" for s, c, e in COMBINATIONS]
PICKLE_SECRET = b"s" * 32


@pytest.fixture(scope="module")
def codec_matrix(keyring: Keyring) -> dict[tuple[str, str], Codec]:
    """One codec per (serializer, compressor), threshold 0 so every value tries compression."""
    out: dict[tuple[str, str], Codec] = {}
    for serializer, compressor in itertools.product(SERIALIZERS, available_compressors()):
        primary = SignedPickleSerializer(PICKLE_SECRET) if serializer == "signed-pickle" else None
        out[serializer, compressor] = Codec(
            compressor=compressor, compression_threshold=0, keys=keyring, serializer=primary
        )
    return out


@pytest.mark.parametrize(("serializer", "compressor", "encrypt"), COMBINATIONS, ids=IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_value_round_trips_through_every_stage_combination(
    codec_matrix: dict[tuple[str, str], Codec], serializer: str, compressor: str, encrypt: bool, data: st.DataObject
) -> None:
    value = data.draw(supported_values if serializer == "msgpack" else python_values, label="value")
    codec = codec_matrix[serializer, compressor]
    stored = codec.encode(value, key="ns:search:q", compress=True, encrypt=encrypt)
    header = parse_header(stored)
    assert header.encrypted is encrypt
    assert header.serializer_id == (2 if serializer == "signed-pickle" else 1)
    assert_identical(value, codec.decode(stored, key="ns:search:q"))


def test_numpy_arrays_come_back_bit_exact_with_dtype_byte_order_and_shape(codecs: dict[str, Codec]) -> None:
    nan_payloads = np.array([0x7FF8000000000001, 0xFFF0000000000ABC, 0x8000000000000000], dtype="<u8").view("<f8")
    arrays = [
        np.random.default_rng(7).standard_normal(1536).astype(np.float32),
        nan_payloads,
        np.arange(24, dtype=">i4").reshape(2, 3, 4),
        np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        np.arange(10)[::3],  # a strided view
        np.array(["2024-01-02T03:04:05.123456789"], dtype="datetime64[ns]"),
        np.array([1 + 2j], dtype=">c16"),
        np.zeros((0, 5), dtype=np.float16),
        np.array(3.5, dtype=np.float32),
    ]
    for codec in codecs.values():
        for arr in arrays:
            for encrypt in (False, True):
                back = codec.decode(codec.encode(arr, key="k", compress=True, encrypt=encrypt), key="k")
                assert back.dtype.str == arr.dtype.str and back.shape == arr.shape
                assert back.tobytes() == np.ascontiguousarray(arr).tobytes()
                assert not back.flags.writeable and back.flags.c_contiguous


def test_containers_keep_their_exact_types(codecs: dict[str, Codec]) -> None:
    value = {
        (1, "a"): [(), (1,), {2, 3}, frozenset({4})],
        "when": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "day": dt.date(1999, 12, 31),
        "span": dt.timedelta(days=-2, seconds=5, microseconds=7),
        "big": [2**64, -(2**63) - 1, 10**40],
        7: b"\x00\xff",
        None: True,
    }
    codec = codecs["lz4"]
    assert_identical(value, codec.decode(codec.encode(value, key="k"), key="k"))
