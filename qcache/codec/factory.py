"""Building codecs from :class:`qcache.config.CacheConfig`.

Key handling, in one place:

* ``CACHE_ENCRYPTION_KEY`` (base64 of 32 bytes) is required as soon as any
  cache type is encrypted (the type flag OR ``CACHE_ENCRYPTION_ENABLED``).
* With ``ENCRYPTION_KEY_STORE_PATH`` set, values are encrypted under random
  data keys kept in that directory, wrapped under ``CACHE_ENCRYPTION_KEY`` and
  rotated every ``ENCRYPTION_KEY_ROTATION_INTERVAL`` seconds; a retired key
  stays readable for the longest configured TTL. Processes agree on data keys
  only if they share the directory: on several hosts, share it or leave the
  path empty.
* With the path empty, ``CACHE_ENCRYPTION_KEY`` itself encrypts (rotate it by
  hand; entries under the old key become misses).
* When nothing is encrypted but a key is configured, the keys are still
  loaded (never created) so entries written while encryption was on remain
  readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from qcache.codec.compression import create_compressor
from qcache.codec.keys import Keyring, KeySource, decode_key
from qcache.codec.keystore import KeyStore
from qcache.codec.pipeline import DEFAULT_MAX_VALUE_BYTES, CacheTypeCodec, Codec
from qcache.codec.registry import TypeRegistry
from qcache.codec.rotation import RotatingKeyring
from qcache.codec.signed_pickle import SignedPickleSerializer
from qcache.codec.stats import CodecStats
from qcache.errors import ConfigError

if TYPE_CHECKING:
    from qcache.config import CacheConfig, ConfigSnapshot


class _HasSnapshot(Protocol):
    def snapshot(self) -> ConfigSnapshot: ...


def _snapshot(config: CacheConfig | ConfigSnapshot | _HasSnapshot) -> ConfigSnapshot:
    """One consistent view, so the algorithm and the keys come from the same configuration."""
    snapshot = getattr(config, "snapshot", None)
    if callable(snapshot):
        taken: ConfigSnapshot = snapshot()
        return taken
    return cast("ConfigSnapshot", config)  # without snapshot(), it is one


def any_type_encrypted(config: CacheConfig | ConfigSnapshot) -> bool:
    """Whether some cache type (or the default, untyped one) writes encrypted values."""
    snap = _snapshot(config)
    return snap.security.encryption_enabled or any(t.encryption for t in snap.cache_types.values())


def longest_ttl(config: CacheConfig | ConfigSnapshot) -> int:
    """The longest TTL the configuration gives any entry: how long a retired key must stay readable."""
    snap = _snapshot(config)
    ttls = [t.ttl for t in snap.cache_types.values()] + [snap.core.default_ttl, snap.memory.ttl]
    return max(ttls)


def build_keys(
    config: CacheConfig | ConfigSnapshot, *, clock: Callable[[], float] = time.time
) -> KeySource | None:
    """The keyring for ``config``, or None when no key is configured and none is needed.

    Raises ConfigError when encryption is on without a usable key, or when
    the key store is unreadable, corrupt, too open or wrapped under another key.
    """
    snap = _snapshot(config)
    security = snap.security
    writing = any_type_encrypted(snap)
    secret = security.encryption_key
    if secret is None or not secret.reveal().strip():
        if writing:
            raise ConfigError(
                "encryption is on (CACHE_ENCRYPTION_ENABLED or a {TYPE}_CACHE_ENCRYPTION flag) "
                "but CACHE_ENCRYPTION_KEY is not set"
            )
        return None
    master = decode_key(secret.reveal(), source="CACHE_ENCRYPTION_KEY")
    if not security.key_store_path:
        return Keyring([master])
    return RotatingKeyring(
        KeyStore(security.key_store_path, master_key=master),
        rotation_interval=security.key_rotation_interval,
        clock=clock,
        retention=float(longest_ttl(snap)),
        read_only=not writing,
        extra_keys=[master],
    )


def build_codec(
    config: CacheConfig | ConfigSnapshot,
    *,
    clock: Callable[[], float] = time.time,
    registry: TypeRegistry | None = None,
    pickle_secret: bytes | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> Codec:
    """The codec for ``config``: algorithm, threshold and keys from one snapshot.

    ``pickle_secret`` (at least 32 bytes) enables the signed-pickle fallback
    for values msgpack cannot represent; there is deliberately no environment
    variable for it. ``clock`` drives key rotation (inject one in tests).
    """
    snap = _snapshot(config)
    performance = snap.performance
    return Codec(
        compressor=create_compressor(performance.compression_algorithm),
        compression_threshold=performance.compression_threshold_bytes,
        keys=build_keys(snap, clock=clock),
        registry=registry,
        pickle=SignedPickleSerializer(pickle_secret) if pickle_secret is not None else None,
        max_value_bytes=max_value_bytes,
    )


def codec_for_type(
    codec: Codec,
    config: CacheConfig | ConfigSnapshot,
    cache_type: str | None,
    *,
    stats: CodecStats | None = None,
) -> CacheTypeCodec:
    """``codec`` bound to the flags of ``cache_type`` (None: the global switches).

    Compression needs the type flag AND ``CACHE_COMPRESSION_ENABLED``;
    encryption needs the type flag OR ``CACHE_ENCRYPTION_ENABLED``. With
    ``CACHE_ENCRYPTION_REQUIRED``, a type that encrypts also refuses
    unencrypted entries: anyone who can write to Redis can frame a plaintext
    value with a valid checksum, but not an authentic encrypted one. Off by
    default, so entries written before encryption was switched on stay
    readable. An unknown type name is a ConfigError naming the known ones.
    """
    snap = _snapshot(config)
    if cache_type is None:
        performance = snap.performance
        compress = performance.compression_enabled and performance.compression_algorithm != "none"
        encrypt = snap.security.encryption_enabled
    else:
        compress = snap.compresses(cache_type)
        encrypt = snap.encrypts(cache_type)
    return CacheTypeCodec(
        codec=codec,
        name=cache_type,
        compress=bool(compress),
        encrypt=bool(encrypt),
        require_encryption=bool(encrypt) and snap.security.encryption_required,
        stats=stats if stats is not None else CodecStats(),
    )
