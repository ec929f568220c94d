"""numpy arrays and scalars as msgpack extension records, bit for bit.

Record payload: one byte with the length of ``dtype.str``, that string (kind,
byte order, item size, datetime unit), one byte ndim, ndim big-endian uint64
dimensions, then the C-order bytes. Object, structured and sub-array dtypes
are refused: their bytes alone do not describe the values.

An embedding is usually the whole cached value, so a top-level array skips
msgpack entirely in both directions: the writer emits the extension record's
msgpack framing itself and the reader builds the array straight from the
stored buffer. Decoded arrays are read-only views of the decoded bytes (no
copy); call ``.copy()`` to modify one. That also keeps one caller from
changing a value another caller is holding.
"""

from __future__ import annotations

import math
import struct
from typing import Any, cast

import msgpack
import numpy as np

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.errors import SerializationError

EXT_NDARRAY = 8
EXT_NUMPY_SCALAR = 9

_MAX_NDIM = 64
_CACHE_LIMIT = 256  # distinct (dtype, shape) pairs remembered; embeddings use one or two
_EXT8 = struct.Struct(">BBb")
_EXT16 = struct.Struct(">BHb")
_EXT32 = struct.Struct(">BIb")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# (dtype, shape) -> (record prefix, msgpack framing of the whole record); bounded, see _remember.
_encode_cache: dict[tuple[np.dtype[Any], tuple[int, ...]], tuple[bytes, bytes]] = {}
# record prefix -> (dtype, shape, data bytes)
_decode_cache: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], int]] = {}
# head of a valid top-level document (msgpack framing + record prefix) -> (dtype, shape, document length)
_document_cache: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], int]] = {}
# msgpack ext 8 / 16 / 32 marker -> where the record starts (after marker, size and type code)
_EXT_HEAD_SIZE = {0xC7: 3, 0xC8: 4, 0xC9: 6}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Store in a bounded cache; starting over when full is cheap and keeps memory fixed."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _supported(dtype: np.dtype[Any]) -> bool:
    return not (dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None)


def _dtype_bytes(dtype: np.dtype[Any]) -> bytes:
    """Length-prefixed ``dtype.str``; SerializationError for dtypes that cannot be stored."""
    if not _supported(dtype):
        raise SerializationError(
            f"cannot serialize numpy dtype {dtype} (object, structured and sub-array dtypes are not supported)"
        )
    text = dtype.str.encode("ascii")
    return bytes((len(text),)) + text


def _framing(dtype: np.dtype[Any], shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    """The record prefix for an array of ``dtype`` and ``shape``, and the msgpack ext header of the record."""
    key = (dtype, shape)
    found = _encode_cache.get(key)
    if found is not None:
        return found
    prefix = _dtype_bytes(dtype) + struct.pack(f">B{len(shape)}Q", len(shape), *shape)
    size = len(prefix) + math.prod(shape) * dtype.itemsize
    if size <= 0xFF:
        head = _EXT8.pack(0xC7, size, EXT_NDARRAY)
    elif size <= 0xFFFF:
        head = _EXT16.pack(0xC8, size, EXT_NDARRAY)
    else:
        head = _EXT32.pack(0xC9, size, EXT_NDARRAY)
    _remember(_encode_cache, key, (prefix, head))
    return prefix, head


def encode_array(arr: np.ndarray[Any, Any]) -> msgpack.ExtType:
    """An array nested in another value, as an extension record."""
    prefix, _ = _framing(arr.dtype, arr.shape)
    return msgpack.ExtType(EXT_NDARRAY, prefix + arr.tobytes())


def encode_array_document(arr: np.ndarray[Any, Any]) -> bytes:
    """A top-level array as a complete msgpack document, without going through a Packer."""
    prefix, head = _framing(arr.dtype, arr.shape)
    return b"".join((head, prefix, arr.tobytes()))  # tobytes() is C order for any memory layout


def decode_array(buffer: bytes | memoryview, start: int, end: int) -> np.ndarray[Any, Any]:
    """The array whose record occupies ``buffer[start:end]``, as a read-only view of ``buffer``."""
    dtype_len = buffer[start]
    ndim_at = start + 1 + dtype_len
    prefix_end = ndim_at + 1 + 8 * buffer[ndim_at]
    if prefix_end > end:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "array record is truncated")
    # An immutable buffer (bytes, or a view of bytes) is looked up by its slice (a view of bytes
    # hashes and compares as its bytes), without copying the prefix; an array over it needs no copy.
    # A read-only view of a bytearray is not immutable: its owner can still change it.
    frozen = type(buffer) is bytes or (
        type(buffer) is memoryview and type(buffer.obj) is bytes and buffer.format == "B"
    )
    prefix = buffer[start:prefix_end] if frozen else bytes(buffer[start:prefix_end])
    layout = _decode_cache.get(cast(bytes, prefix))
    if layout is None:
        prefix = bytes(prefix)
        layout = _parse_prefix(prefix)
        _remember(_decode_cache, prefix, layout)
    dtype, shape, nbytes = layout
    if end - prefix_end != nbytes:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "array data does not match its shape")
    if nbytes == 0:  # ndarray() refuses a zero-length buffer window
        empty = np.zeros(shape, dtype=dtype)
        empty.flags.writeable = False
        return empty
    arr: np.ndarray[Any, Any] = np.ndarray(shape, dtype, buffer, prefix_end)
    if not frozen:  # a caller-owned mutable buffer (even through a read-only view): no window into it
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


