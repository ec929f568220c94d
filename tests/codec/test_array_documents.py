"""Top-level arrays: the layout remembered from one document never admits a different or damaged one."""

from __future__ import annotations

import numpy as np
import pytest

from qcache.codec import Codec, CodecIntegrityError
from qcache.codec.numpy_ext import decode_array_document, encode_array_document


def embedding(seed: int, dims: int = 1536) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


def test_each_buffer_kind_reads_the_same_array_read_only_every_time() -> None:
    vector = embedding(1)
    document = encode_array_document(vector)
    stored = b"\x00" * 27 + document
    for _ in range(2):  # the second read takes the remembered layout
        for buffer in (document, memoryview(stored)[27:], bytearray(document), memoryview(bytearray(document))):
            got = decode_array_document(buffer)
            assert got is not None and got.dtype == vector.dtype and got.shape == vector.shape
            assert np.array_equal(got, vector) and not got.flags.writeable
    for view in (lambda b: b, lambda b: memoryview(b).toreadonly()):  # a read-only view of it is still mutable
        mutable = bytearray(document)
        got = decode_array_document(view(mutable))
        mutable[-1] ^= 0xFF
        assert got is not None and np.array_equal(got, vector)  # a copy: the caller's buffer can change


def test_a_document_of_a_remembered_layout_but_another_length_is_not_read_as_one() -> None:
    document = encode_array_document(embedding(2))
    assert decode_array_document(document) is not None
    assert decode_array_document(document[:-4]) is None  # one float short: not a whole array record
    assert decode_array_document(document + b"\x00\x00\x00\x00") is None
    with pytest.raises(CodecIntegrityError):
        Codec().decode(Codec().encode(embedding(2), key="k")[:-4], key="k")


def test_other_shapes_and_dtypes_with_a_similar_head_come_back_as_written() -> None:
    for value in (embedding(3, 768), embedding(3, 1536).astype(np.float64), embedding(4).reshape(32, 48),
                  np.arange(10, dtype=">i4"), np.zeros(0, dtype=np.float32)):
        for _ in range(2):
            got = decode_array_document(encode_array_document(value))
            assert got is not None and got.dtype == value.dtype and got.shape == value.shape
            assert np.array_equal(got, value)
