"""Turning values into bytes and back: msgpack with safe extension types.

Supported out of the box: None, bool, int of any size, float, str, bytes,
list, tuple, dict, set, frozenset, datetime, date, timedelta, numpy arrays
and numpy scalars (dtype, byte order and shape preserved bit for bit), plus
any class in a :class:`~qcache.codec.registry.TypeRegistry`. Anything else
raises :class:`~qcache.errors.SerializationError` naming the type; nothing
is ever pickled here (see :mod:`qcache.codec.signed_pickle` for the opt-in).

Types are matched exactly, not by ``isinstance``: a dict subclass, an
``IntEnum`` or a ``datetime`` subclass would otherwise come back as its base
class, which is a wrong value. Register such classes instead. Bytes-like
``bytearray`` and ``memoryview`` come back as ``bytes``. Aware datetimes keep
their UTC offset (to the microsecond) and ``fold``, but come back with a
fixed-offset ``timezone``: the zone name and rules are not stored.
"""

from __future__ import annotations

import datetime as _dt
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import msgpack
import numpy as np

from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.numpy_ext import (
    EXT_NDARRAY,
    EXT_NUMPY_SCALAR,
    decode_array,
    decode_array_document,
    decode_scalar,
    encode_array,
    encode_array_document,
    encode_scalar,
)
from qcache.codec.registry import TypeRegistry, default_registry
from qcache.errors import SerializationError

# Extension type codes written into stored values: never renumber them.
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_BIGINT = 4
EXT_DATETIME = 5
EXT_DATE = 6
EXT_TIMEDELTA = 7
# 8 and 9: numpy arrays and scalars (qcache.codec.numpy_ext)
EXT_CUSTOM = 10

_TIMEDELTA = struct.Struct(">iII")
_DATETIME = struct.Struct(">HBBBBBIB")  # year .. microsecond, flags (1: aware, 2: fold)
_unpackb = msgpack.unpackb  # raw=False, use_list=True and timestamp=0 are its defaults
_EXT_MARKERS = frozenset((0xC7, 0xC8, 0xC9))  # ext 8/16/32: how a top-level array document starts
#: First bytes of a payload that may be a top-level array document (see :attr:`MsgpackSerializer.unpack_hook`).
DOCUMENT_MARKERS = _EXT_MARKERS


class Serializer(ABC):
    """One way of turning a value into bytes; its ``id`` is written into the header.

    Implementations raise :class:`~qcache.errors.SerializationError` from
    ``dumps`` for values they cannot represent, and may raise anything from
    ``loads`` for bytes that are not theirs: the pipeline turns that into an
    :class:`~qcache.errors.IntegrityError`.
    """

    id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def dumps(self, value: Any) -> bytes:
        """Bytes representing ``value``."""

    @abstractmethod
    def loads(self, data: bytes | memoryview) -> Any:
        """The value that ``dumps`` turned into ``data``."""


