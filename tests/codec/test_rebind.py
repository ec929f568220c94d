"""Moving a stored value to another key: the checksum follows, the payload stays, encryption refuses."""

from __future__ import annotations

import base64
import os

import pytest

from qcache.codec import CodecIntegrityError
from qcache.codec.factory import build_codec
from qcache.codec.rebind import BoundToKeyError, rebind
from qcache.config import CacheConfig


@pytest.mark.parametrize("value", [{"hits": [1, 2, 3]}, "x" * 5000])  # plain and compressed
def test_a_rebound_value_reads_under_its_new_key_only(value: object) -> None:
    codec = build_codec(CacheConfig())
    stored = codec.encode(value, key="p:_:search:a", compress=True)
    moved = rebind(stored, "p:_:search:a", "q:acme:search:a")
    assert codec.decode(moved, key="q:acme:search:a") == value
    assert moved[:-4] == stored[:-4]  # only the checksum changed
    with pytest.raises(CodecIntegrityError, match="another key"):
        codec.decode(moved, key="p:_:search:a")
    with pytest.raises(CodecIntegrityError, match="another key"):
        rebind(stored, "p:_:search:WRONG", "q:acme:search:a")  # not intact under the claimed key


def test_an_encrypted_value_cannot_move() -> None:
    config = CacheConfig.from_env(None, {}, CACHE_ENCRYPTION_ENABLED=True, ENCRYPTION_KEY_STORE_PATH="",
                                  CACHE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode())
    codec = build_codec(config)
    stored = codec.encode({"secret": 1}, key="p:_:search:a", encrypt=True)
    with pytest.raises(BoundToKeyError):
        rebind(stored, "p:_:search:a", "q:_:search:a")
