"""Compression: none, lz4 and zstd through the codec, per payload kind and size.

Each benchmark is one encode + decode round trip through :class:`qcache.codec.Codec`
(msgpack, then the compressor, behind the versioned header), because a
cached value pays both. ``extra_info`` carries what the choice trades speed
for: serialized and stored bytes and the compression ratio. The raw
``lz4.block`` round trip on the same serialized bytes sits in each group as
the baseline the codec's lz4 stage is held to.
"""

from __future__ import annotations

from typing import Any

import lz4.block
import numpy as np
import pytest
from bench_support import KINDS, SIZES, payload

from qcache.codec import Codec, MsgpackSerializer, available_compressors

ALGORITHMS = ["none", "lz4", "zstd"]
KEY = "qcache:_:search:bench-compression"
CASES = [pytest.param(kind, size, id=f"{kind}-{size}") for kind in KINDS for size in SIZES]


def group(kind: str, size: str) -> str:
    return f"compression: {kind} ~{size} (encode + decode)"


def same(a: Any, b: Any) -> bool:
    """Equality that also works for numpy arrays."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())
    return bool(a == b)


@pytest.mark.parametrize(("kind", "size"), CASES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_codec_round_trip(benchmark: Any, algorithm: str, kind: str, size: str) -> None:
    if algorithm not in available_compressors():
        pytest.skip(f"{algorithm} is not installed (pip install 'qcache[zstd]')")
    value = payload(kind, size)
    codec = Codec(compressor=algorithm, compression_threshold=0)
    compress = algorithm != "none"
    benchmark.group = group(kind, size)

    def round_trip() -> Any:
        return codec.decode(codec.encode(value, key=KEY, compress=compress), key=KEY)

    back = benchmark(round_trip)
    assert same(back, value)
    serialized = len(MsgpackSerializer().dumps(value))
    stored = len(codec.encode(value, key=KEY, compress=compress))
    benchmark.extra_info.update(
        algorithm=algorithm, kind=kind, size=size, serialized_bytes=serialized,
        stored_bytes=stored, compression_ratio=round(serialized / stored, 3),
    )


@pytest.mark.parametrize(("kind", "size"), CASES)
def test_raw_lz4_round_trip(benchmark: Any, kind: str, size: str) -> None:
    """Baseline: ``lz4.block.compress`` then ``decompress`` of the same serialized bytes."""
    data = MsgpackSerializer().dumps(payload(kind, size))
    compress, decompress = lz4.block.compress, lz4.block.decompress
    benchmark.group = group(kind, size)
    back = benchmark(lambda: decompress(compress(data)))
    assert back == data
    benchmark.extra_info.update(
        kind=kind, size=size, serialized_bytes=len(data),
        compression_ratio=round(len(data) / len(compress(data)), 3),
    )
