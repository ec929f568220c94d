"""The value codec: serialize, compress and encrypt behind a versioned header.

    from qcache.codec import Codec, Keyring

    codec = Codec(compressor="lz4", keys=Keyring.from_base64(key_b64))
    data = codec.encode(value, key="ns:search:q1", compress=True, encrypt=True)
    value = codec.decode(data, key="ns:search:q1")   # CodecIntegrityError on bad bytes

:func:`build_codec` and :func:`codec_for_type` build the same from a
:class:`qcache.config.CacheConfig`.
"""

from qcache.codec.compression import (
    Compressor,
    Lz4Compressor,
    NoCompression,
    ZstdCompressor,
    available_compressors,
    create_compressor,
)
from qcache.codec.encryption import AesGcmStage, NonceSource
from qcache.codec.errors import CodecIntegrityError, IntegrityReason
from qcache.codec.factory import any_type_encrypted, build_codec, build_keys, codec_for_type, longest_ttl
from qcache.codec.header import FORMAT_VERSION, MAGIC, Header, parse_header
from qcache.codec.keys import DataKey, KeyListener, Keyring, KeySource, decode_key, encode_key, generate_key, key_id_for
from qcache.codec.keystore import KeyStore, StoredKey
from qcache.codec.pipeline import (
    DEFAULT_COMPRESSION_THRESHOLD,
    DEFAULT_MAX_VALUE_BYTES,
    CacheTypeCodec,
    Codec,
)
from qcache.codec.registry import (
    CustomType,
    TypeRegistry,
    default_registry,
    register_dataclass,
    register_type,
)
from qcache.codec.rotation import RotatingKeyring
from qcache.codec.serializer import MsgpackSerializer, Serializer
from qcache.codec.signed_pickle import SignedPickleSerializer
from qcache.codec.stats import CodecStats, CodecStatsSnapshot

__all__ = [
    "DEFAULT_COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_VALUE_BYTES",
    "FORMAT_VERSION",
    "MAGIC",
    "AesGcmStage",
    "CacheTypeCodec",
    "Codec",
    "CodecIntegrityError",
    "CodecStats",
    "CodecStatsSnapshot",
    "Compressor",
    "CustomType",
    "DataKey",
    "Header",
    "IntegrityReason",
    "KeyListener",
    "KeySource",
    "KeyStore",
    "Keyring",
    "Lz4Compressor",
    "MsgpackSerializer",
    "NoCompression",
    "NonceSource",
    "RotatingKeyring",
    "Serializer",
    "SignedPickleSerializer",
    "StoredKey",
    "TypeRegistry",
    "ZstdCompressor",
    "any_type_encrypted",
    "available_compressors",
    "build_codec",
    "build_keys",
    "codec_for_type",
    "create_compressor",
    "decode_key",
    "default_registry",
    "encode_key",
    "generate_key",
    "key_id_for",
    "longest_ttl",
    "parse_header",
    "register_dataclass",
    "register_type",
]
