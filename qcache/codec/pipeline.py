"""The value codec: serialize, compress, encrypt, behind the versioned header.

Encoding follows the caller's flags; decoding follows the header alone, so
entries written under an earlier configuration stay readable. Every way a
stored value can be wrong (foreign, truncated, tampered, under an unknown or
wrong key, copied to another cache key, undecodable) ends in
:class:`~qcache.codec.errors.CodecIntegrityError`, a subclass of
:class:`qcache.errors.IntegrityError`, and is counted in :class:`CodecStats`;
decoding never raises anything else and never returns a wrong value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

from qcache.codec.checksum import crc32
from qcache.codec.compression import Compressor, NoCompression, compressor_class_for_id, create_compressor
from qcache.codec.encryption import LARGE_VALUE_BYTES, AesGcmStage
from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.header import (
    BASE_SIZE,
    CHECKSUM,
    COMPRESSION_MASK,
    CRC_RESIDUE,
    FLAG_ENCRYPTED,
    FORMAT_VERSION,
    MAGIC,
    PLAIN_BODY_OFFSET,
    PLAIN_MIN_SIZE,
    Header,
    build_base,
    parse_header,
)
from qcache.codec.keys import KeySource
from qcache.codec.registry import TypeRegistry
from qcache.codec.serializer import MsgpackSerializer, Serializer
from qcache.codec.signed_pickle import SignedPickleSerializer
from qcache.codec.stats import CodecStats
from qcache.errors import ConfigError, SerializationError

#: Largest serialized value accepted, and largest size a stored value may announce.
DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024
#: Values smaller than this are never compressed: the saving would not pay for the work.
DEFAULT_COMPRESSION_THRESHOLD = 1024

_KNOWN_FLAGS = COMPRESSION_MASK | FLAG_ENCRYPTED
_BASE = slice(0, BASE_SIZE)
_PLAIN_BODY = slice(PLAIN_BODY_OFFSET, -CHECKSUM.size)
_NO_ROUTES: Mapping[bytes, PlainRoute] = {}


class Codec:
    """Turns values into stored bytes and back; thread-safe, no I/O on the hot path.

    ``compressor`` is used for writes only; every available algorithm is
    accepted on reads. ``keys`` is needed to write encrypted values and to
    read them back; without it encrypted entries are misses. ``pickle``
    enables the signed-pickle fallback for values msgpack cannot represent;
    without it, pickle entries are rejected unread.
    """

    def __init__(
        self,
        *,
        compressor: Compressor | str = "lz4",
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
        keys: KeySource | None = None,
        registry: TypeRegistry | None = None,
        serializer: Serializer | None = None,
        pickle: SignedPickleSerializer | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        stats: CodecStats | None = None,
    ) -> None:
        if compression_threshold < 0:
            raise ConfigError(f"the compression threshold must be >= 0 bytes, got {compression_threshold}")
        if max_value_bytes <= 0:
            raise ConfigError(f"the value size limit must be positive, got {max_value_bytes}")
        if serializer is not None and registry is not None:
            raise ConfigError("pass either a serializer or a registry for the default one, not both")
        self._serializer = serializer if serializer is not None else MsgpackSerializer(registry)
        self._pickle = pickle
        self._serializers: dict[int, Serializer] = {self._serializer.id: self._serializer}
        if pickle is not None:
            if pickle.id in self._serializers:
                raise ConfigError("the pickle serializer id clashes with the primary serializer")
            self._serializers[pickle.id] = pickle
        self._compressor = create_compressor(compressor) if isinstance(compressor, str) else compressor
        self._threshold = compression_threshold
        self._decompressors = _available_decompressors(self._compressor)
        self._aead = AesGcmStage(keys) if keys is not None else None
        self._max = max_value_bytes
        self.stats = stats if stats is not None else CodecStats()
        # Every header this codec can write, built once.
        self._bases: dict[tuple[int, int, bool], bytes] = {}
        for serializer_id in self._serializers:
            for compression_id in {0, self._compressor.id}:
                for encrypted in (False, True):
                    self._bases[serializer_id, compression_id, encrypted] = build_base(
                        serializer_id, compression_id, encrypted
                    )
        # Every header this codec can read, mapped to what reading it takes: one dict lookup
        # replaces the field-by-field checks, which only run (in _reject) for headers not here.
        self._routes: dict[bytes, _Route] = {}
        for serializer_id, reader in self._serializers.items():
            for compression_id, decompressor in self._decompressors.items():
                for encrypted in (False, True):
                    base = build_base(serializer_id, compression_id, encrypted)
                    self._routes[base] = _Route(reader.loads, decompressor if compression_id else None, encrypted)
        hooks = {
            serializer_id: reader.unpack_hook if isinstance(reader, MsgpackSerializer) else None
            for serializer_id, reader in self._serializers.items()
        }
        self._plain_routes: dict[bytes, PlainRoute] = {
            base: PlainRoute(route.loads, route.decompressor, self._max, hooks[base[2]])
            for base, route in self._routes.items()
            if not route.encrypted
        }
        #: :meth:`plain_size` in one call: the memory-only ``set`` weighs every value through it
        #: (a subclass that overrides ``plain_size`` gets its own).
        self.plain_size_of: Callable[[Any], int] = (
            _plain_sizer(self._serializer.dumps, self.plain_size, self._max)
            if type(self).plain_size is Codec.plain_size
            else self.plain_size
        )

    @property
    def compressor(self) -> Compressor:
        """The algorithm used for writes."""
        return self._compressor

    @property
    def compression_threshold(self) -> int:
        """Serialized size from which compression is attempted."""
        return self._threshold

    @property
    def keys(self) -> KeySource | None:
        """The keyring, if encryption is available."""
        return self._aead.keys if self._aead is not None else None

    @property
    def plain_routes(self) -> Mapping[bytes, PlainRoute]:
        """What reading an unencrypted value takes, by its four header bytes: for readers of many values.

        A caller that decodes a batch (the cache's ``get_many``) may check a
        plain value ``data`` in its own loop instead of calling :meth:`decode`
        per value: its first four bytes must be a key here, ``crc32(data,
        crc32(key))`` must equal :data:`~qcache.codec.header.CRC_RESIDUE`
        (``key`` as given to :meth:`encode`; the same as ``crc32(prefix +
        data, crc32(k))`` when ``key`` is ``k + prefix``), the body is ``data``
        from :data:`PLAIN_BODY_OFFSET` to its last four bytes,
        ``route.decompressor`` (if any) restores the body within
        ``route.max_size`` (else the body must not exceed it), and
        ``route.loads`` gives the value. Where ``route.unpack_hook`` is set, the
        serializer is msgpack's and the loop may unpack itself instead (see
        :attr:`MsgpackSerializer.unpack_hook`). Anything that fails a step, or
        raises, goes to :meth:`decode`, which says why and counts it: the short
        cut only ever accepts what :meth:`decode` accepts.
        """
        return self._plain_routes

    @property
    def max_value_bytes(self) -> int:
        """Size limit for serialized values, on writes and on reads."""
        return self._max

    def encode(
        self,
        value: Any,
        *,
        key: str | bytes,
        compress: bool = False,
        encrypt: bool = False,
        stats: CodecStats | None = None,
    ) -> bytes:
        """The bytes to store for ``value`` under cache ``key``.

        ``key`` must be the full key the bytes are stored under: encrypted
        values are bound to it and fail authentication anywhere else, and so
        is an unencrypted value's CRC. The facade passes its record header in
        front of the storage key, so that the entry's expiry and TTL are
        authenticated too (see :func:`qcache.cache.record.binding`).
        Compression is applied only from the threshold on and only when it
        shrinks the value. ``len()`` of the result is the stored size.

        Raises SerializationError for values that cannot be represented (the
        message names the type) or exceed ``max_value_bytes``, and ConfigError
        when ``encrypt`` is asked of a codec without keys.
        """
        key_bytes = key.encode("utf-8", "surrogatepass") if type(key) is str else _key_bytes(key)
        serializer = self._serializer
        try:
            payload = serializer.dumps(value)
        except SerializationError:
            if self._pickle is None:
                raise
            serializer = self._pickle
            payload = serializer.dumps(value)
        size = len(payload)
        if size > self._max:
            raise SerializationError(f"value serializes to {size} bytes, above the {self._max}-byte limit")
        compression_id = 0
        compressed_to = 0
        skipped = False
        if compress and size >= self._threshold and self._compressor.id:
            packed = self._compressor.compress(payload)
            if len(packed) < size:
                payload = packed
                compression_id = self._compressor.id
                compressed_to = len(packed)
            else:
                skipped = True
        base = self._bases[serializer.id, compression_id, encrypt]
        if encrypt:
            if self._aead is None:
                raise ConfigError("encryption was requested but no encryption key is configured")
            out = self._aead.seal(base, payload, key_bytes)
        else:
            checksum = crc32(payload, crc32(base, crc32(key_bytes)))
            out = b"".join((base, payload, CHECKSUM.pack(checksum)))
        (self.stats if stats is None else stats).record_encode(size, len(out), compressed_to, skipped, encrypt)
        return out

    def plain_size(self, value: Any) -> int:
        """What ``encode(value)`` stores when neither compressed nor encrypted, without building it.

        For a cache that keeps values in process only: its byte bound needs a
        size, not the bytes, so the compression, checksum and header are
        counted instead of made. It is the serialized length plus the plain
        header: exactly the stored size of a value that does not compress,
        the uncompressed size of one that would. Raises as :meth:`encode` does
        for values that cannot be represented or are too large.
        """
        try:
            size = len(self._serializer.dumps(value))
        except SerializationError:
            if self._pickle is None:
                raise
            size = len(self._pickle.dumps(value))
        if size > self._max:
            raise SerializationError(f"value serializes to {size} bytes, above the {self._max}-byte limit")
        return size + BASE_SIZE + CHECKSUM.size

    def decode(
        self,
        data: bytes | bytearray | memoryview,
        *,
        key: str | bytes,
        require_encryption: bool = False,
        stats: CodecStats | None = None,
    ) -> Any:
        """The value stored in ``data`` under cache ``key``.

        Raises :class:`~qcache.codec.errors.CodecIntegrityError` (its
        ``reason`` says why) for anything but an intact value written by a
        qcache codec for this ``key``; the facade turns it into a miss.
        ``require_encryption`` also rejects unencrypted entries, for cache
        types where a plaintext entry can only be a downgrade.
        """
        key_bytes = key.encode("utf-8", "surrogatepass") if type(key) is str else _key_bytes(key)
        try:
            return self._decode(data, key_bytes, require_encryption)
        except CodecIntegrityError as exc:
            (self.stats if stats is None else stats).record_integrity_error(exc.reason)
            raise
        except Exception as exc:  # whatever a stage raised on bad bytes, the caller sees one type
            (self.stats if stats is None else stats).record_integrity_error(IntegrityReason.MALFORMED)
            raise CodecIntegrityError(IntegrityReason.MALFORMED, "payload does not deserialize") from exc

    def inspect(self, data: bytes | bytearray | memoryview) -> Header:
        """The header of a stored value (no decryption); raises CodecIntegrityError if it has none."""
        return parse_header(data)

    def _decode(self, data: bytes | bytearray | memoryview, key_bytes: bytes, require_encryption: bool) -> Any:
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise CodecIntegrityError(IntegrityReason.NOT_BYTES, f"got {type(data).__name__}")
            data = bytes(data)
        route = self._routes.get(data[_BASE])
        if route is None or len(data) < PLAIN_MIN_SIZE:
            self._reject(data)
        loads, decompressor, encrypted = route
        body: bytes | memoryview
        if encrypted:
            if self._aead is None:
                raise CodecIntegrityError(IntegrityReason.UNKNOWN_KEY_ID, "encrypted, and no key is configured")
            if len(data) < LARGE_VALUE_BYTES:
                body = self._aead.open(data, key_bytes)
            else:
                body = self._aead.open_large(data, key_bytes)
        else:
            if require_encryption:
                raise CodecIntegrityError(IntegrityReason.PLAINTEXT_REJECTED, "unencrypted entry")
            if crc32(data, crc32(key_bytes)) != CRC_RESIDUE:
                raise CodecIntegrityError(IntegrityReason.CHECKSUM_MISMATCH, "corrupt or stored under another key")
            body = memoryview(data)[_PLAIN_BODY]
        if decompressor is not None:
            body = decompressor.decompress(body, self._max)
        elif len(body) > self._max:
            raise CodecIntegrityError(IntegrityReason.TOO_LARGE, "payload exceeds the size limit")
        return loads(body)

    def _reject(self, data: bytes) -> NoReturn:
        """Raise the reason ``data`` has no readable header (it is too short or not in the route table)."""
        if len(data) < PLAIN_MIN_SIZE:
            if data[:1] not in (b"", bytes((MAGIC,))):
                raise CodecIntegrityError(IntegrityReason.FOREIGN, "no qcache magic byte")
            raise CodecIntegrityError(IntegrityReason.TRUNCATED, "shorter than the header")
        if data[0] != MAGIC:
            raise CodecIntegrityError(IntegrityReason.FOREIGN, "no qcache magic byte")
        if data[1] != FORMAT_VERSION:
            raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_VERSION, f"format version {data[1]}")
        flags = data[3]
        if flags & ~_KNOWN_FLAGS:
            raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_FORMAT, "reserved flag bits set")
        serializer_id = data[2]
        if serializer_id not in self._serializers:
            if serializer_id == SignedPickleSerializer.id:
                raise CodecIntegrityError(IntegrityReason.PICKLE_DISABLED, "signed pickle is not enabled")
            raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_FORMAT, f"serializer id {serializer_id}")
        compression_id = flags & COMPRESSION_MASK
        if compressor_class_for_id(compression_id) is not None:
            raise CodecIntegrityError(IntegrityReason.CODEC_UNAVAILABLE, f"compression id {compression_id}")
        raise CodecIntegrityError(IntegrityReason.UNSUPPORTED_FORMAT, f"compression id {compression_id}")


class _Route(NamedTuple):
    """What reading the values behind one header takes."""

    loads: Callable[[bytes | memoryview], Any]
    decompressor: Compressor | None  # None: stored uncompressed
    encrypted: bool


class PlainRoute(NamedTuple):
    """What reading an unencrypted value behind one header takes (see :attr:`Codec.plain_routes`)."""

    loads: Callable[[bytes | memoryview], Any]
    decompressor: Compressor | None  # None: stored uncompressed
    max_size: int  # the codec's max_value_bytes
    unpack_hook: Callable[[int, bytes], Any] | None = None  # MsgpackSerializer.unpack_hook, for msgpack's own


def _key_bytes(key: str | bytes) -> bytes:
    """The cache key as the bytes that authenticate it."""
    if type(key) is str:
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return key
    raise TypeError(f"a cache key must be str or bytes, not {type(key).__name__}")


def _available_decompressors(writer: Compressor) -> dict[int, Compressor]:
    """A decompressor per algorithm installed here (by header id), reusing the writer's instance."""
    found: dict[int, Compressor] = {NoCompression.id: NoCompression(), writer.id: writer}
    for name in ("lz4", "zstd"):
        try:
            candidate = create_compressor(name)
        except ConfigError:  # zstandard not installed: its entries become CODEC_UNAVAILABLE misses
            continue
        found.setdefault(candidate.id, candidate)
    return found


