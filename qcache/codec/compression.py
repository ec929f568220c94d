"""Compression stages by name and by the id stored in the header.

``none`` and ``lz4`` (block format) are always available; ``zstd`` needs the
optional ``zstandard`` package (``pip install qcache[zstd]``). Choosing zstd
without it is a :class:`~qcache.errors.ConfigError` at configuration time,
and reading a zstd entry without it is an integrity miss, not a crash.

Every decompressor checks the size announced in the stored bytes against a
limit *before* allocating, so a forged length cannot make a reader allocate
gigabytes.
"""

from __future__ import annotations

import importlib
import struct
import threading
from abc import ABC, abstractmethod
from types import ModuleType
from typing import ClassVar

import lz4.block

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.errors import ConfigError

zstandard: ModuleType | None
try:
    zstandard = importlib.import_module("zstandard")
except ImportError:  # optional extra
    zstandard = None


class Compressor(ABC):
    """One compression algorithm; ``id`` (0-7) is what the header stores."""

    id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def compress(self, data: bytes) -> bytes:
        """Compressed form of ``data``."""

    @abstractmethod
    def decompress(self, data: bytes | memoryview, max_size: int) -> bytes:
        """Original bytes; raises CodecIntegrityError if they would exceed ``max_size``."""


class NoCompression(Compressor):
    """The identity; exists so ``CACHE_COMPRESSION_ALGORITHM=none`` is a real choice."""

    id: ClassVar[int] = 0
    name: ClassVar[str] = "none"

    def compress(self, data: bytes) -> bytes:
        """``data`` unchanged."""
        return data

    def decompress(self, data: bytes | memoryview, max_size: int) -> bytes:
        """``data`` as bytes."""
        if len(data) > max_size:
            raise CodecIntegrityError(IntegrityReason.TOO_LARGE, "payload exceeds the size limit")
        return bytes(data)


# Bound once: module attribute lookups are a measurable share of decompressing a few KB.
_read_size = struct.Struct("<I").unpack_from  # the 4-byte little-endian size lz4.block stores first
_lz4_decompress = lz4.block.decompress


class Lz4Compressor(Compressor):
    """LZ4 block format with the original size stored in front (4 bytes, little-endian)."""

    id: ClassVar[int] = 1
    name: ClassVar[str] = "lz4"

    def compress(self, data: bytes) -> bytes:
        """LZ4 block (default mode) with a size prefix."""
        compressed: bytes = lz4.block.compress(data)  # store_size=True is the library default
        return compressed

    def decompress(self, data: bytes | memoryview, max_size: int) -> bytes:
        """Check the stored size against ``max_size``, then decompress."""
        try:
            size = _read_size(data)[0]
        except struct.error:
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "lz4 block without a size") from None
        if size > max_size:
            raise CodecIntegrityError(IntegrityReason.TOO_LARGE, "announced size exceeds the limit")
        try:
            result: bytes = _lz4_decompress(data)
            return result
        except lz4.block.LZ4BlockError as exc:
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "corrupt lz4 block") from exc


class ZstdCompressor(Compressor):
    """Zstandard frames with the content size recorded; contexts are per thread (not thread-safe)."""

    id: ClassVar[int] = 2
    name: ClassVar[str] = "zstd"

    def __init__(self, level: int = 3) -> None:
        if zstandard is None:
            raise ConfigError(
                "zstd compression needs the 'zstandard' package: pip install 'qcache[zstd]'"
            )
        if not 1 <= level <= 22:
            raise ConfigError(f"zstd level must be in 1..22, got {level}")
        self._level = level
        self._local = threading.local()

    def _contexts(self) -> threading.local:
        local = self._local
        if not hasattr(local, "compressor"):
            assert zstandard is not None  # checked in __init__
            local.compressor = zstandard.ZstdCompressor(level=self._level, write_content_size=True)
            local.decompressor = zstandard.ZstdDecompressor()
        return local

    def compress(self, data: bytes) -> bytes:
        """One zstd frame."""
        compressed: bytes = self._contexts().compressor.compress(data)
        return compressed

    def decompress(self, data: bytes | memoryview, max_size: int) -> bytes:
        """Check the frame's content size against ``max_size``, then decompress."""
        assert zstandard is not None  # instances exist only when the package does
        try:
            size = zstandard.frame_content_size(data)
        except zstandard.ZstdError as exc:
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "corrupt zstd frame") from exc
        if size < 0:  # unknown size: we always write it, so this frame is not ours
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "zstd frame without a content size")
        if size > max_size:
            raise CodecIntegrityError(IntegrityReason.TOO_LARGE, "announced size exceeds the limit")
        try:
            result: bytes = self._contexts().decompressor.decompress(data, max_output_size=max_size)
        except zstandard.ZstdError as exc:
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "corrupt zstd frame") from exc
        if len(result) != size:
            raise CodecIntegrityError(IntegrityReason.DECOMPRESSION_FAILED, "zstd frame size mismatch")
        return result


_BY_NAME: dict[str, type[Compressor]] = {
    cls.name: cls for cls in (NoCompression, Lz4Compressor, ZstdCompressor)
}
_BY_ID: dict[int, type[Compressor]] = {cls.id: cls for cls in _BY_NAME.values()}


def available_compressors() -> list[str]:
    """Names accepted by :func:`create_compressor` (zstd only when installed)."""
    return sorted(name for name in _BY_NAME if name != "zstd" or zstandard is not None)


def create_compressor(name: str) -> Compressor:
    """A compressor for ``CACHE_COMPRESSION_ALGORITHM`` (case-insensitive)."""
    key = name.strip().lower()
    cls = _BY_NAME.get(key)
    if cls is None:
        known = ", ".join(sorted(_BY_NAME))
        raise ConfigError(f"unknown compression algorithm {name!r}; known: {known}")
    return cls()


def compressor_class_for_id(compression_id: int) -> type[Compressor] | None:
    """The compressor class a header's compression id names, if any."""
    return _BY_ID.get(compression_id)
