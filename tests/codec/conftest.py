"""Fixtures for the codec tests: keys, a manual clock and codecs over every stage combination."""

from __future__ import annotations

import pytest

from qcache.codec import Codec, Keyring, available_compressors, generate_key

from .support import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at a fixed instant."""
    return ManualClock()


@pytest.fixture(scope="session")
def key_material() -> bytes:
    """One random AES-256 key for the session."""
    return generate_key()


@pytest.fixture(scope="session")
def keyring(key_material: bytes) -> Keyring:
    """A static keyring holding ``key_material``."""
    return Keyring([key_material])


@pytest.fixture(scope="session")
def codecs(keyring: Keyring) -> dict[str, Codec]:
    """A codec per compression algorithm, threshold 0 so even tiny values try to compress."""
    return {name: Codec(compressor=name, compression_threshold=0, keys=keyring) for name in available_compressors()}