def _parse_prefix(prefix: bytes) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """Validate a record prefix read from storage."""
    dtype_len = prefix[0]
    try:
        dtype = np.dtype(prefix[1 : 1 + dtype_len].decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "unreadable numpy dtype") from exc
    if not _supported(dtype):
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "unsupported numpy dtype")
    ndim = prefix[1 + dtype_len]
    if ndim > _MAX_NDIM:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "too many dimensions")
    shape = struct.unpack_from(f">{ndim}Q", prefix, 2 + dtype_len)
    return dtype, shape, math.prod(shape) * dtype.itemsize


def decode_array_document(data: bytes | memoryview) -> np.ndarray[Any, Any] | None:
    """The array if ``data`` is exactly one top-level array record, else None (use the general path).

    An immutable buffer whose head (msgpack framing and record prefix) was
    seen before in a valid document of its length is read in one lookup: an
    embedding cache reads one layout over and over.
    """
    start = _EXT_HEAD_SIZE.get(data[0])
    if start is None:
        return None
    frozen = type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes and data.format == "B")
    head_end = 0
    if frozen and len(data) > start:
        ndim_at = start + 1 + data[start]
        if ndim_at < len(data):
            head_end = ndim_at + 1 + 8 * data[ndim_at]
            known = _document_cache.get(cast(bytes, data[:head_end]))
            if known is not None and known[2] == len(data):
                return np.ndarray(known[1], known[0], data, head_end)
    array = _decode_document(data)
    if array is not None and head_end and array.nbytes and head_end + array.nbytes == len(data):
        _remember(_document_cache, bytes(data[:head_end]), (array.dtype, array.shape, len(data)))
    return array


def document_layout(data: bytes, start: int, end: int) -> tuple[int, np.dtype[Any], tuple[int, ...]] | None:
    """Where the array of the document ``data[start:end]`` starts in ``data``, its dtype and its shape.

    None unless ``data`` is ``bytes`` and ``data[start:end]`` is exactly one
    top-level array document holding at least one byte of array data. For a
    reader of many documents: any ``bytes`` of the same length whose bytes
    from ``start`` to the returned offset (the msgpack framing and the record
    prefix) equal these hold an array of this dtype and shape at that offset
    (if they end as many bytes after their document as these do),
    which ``np.ndarray(shape, dtype, other, offset)`` reads without a copy
    (read-only, as :func:`decode_array_document` gives it).
    """
    if type(data) is not bytes:
        return None
    array = decode_array_document(memoryview(data)[start:end])
    if array is None or not array.nbytes:
        return None
    offset = end - array.nbytes
    return offset, array.dtype, array.shape


def _decode_document(data: bytes | memoryview) -> np.ndarray[Any, Any] | None:
    """:func:`decode_array_document` field by field."""
    marker = data[0]
    if marker == 0xC9:
        size, code, start = _U32.unpack_from(data, 1)[0], data[5], 6
    elif marker == 0xC8:
        size, code, start = _U16.unpack_from(data, 1)[0], data[3], 4
    elif marker == 0xC7:
        size, code, start = data[1], data[2], 3
    else:
        return None
    if code != EXT_NDARRAY or start + size != len(data):
        return None
    return decode_array(data, start, start + size)


def encode_scalar(obj: np.generic) -> msgpack.ExtType:
    """A numpy scalar (np.float32(0.5), np.datetime64(...)) as an extension record."""
    # Empty np.str_ / np.bytes_ have itemsize 0 yet tobytes() pads them; store nothing.
    raw = obj.tobytes() if obj.dtype.itemsize else b""
    return msgpack.ExtType(EXT_NUMPY_SCALAR, _dtype_bytes(obj.dtype) + raw)


def decode_scalar(data: bytes) -> np.generic:
    """The numpy scalar in an extension record."""
    dtype_len = data[0]
    try:
        dtype = np.dtype(data[1 : 1 + dtype_len].decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "unreadable numpy dtype") from exc
    offset = 1 + dtype_len
    if not _supported(dtype) or len(data) - offset != dtype.itemsize:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "numpy scalar does not match its dtype")
    if dtype.itemsize == 0:
        return cast(np.generic, np.zeros((), dtype=dtype)[()])
    return cast(np.generic, np.frombuffer(data, dtype=dtype, count=1, offset=offset)[0])