@dataclass(slots=True)
class CacheTypeCodec:
    """A codec bound to one cache type's settings, with that type's own counters.

    The facade keeps one per cache type and calls ``encode(value, key)`` /
    ``decode(data, key)`` without repeating the flags.
    """

    codec: Codec
    name: str | None
    compress: bool
    encrypt: bool
    require_encryption: bool = False
    stats: CodecStats = field(default_factory=CodecStats)

    def encode(self, value: Any, key: str | bytes) -> bytes:
        """Stored bytes for ``value`` under ``key`` with this type's flags."""
        return self.codec.encode(value, key=key, compress=self.compress, encrypt=self.encrypt, stats=self.stats)

    def plain_size(self, value: Any) -> int:
        """:meth:`Codec.plain_size`: the size an in-process-only cache counts for ``value``."""
        return self.codec.plain_size_of(value)

    @property
    def plain_routes(self) -> Mapping[bytes, PlainRoute]:
        """:attr:`Codec.plain_routes`, empty where this type refuses unencrypted values."""
        return _NO_ROUTES if self.require_encryption else self.codec.plain_routes

    def decode(self, data: bytes | bytearray | memoryview, key: str | bytes) -> Any:
        """The value in ``data``; CodecIntegrityError (with a reason) for bad bytes."""
        return self.codec.decode(data, key=key, require_encryption=self.require_encryption, stats=self.stats)


def _plain_sizer(dumps: Callable[[Any], bytes], plain_size: Callable[[Any], int], limit: int) -> Callable[[Any], int]:
    """:meth:`Codec.plain_size` as one frame around the primary serializer (not three).

    Whatever the fast step cannot settle (a value only the pickle fallback
    takes, one above the size limit) goes to ``plain_size``, which says why.
    """
    extra = BASE_SIZE + CHECKSUM.size

    def plain_size_of(value: Any) -> int:
        try:
            size = len(dumps(value))
        except SerializationError:
            return plain_size(value)
        if size > limit:
            return plain_size(value)
        return size + extra

    return plain_size_of
