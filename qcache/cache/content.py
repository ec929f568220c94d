"""Content hashes: a digest of the data an entry was computed from, kept in the entry's record.

``set(key, value, source=data)`` stores the digest of ``data`` with the entry;
``validate(key, current_data)`` recomputes it and drops the entry when the
data changed. The digest covers the whole source: every element of an array
(not a sample, which would miss a change past it), every item of a mapping in
an order that does not depend on insertion, and the type of every scalar, so
``1``, ``1.0``, ``"1"`` and ``b"1"`` differ. What has no canonical byte form
(arbitrary objects, whose ``str`` may hold a memory address) is refused with
a TypeError instead of being hashed in a way that could never match again.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: Bytes of a content digest (BLAKE2b-128): collisions are out of reach for cache validation.
DIGEST_SIZE = 16
_PERSON = b"qcache-source-1"
_LEN = struct.Struct(">Q")
_FLOAT = struct.Struct(">d")


def content_hash(source: object) -> bytes:
    """The digest of ``source``: bytes, str, numbers, None, numpy arrays and containers of them."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_PERSON)
    _feed(digest, source)
    return digest.digest()


def _feed(digest: Any, obj: object) -> None:
    """Add ``obj`` to ``digest``, each form behind its own tag and length so no two forms meet."""
    update = digest.update
    if obj is None:
        update(b"N")
    elif isinstance(obj, bool):
        update(b"T" if obj else b"F")
    elif isinstance(obj, int):
        text = str(obj).encode("ascii")
        update(b"i" + _LEN.pack(len(text)) + text)
    elif isinstance(obj, float):
        update(b"f" + _FLOAT.pack(obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        update(b"s" + _LEN.pack(len(data)) + data)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = obj.tobytes() if isinstance(obj, memoryview) else bytes(obj)
        update(b"b" + _LEN.pack(len(data)) + data)
    elif isinstance(obj, (np.ndarray, np.generic)):
        array = np.ascontiguousarray(obj)
        if array.dtype.hasobject:
            raise TypeError("content_hash cannot hash numpy arrays of Python objects; convert them first")
        header = f"{array.dtype.str}{array.shape}".encode("ascii")
        update(b"a" + _LEN.pack(len(header)) + header + _LEN.pack(array.nbytes))
        update(array.data)
    elif isinstance(obj, Mapping):
        # Sorted by each key's own digest: the order of insertion must not change the hash.
        items = sorted(((content_hash(key), value) for key, value in obj.items()), key=lambda item: item[0])
        update(b"d" + _LEN.pack(len(items)))
        for key_digest, value in items:
            update(key_digest)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        update((b"l" if isinstance(obj, list) else b"t") + _LEN.pack(len(obj)))
        for item in obj:
            _feed(digest, item)
    elif isinstance(obj, (set, frozenset)):
        members = sorted(content_hash(item) for item in obj)
        update(b"S" + _LEN.pack(len(members)) + b"".join(members))
    else:
        raise TypeError(
            f"content_hash cannot hash a {type(obj).__name__}: pass bytes, str, numbers, None, numpy arrays "
            "or lists, tuples, sets and mappings of them (or a digest you computed, as bytes or str)"
        )


class LocalDigests:
    """Storage key -> source digest, for caches with no L2 record to keep it in (``L1_MEMORY``).

    Bounded like :class:`qcache.cache.tags.LocalTagIndex`: whenever it has
    doubled since the last sweep, digests of entries L1 no longer holds go.
    """

    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}
        self._sweep_at = 4096

    def put(self, skey: str, digest: bytes, live: Callable[[str], bool]) -> None:
        """Remember ``skey``'s digest; sweep when the map has doubled."""
        digests = self._digests
        digests[skey] = digest  # one dict store: atomic under the GIL
        if len(digests) >= self._sweep_at:
            kept = {key: value for key, value in list(digests.items()) if live(key)}
            self._digests = kept
            self._sweep_at = max(4096, 2 * len(kept))

    def get(self, skey: str) -> bytes | None:
        """The digest stored for ``skey``, if any."""
        return self._digests.get(skey)

    def __len__(self) -> int:
        return len(self._digests)
