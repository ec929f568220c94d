"""Compression stages: one contract for every algorithm, and when the codec applies them."""

from __future__ import annotations

import json
import random
import threading

import pytest

import qcache.codec.compression as compression
from qcache.codec import (
    Codec,
    CodecIntegrityError,
    Compressor,
    IntegrityReason,
    available_compressors,
    create_compressor,
)
from qcache.errors import ConfigError

REPETITIVE = json.dumps([{"path": f"src/pkg/module_{i % 7}.py", "score": 0.5} for i in range(300)]).encode()
INCOMPRESSIBLE = random.Random(0).randbytes(3000)


@pytest.fixture(params=available_compressors())
def compressor(request: pytest.FixtureRequest) -> Compressor:
    """Each installed compressor."""
    return create_compressor(request.param)


@pytest.fixture(params=[name for name in available_compressors() if name != "none"])
def framed_compressor(request: pytest.FixtureRequest) -> Compressor:
    """Each installed compressor except the identity."""
    return create_compressor(request.param)


class TestCompressorContract:
    """What every compression stage must do."""

    def test_round_trip(self, compressor: Compressor) -> None:
        for data in (b"", b"a", REPETITIVE, INCOMPRESSIBLE):
            assert compressor.decompress(compressor.compress(data), max_size=len(data)) == data

    def test_accepts_memoryview(self, compressor: Compressor) -> None:
        packed = compressor.compress(REPETITIVE)
        assert compressor.decompress(memoryview(packed), max_size=len(REPETITIVE)) == REPETITIVE

    def test_refuses_output_above_the_limit(self, compressor: Compressor) -> None:
        packed = compressor.compress(REPETITIVE)
        with pytest.raises(CodecIntegrityError) as info:
            compressor.decompress(packed, max_size=len(REPETITIVE) - 1)
        assert info.value.reason is IntegrityReason.TOO_LARGE

    def test_names_and_ids_are_stable(self, compressor: Compressor) -> None:
        assert {"none": 0, "lz4": 1, "zstd": 2}[compressor.name] == compressor.id


class TestFramedCompressorContract:
    """What every real algorithm (one with framing to corrupt) must also do."""

    def test_truncated_input_is_an_integrity_error(self, framed_compressor: Compressor) -> None:
        packed = framed_compressor.compress(REPETITIVE)
        for cut in (1, 3, len(packed) // 2):
            with pytest.raises(CodecIntegrityError):
                framed_compressor.decompress(packed[:cut], max_size=10 * len(REPETITIVE))


def test_unknown_algorithm_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="snappy"):
        create_compressor("snappy")
    assert create_compressor(" LZ4 ").name == "lz4"


def test_compression_applies_from_the_threshold_and_only_when_it_shrinks() -> None:
    codec = Codec(compressor="lz4", compression_threshold=1024)
    small = "x" * 500
    assert codec.encode(small, key="k", compress=True)[3] & 7 == 0  # below the threshold
    assert codec.encode(REPETITIVE.decode(), key="k", compress=True)[3] & 7 == 1
    assert codec.encode(REPETITIVE.decode(), key="k", compress=False)[3] & 7 == 0  # not asked
    noise = INCOMPRESSIBLE
    stored = codec.encode(noise, key="k", compress=True)
    assert stored[3] & 7 == 0  # tried, did not shrink, stored as is
    assert codec.decode(stored, key="k") == noise
    stats = codec.stats.snapshot()
    assert stats.compressed == 1 and stats.compression_skipped == 1 and stats.encoded == 4
    assert stats.compression_ratio > 5
    assert stats.compression_input_bytes > stats.compression_output_bytes


def test_entries_stay_readable_after_the_algorithm_changes() -> None:
    writers = {name: Codec(compressor=name, compression_threshold=0) for name in available_compressors()}
    stored = {name: w.encode(REPETITIVE.decode(), key="k", compress=True) for name, w in writers.items()}
    for reader in writers.values():
        for data in stored.values():
            assert reader.decode(data, key="k") == REPETITIVE.decode()


@pytest.mark.skipif("zstd" not in available_compressors(), reason="zstandard is not installed")
def test_zstd_entries_without_zstandard_are_a_miss_and_choosing_it_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = Codec(compressor="zstd", compression_threshold=0).encode(REPETITIVE.decode(), key="k", compress=True)
    monkeypatch.setattr(compression, "zstandard", None)
    with pytest.raises(ConfigError, match="zstandard"):
        create_compressor("zstd")
    assert "zstd" not in available_compressors()
    with pytest.raises(CodecIntegrityError) as info:
        Codec(compressor="lz4").decode(data, key="k")
    assert info.value.reason is IntegrityReason.CODEC_UNAVAILABLE


def test_stats_stay_exact_under_concurrent_encodes() -> None:
    codec = Codec(compressor="lz4", compression_threshold=0)
    value = REPETITIVE.decode()
    one = len(codec.encode(value, key="k", compress=True))
    codec.stats.reset()

    def work() -> None:
        for _ in range(500):
            codec.encode(value, key="k", compress=True)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = codec.stats.snapshot()
    assert stats.encoded == stats.compressed == 2000
    assert stats.stored_bytes == 2000 * one
