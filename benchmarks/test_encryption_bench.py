"""Encryption: none and AES-256-GCM through the codec, per payload size.

Each benchmark is one encode + decode round trip of a search-results value
(the kind most often encrypted) without compression, so the difference
between the two codec rows is the price of encryption, and the raw
``AESGCM.encrypt`` + ``decrypt`` of the same serialized bytes (fresh nonce,
the cache key as associated data) sits beside them as the baseline.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from bench_support import SIZES, payload, small_value
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qcache.codec import Codec, Keyring, MsgpackSerializer, generate_key

KEY = "qcache:_:search:bench-encryption"
SIZE_CASES = ["200B", *SIZES]


def value_of(size: str) -> Any:
    """The ~200 B project dict, or search results of about ``size``."""
    return small_value() if size == "200B" else payload("search", size)


def group(size: str) -> str:
    return f"encryption: search results ~{size} (encode + decode)"


@pytest.mark.parametrize("size", SIZE_CASES)
@pytest.mark.parametrize("encryption", ["none", "aes-gcm"])
def test_codec_round_trip(benchmark: Any, encryption: str, size: str) -> None:
    value = value_of(size)
    codec = Codec(compressor="none", keys=Keyring([generate_key()]))
    encrypt = encryption == "aes-gcm"
    benchmark.group = group(size)
    back = benchmark(lambda: codec.decode(codec.encode(value, key=KEY, encrypt=encrypt), key=KEY))
    assert back == value
    stored = codec.encode(value, key=KEY, encrypt=encrypt)
    if encrypt:
        assert MsgpackSerializer().dumps(value) not in stored
    benchmark.extra_info.update(encryption=encryption, size=size, stored_bytes=len(stored))


@pytest.mark.parametrize("size", SIZE_CASES)
def test_raw_aesgcm_round_trip(benchmark: Any, size: str) -> None:
    """Baseline: a fresh 12-byte nonce, ``AESGCM.encrypt``, then ``decrypt`` of the result."""
    data = MsgpackSerializer().dumps(value_of(size))
    aead = AESGCM(generate_key())
    aad = KEY.encode()
    urandom = os.urandom

    def round_trip() -> bytes:
        nonce = urandom(12)
        return aead.decrypt(nonce, aead.encrypt(nonce, data, aad), aad)

    benchmark.group = group(size)
    assert benchmark(round_trip) == data
    benchmark.extra_info.update(size=size, serialized_bytes=len(data))
