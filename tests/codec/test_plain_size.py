"""The size a memory-only cache counts for a value: the plain stored size, found in one call.

``Codec.plain_size_of`` is what the memory-only ``set`` weighs every value
with; it must give exactly what ``plain_size`` gives (the length of the
uncompressed, unencrypted encoding) for every kind of value the codec takes,
and refuse what ``plain_size`` refuses, with the same error.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import numpy as np
import pytest

from qcache.codec import Codec, SignedPickleSerializer
from qcache.errors import SerializationError


class Opaque:
    """A type only the signed-pickle fallback can store."""

    def __init__(self, payload: str) -> None:
        self.payload = payload


VALUES: dict[str, Any] = {
    "dict": {"id": 42, "title": "a cached search result", "tags": ["a", "b", "c"], "score": 0.87},
    "list": list(range(300)),
    "str": "x" * 5000,
    "non-ascii str": "naïve café " * 50,
    "bytes": bytes(range(256)) * 4,
    "int": 2**70,
    "none": None,
    "float32 embedding": np.arange(1536, dtype=np.float32),
    "int64 matrix": np.arange(64, dtype=np.int64).reshape(8, 8),
    "nested": {"hits": [{"id": i, "vec": np.ones(4, dtype=np.float32), "at": datetime.date(2024, 1, i + 1)}
                        for i in range(5)], "meta": ("a", 1, {2, 3})},
}


@pytest.mark.parametrize("kind", list(VALUES))
def test_plain_size_of_is_the_plain_stored_size(kind: str) -> None:
    codec = Codec()
    value = VALUES[kind]
    stored = len(codec.encode(value, key="k", compress=False))
    assert codec.plain_size_of(value) == codec.plain_size(value) == stored


def test_values_only_pickle_takes_are_weighed_through_it() -> None:
    codec = Codec(pickle=SignedPickleSerializer(b"a test secret of 32 bytes or more!"))
    value = Opaque("payload")
    assert codec.plain_size_of(value) == codec.plain_size(value) == len(codec.encode(value, key="k"))


def test_what_cannot_be_stored_is_refused_with_the_same_error() -> None:
    codec = Codec(max_value_bytes=1000)
    for value in (Opaque("no pickle here"), b"x" * 2000):
        with pytest.raises(SerializationError) as fast:
            codec.plain_size_of(value)
        with pytest.raises(SerializationError) as full:
            codec.plain_size(value)
        assert str(fast.value) == str(full.value)


def test_a_codec_that_weighs_its_own_way_keeps_it() -> None:
    class Flat(Codec):
        def plain_size(self, value: Any) -> int:
            return 7

    assert Flat().plain_size_of({"a": 1}) == 7


def test_threads_weigh_with_packers_of_their_own() -> None:
    """The inlined weighing takes each thread's own packer: sizes stay exact when threads weigh at once."""
    codec = Codec()
    values = [VALUES["dict"], VALUES["list"], VALUES["nested"], VALUES["str"], {"k": list(range(50))}]
    expected = [codec.plain_size(value) for value in values]
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def weigh() -> None:
        barrier.wait(timeout=10)
        results.append([codec.plain_size_of(value) for _ in range(200) for value in values][-len(values):])

    threads = [threading.Thread(target=weigh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [expected] * 4


def test_a_value_the_packer_refuses_gets_the_serializers_error() -> None:
    codec = Codec()
    for value in ({"deep": _nested(5000)}, [Opaque("inside a list")]):
        with pytest.raises(SerializationError) as fast:
            codec.plain_size_of(value)
        with pytest.raises(SerializationError) as full:
            codec.plain_size(value)
        assert str(fast.value) == str(full.value)
    assert codec.plain_size_of(VALUES["dict"]) == codec.plain_size(VALUES["dict"])  # the packer still works


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value
