"""A cache entry as L2 stores it: the codec's bytes in a record with the entry's expiry."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Container, Iterable
from typing import Any

import msgpack
import numpy as np

from qcache.cache.inputs import check_ttl
from qcache.cache.locator import TypeSpec
from qcache.cache.metrics import CacheMetrics
from qcache.cache.plans import MISSING
from qcache.cache.record import PLAIN_HEAD, PLAIN_MARK, binding, parse_record, record_header
from qcache.codec import CodecIntegrityError, Compressor
from qcache.codec.checksum import crc32
from qcache.codec.header import CHECKSUM_SIZE, CRC_RESIDUE
from qcache.codec.numpy_ext import document_layout
from qcache.codec.pipeline import PlainRoute
from qcache.codec.serializer import DOCUMENT_MARKERS as _DOCUMENT_MARKERS

logger = logging.getLogger("qcache")


class EntryCodec:
    """Encodes values into L2 records and back, with TTLs in the writer's wall-clock time.

    ``clock`` gives wall-clock seconds: the expiry stored in Redis must mean
    the same thing in every process. ``ttl_jitter`` follows the configuration.
    """

    __slots__ = ("_rng", "clock", "metrics", "ttl_jitter")

    def __init__(self, clock: Callable[[], float], metrics: CacheMetrics, rng: random.Random) -> None:
        self.clock = clock
        self.metrics = metrics
        self._rng = rng
        self.ttl_jitter = 0.0

    def resolve_ttl(self, spec: TypeSpec, ttl: object) -> float:
        """The TTL to store: the caller's or the type's, shortened by the configured jitter."""
        seconds = spec.ttl if ttl is None else check_ttl(ttl)
        if self.ttl_jitter:
            seconds *= 1.0 - self.ttl_jitter * self._rng.random()
        return seconds

    def encode(
        self, skey: str, hashed: bool, key: str, spec: TypeSpec, value: Any, ttl: float,
        source_digest: bytes | None = None,
    ) -> tuple[bytes, int]:
        """The L2 record for ``value`` and its absolute expiry in epoch milliseconds."""
        expires_at_ms = int((self.clock() + ttl) * 1000) + 1
        header = record_header(expires_at_ms, key if hashed else None, math.ceil(ttl * 1000), source_digest)
        # The codec authenticates the header with the value: an edited expiry reads as corrupt.
        return header + spec.codec.encode(value, binding(header, skey)), expires_at_ms

    def encode_many(
        self, spec: TypeSpec, entries: Iterable[tuple[str, bool, str, Any]], ttl: float
    ) -> tuple[list[bytes], int]:
        """The records of ``(skey, hashed, key, value)`` entries that share ``ttl``, and their one expiry.

        As :meth:`encode` for each, with one clock reading for the batch and
        one record header for all its plain keys.
        """
        expires_at_ms = int((self.clock() + ttl) * 1000) + 1
        ttl_ms = math.ceil(ttl * 1000)
        plain = record_header(expires_at_ms, None, ttl_ms)
        encode = spec.codec.encode
        records = []
        for skey, hashed, key, value in entries:
            header = record_header(expires_at_ms, key, ttl_ms) if hashed else plain
            records.append(header + encode(value, binding(header, skey)))
        return records, expires_at_ms

    def decode(self, skey: str, hashed: bool, key: str, spec: TypeSpec, raw: bytes) -> tuple[Any, float]:
        """Value and remaining lifetime (s) of an L2 record; MISSING if unusable."""
        fills: list[tuple[str, str, Any, int, float]] = []
        self.decode_many(spec, (key,), (skey,), (raw,), {}, fills, (key,) if hashed else ())
        if fills:
            return fills[0][2], fills[0][4]
        return MISSING, 0.0

    def decode_many(
        self, spec: TypeSpec, keys: Iterable[str], skeys: Iterable[str], raws: Iterable[bytes | None],
        found: dict[str, Any], fills: list[tuple[str, str, Any, int, float]] | None,
        hashed: Container[str] = (),
    ) -> None:
        """Decode a batch read: ``found[key]`` for every usable record of ``raws`` (read from ``skeys``).

        ``keys``, ``skeys`` and ``raws`` go together; ``hashed`` holds the keys
        whose storage key is a hash (their record embeds the key). With
        ``fills`` a list, each value found is also appended as ``(key, skey,
        value, size, remaining lifetime)``, for L1. A plain record (no
        embedded key or digest, unencrypted codec bytes: see
        :attr:`qcache.codec.Codec.plain_routes`) is checked in this loop, its
        two headers read in one step, msgpack called directly and an
        embedding's array built over the reply's bytes, in the layout the
        batch's first array document was found valid in: per key, Python calls
        would cost more than the decoding. Every other record, and any that
        fails a check here, takes :meth:`decode_checked`, which says why it
        refuses a record: this loop only ever accepts what that one accepts.
        """
        routes = spec.codec.plain_routes
        now = self.clock()
        now_ms = now * 1000.0
        checked = self.decode_checked
        read_head = _read_head
        unpackb = _unpackb
        markers = _DOCUMENT_MARKERS
        # What the last record's codec header said; a batch is written with one or two.
        last_route: PlainRoute | None = None
        loads: Callable[[Any], Any] = _no_loads
        decompressor: Compressor | None = None
        hook: Callable[[int, bytes], Any] | None = None
        limit = max_size = 0
        # Whether the route's values are msgpack's and uncompressed, and below which record size they
        # are read here without a view: then a check or two per key picks the short way.
        direct = False
        direct_below = 0
        # The layout of the batch's first array document: any bytes of that length with that head hold it.
        doc_head = b""
        doc_end = doc_size = 0
        doc_dtype: Any = None
        doc_shape: tuple[int, ...] = ()
        for key, skey, raw in zip(keys, skeys, raws):
            if raw is None:
                continue
            value: Any = MISSING
            try:
                mark, flags, expires_at_ms, ttl_ms, codec_header = read_head(raw)
                route = routes.get(codec_header)
                if route is not last_route:
                    last_route = route
                    if route is not None:
                        loads, decompressor, max_size, hook = route
                        limit = max_size + _PLAIN_EXTRA
                        direct = decompressor is None and hook is not None
                        direct_below = min(limit + 1, _COPY_BELOW)
                if route is not None and mark == PLAIN_MARK and not flags and not (hashed and key in hashed):
                    if expires_at_ms <= now_ms:
                        continue  # (an edited expiry can only make this a miss)
                    # The codec's checksum covers what it is bound to (the storage key, then the record
                    # header: see qcache.cache.record.binding), then its own bytes, and ends the record:
                    # one pass over the record from the storage key's CRC checks it. (A plain storage
                    # key is checked text, which encodes as binding() encodes it.)
                    if crc32(raw, crc32(skey.encode())) != _RESIDUE:
                        pass  # decode_checked counts it
                    elif direct and len(raw) == doc_size and type(raw) is bytes and raw.startswith(doc_head, _BODY_AT):
                        value = _ndarray(doc_shape, doc_dtype, raw, doc_end)  # over the reply's bytes
                    elif direct and len(raw) < direct_below and raw[_BODY_AT] not in markers:
                        value = unpackb(raw[_BODY], ext_hook=hook, strict_map_key=False)
                    elif decompressor is not None:
                        value = loads(decompressor.decompress(_body(raw), max_size))
                    elif len(raw) > limit:
                        pass  # too large: decode_checked says so
                    elif hook is not None and raw[_BODY_AT] in markers:
                        # Perhaps a top-level array document (an embedding): the first one of a batch
                        # is checked field by field, the others of its layout read as above.
                        layout = document_layout(raw, _BODY_AT, len(raw) - CHECKSUM_SIZE)
                        if layout is None:
                            value = loads(_body(raw))
                        else:
                            doc_end, doc_dtype, doc_shape = layout
                            doc_head, doc_size = raw[_BODY_AT:doc_end], len(raw)
                            value = _ndarray(doc_shape, doc_dtype, raw, doc_end)
                    else:
                        value = loads(_body(raw))
            except Exception:  # not a record this loop reads (decode_checked says why), or undecodable
                value = MISSING
            if value is MISSING:
                value, remaining = checked(skey, bool(hashed) and key in hashed, key, spec, raw)
                if value is MISSING:
                    continue
            elif fills is not None:
                remaining = expires_at_ms / 1000.0 - now
                if ttl_ms and remaining * 1000.0 > ttl_ms:
                    remaining = ttl_ms / 1000.0  # as in decode_checked
            found[key] = value
            if fills is not None:
                fills.append((key, skey, value, len(raw), remaining))

    def decode_checked(self, skey: str, hashed: bool, key: str, spec: TypeSpec, raw: bytes) -> tuple[Any, float]:
        """:meth:`decode` for any record, field by field; an unusable one is counted and logged."""
        try:
            expires_at_ms, ttl_ms, caller_key, payload = parse_record(raw)
            if hashed and caller_key != key:
                return MISSING, 0.0  # another key with the same hash: never its value
            remaining = expires_at_ms / 1000.0 - self.clock()
            if remaining <= 0:
                return MISSING, 0.0  # (an edited expiry can only make this a miss)
            # The codec authenticates the header with the value (see qcache.cache.record.binding):
            # past this line the expiry and TTL are the writer's.
            value = spec.codec.decode(payload, binding(raw[: len(raw) - len(payload)], skey))
            if ttl_ms and remaining * 1000.0 > ttl_ms:
                # The writer's clock runs ahead of ours: never keep a copy longer than it was set for.
                remaining = ttl_ms / 1000.0
            return value, remaining
        except CodecIntegrityError as exc:
            self.metrics.error(f"integrity_{exc.reason.value}")
            logger.warning("qcache: rejected a stored %r entry (%s)", spec.name, exc.reason.value)
            return MISSING, 0.0


_read_head = PLAIN_HEAD.unpack_from
_unpackb = msgpack.unpackb
_ndarray = np.ndarray
_RESIDUE = CRC_RESIDUE
#: Where a plain record's body (the serialized value) starts; its CRC follows it.
_BODY_AT = PLAIN_HEAD.size
_BODY = slice(_BODY_AT, -CHECKSUM_SIZE)
#: A plain record's bytes besides its body.
_PLAIN_EXTRA = _BODY_AT + CHECKSUM_SIZE
#: Bodies shorter than this are sliced (a copy); longer ones are read through a memoryview. A copy
#: costs less than the view up to tens of KiB (a 6 KiB embedding decodes 6% faster from bytes).
_COPY_BELOW = 64 * 1024


def _body(raw: bytes) -> bytes | memoryview:
    """A plain record's body: a copy up to tens of KiB, a view beyond."""
    return raw[_BODY] if len(raw) < _COPY_BELOW else memoryview(raw)[_BODY]


def _no_loads(body: Any) -> Any:  # pragma: no cover - replaced by the first route's before any call
    raise AssertionError("no route")