def type_name(value: Any) -> str:
    """``module.QualName`` of the type of ``value`` (builtins without the module)."""
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class MsgpackSerializer(Serializer):
    """The default serializer: msgpack plus extension types, no code execution on load.

    Thread-safe: each thread packs with its own preconstructed ``Packer``, so
    the hot path neither builds a packer per call nor shares one across threads.
    """

    id: ClassVar[int] = 1
    name: ClassVar[str] = "msgpack"

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self._registry = default_registry if registry is None else registry
        self._local = threading.local()
        self._encoders: dict[type, Callable[[Any], msgpack.ExtType]] = {
            tuple: self._encode_tuple,
            set: self._encode_set,
            frozenset: self._encode_frozenset,
            int: _encode_bigint,
            _dt.datetime: _encode_datetime,
            _dt.date: _encode_date,
            _dt.timedelta: _encode_timedelta,
            np.ndarray: encode_array,
        }
        self._decoders: dict[int, Callable[[bytes], Any]] = {
            EXT_TUPLE: self._decode_tuple,
            EXT_SET: self._decode_set,
            EXT_FROZENSET: self._decode_frozenset,
            EXT_BIGINT: _decode_bigint,
            EXT_DATETIME: _decode_datetime,
            EXT_DATE: _decode_date,
            EXT_TIMEDELTA: _decode_timedelta,
            EXT_NDARRAY: _decode_nested_array,
            EXT_NUMPY_SCALAR: decode_scalar,
            EXT_CUSTOM: self._decode_custom,
        }
        # strict_types routes tuples and subclasses of native types to _default
        # instead of flattening them into lists and base types.
        self._packer_options: dict[str, Any] = {
            "default": self._default,
            "strict_types": True,
            "use_bin_type": True,
            "datetime": False,
        }
        self._pack_nested = partial(msgpack.packb, **self._packer_options)
        # Bound once: unpackb with keyword arguments costs the same as the bare call,
        # while a functools.partial around it costs ~15% more on small values.
        self._hook = self._ext_hook

    @property
    def registry(self) -> TypeRegistry:
        """The custom types this serializer knows."""
        return self._registry

    def dumps(self, value: Any) -> bytes:
        """Pack ``value``; raises SerializationError naming any unsupported type."""
        if type(value) is np.ndarray:
            return encode_array_document(value)
        try:
            pack = self._local.pack
        except AttributeError:
            pack = self._local.pack = msgpack.Packer(**self._packer_options).pack
        try:
            packed: bytes = pack(value)
            return packed
        except SerializationError:
            raise
        except Exception as exc:  # msgpack reports depth, size and encoding problems as plain errors
            raise SerializationError(f"cannot serialize value of type {type_name(value)}: {exc}") from exc

    def loads(self, data: bytes | memoryview) -> Any:
        """Unpack bytes produced by :meth:`dumps`."""
        if data and data[0] in _EXT_MARKERS:
            array = decode_array_document(data)
            if array is not None:
                return array
        return _unpackb(data, ext_hook=self._hook, strict_map_key=False)

    @property
    def unpack_hook(self) -> Callable[[int, bytes], Any] | None:
        """What :meth:`loads` passes msgpack, for readers of many values that call it themselves.

        For a payload whose first byte is not in :data:`DOCUMENT_MARKERS`,
        ``loads(data)`` is ``msgpack.unpackb(data, ext_hook=unpack_hook,
        strict_map_key=False)``; a payload starting with one of them may be a
        top-level array document and needs :meth:`loads`. None for a subclass
        with its own ``loads``.
        """
        return self._hook if type(self).loads is MsgpackSerializer.loads else None

    def _unpack(self, data: bytes) -> Any:
        """Unpack a nested record."""
        return _unpackb(data, ext_hook=self._hook, strict_map_key=False)

    # -- packing ---------------------------------------------------------------------------

    def _default(self, obj: Any) -> Any:
        """msgpack hook for everything it does not pack natively."""
        encoder = self._encoders.get(type(obj))
        if encoder is not None:
            return encoder(obj)
        custom = self._registry.for_type(type(obj))
        if custom is not None:
            return msgpack.ExtType(EXT_CUSTOM, self._pack_nested([custom.name, custom.to_state(obj)]))
        if isinstance(obj, np.generic):
            return encode_scalar(obj)
        raise SerializationError(
            f"cannot serialize value of type {type_name(obj)}: register it with "
            "qcache.codec.register_type / register_dataclass, or enable signed pickle"
        )

    def _encode_tuple(self, obj: tuple[Any, ...]) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_TUPLE, self._pack_nested(list(obj)))

    def _encode_set(self, obj: set[Any]) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_SET, self._pack_nested(list(obj)))

    def _encode_frozenset(self, obj: frozenset[Any]) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_FROZENSET, self._pack_nested(list(obj)))

    # -- unpacking -------------------------------------------------------------------------

    def _ext_hook(self, code: int, data: bytes) -> Any:
        """msgpack hook turning extension records back into values."""
        decoder = self._decoders.get(code)
        if decoder is None:
            raise CodecIntegrityError(IntegrityReason.MALFORMED, f"unknown extension type {code}")
        return decoder(data)

    def _decode_sequence(self, data: bytes) -> list[Any]:
        items = self._unpack(data)
        if type(items) is not list:
            raise CodecIntegrityError(IntegrityReason.MALFORMED, "collection payload is not an array")
        return items

    def _decode_tuple(self, data: bytes) -> tuple[Any, ...]:
        return tuple(self._decode_sequence(data))

    def _decode_set(self, data: bytes) -> set[Any]:
        return set(self._decode_sequence(data))

    def _decode_frozenset(self, data: bytes) -> frozenset[Any]:
        return frozenset(self._decode_sequence(data))

    def _decode_custom(self, data: bytes) -> Any:
        record = self._unpack(data)
        if type(record) is not list or len(record) != 2 or type(record[0]) is not str:
            raise CodecIntegrityError(IntegrityReason.MALFORMED, "custom type record is malformed")
        name, state = record
        custom = self._registry.for_name(name)
        if custom is None:
            # Only the wire name, which is ours, goes into the message; never the state.
            raise CodecIntegrityError(IntegrityReason.UNKNOWN_TYPE, f"type {name[:80]!r} is not registered")
        try:
            return custom.from_state(state)
        except Exception as exc:
            raise CodecIntegrityError(IntegrityReason.MALFORMED, f"type {name!r} rejected its stored state") from exc


# -- builtin extension types ----------------------------------------------------------------


def _encode_bigint(obj: int) -> msgpack.ExtType:
    # msgpack covers [-2**63, 2**64); it calls the hook only for ints outside that range.
    length = (obj.bit_length() + 8) // 8  # +8 leaves room for the sign bit
    return msgpack.ExtType(EXT_BIGINT, obj.to_bytes(length, "big", signed=True))


def _decode_bigint(data: bytes) -> int:
    if not data:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "empty integer")
    return int.from_bytes(data, "big", signed=True)


def _encode_datetime(obj: _dt.datetime) -> msgpack.ExtType:
    # Binary fields rather than isoformat(): fromisoformat() drops the microseconds of a
    # UTC offset such as +00:00:00.000001, and isoformat() loses ``fold``.
    offset = obj.utcoffset()
    if obj.tzinfo is not None and offset is None:
        raise SerializationError(f"cannot serialize a datetime whose tzinfo {obj.tzinfo!r} gives no UTC offset")
    flags = (1 if offset is not None else 0) | (2 if obj.fold else 0)
    fields = _DATETIME.pack(
        obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond, flags
    )
    if offset is not None:
        fields += _TIMEDELTA.pack(offset.days, offset.seconds, offset.microseconds)
    return msgpack.ExtType(EXT_DATETIME, fields)


def _decode_datetime(data: bytes) -> _dt.datetime:
    year, month, day, hour, minute, second, microsecond, flags = _DATETIME.unpack_from(data)
    tz: _dt.tzinfo | None = None
    if flags & 1:
        days, seconds, microseconds = _TIMEDELTA.unpack_from(data, _DATETIME.size)
        tz = _dt.timezone(_dt.timedelta(days=days, seconds=seconds, microseconds=microseconds))
        expected = _DATETIME.size + _TIMEDELTA.size
    else:
        expected = _DATETIME.size
    if len(data) != expected or flags & ~3:
        raise CodecIntegrityError(IntegrityReason.MALFORMED, "malformed datetime record")
    return _dt.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz, fold=flags >> 1)


def _encode_date(obj: _dt.date) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_DATE, obj.isoformat().encode("ascii"))


def _decode_date(data: bytes) -> _dt.date:
    return _dt.date.fromisoformat(data.decode("ascii"))


def _encode_timedelta(obj: _dt.timedelta) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds))


def _decode_timedelta(data: bytes) -> _dt.timedelta:
    days, seconds, microseconds = _TIMEDELTA.unpack(data)
    return _dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_nested_array(data: bytes) -> np.ndarray[Any, Any]:
    return decode_array(data, 0, len(data))
