"""Where a caller's key lives: its cache type's settings and its storage key, remembered per namespace."""

from __future__ import annotations

from dataclasses import dataclass

from qcache.cache.inputs import check_key
from qcache.cache.keys import HASHED_MARK, KeyBuilder
from qcache.codec import CacheTypeCodec

#: The type used when a call names none; its TTL is ``CACHE_DEFAULT_TTL``.
DEFAULT_TYPE = "default"
_MAX_REMEMBERED_NAMESPACES = 4096


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """What one cache type needs on the hot path: its name, default TTL and codec."""

    name: str
    ttl: float
    codec: CacheTypeCodec


class KeyLocator:
    """The cache types in force and the storage keys of caller keys.

    ``bases`` maps namespace -> cache type -> (``"<prefix>:<namespace>:<type>:"``,
    spec); it is the same dict for the locator's lifetime (cleared, never
    replaced, when the types change), so the L1 hot path may hold it.
    """

    __slots__ = ("bases", "keys", "max_key_length", "types")

    def __init__(self, keys: KeyBuilder) -> None:
        self.keys = keys
        self.max_key_length = keys.max_key_length
        self.types: dict[str, TypeSpec] = {}
        self.bases: dict[str, dict[str | None, tuple[str, TypeSpec]]] = {}

    def set_types(self, types: dict[str, TypeSpec]) -> None:
        """Adopt the cache types of a (new) configuration."""
        self.types = types
        self.bases.clear()

    def spec(self, cache_type: str | None) -> TypeSpec:
        """The settings of ``cache_type`` (None: the default type); ValueError if unknown."""
        if cache_type is None:
            return self.types[DEFAULT_TYPE]
        spec = self.types.get(cache_type)
        if spec is None:
            known = ", ".join(sorted(self.types))
            raise ValueError(f"unknown cache type {cache_type!r}; known: {known}")
        return spec

    def type_base(self, namespace: str, cache_type: str | None) -> tuple[str, TypeSpec]:
        """``<prefix>:<namespace>:<type>:`` and the type's spec (remembered); ValueError for an unknown type."""
        spec = self.spec(cache_type)
        found = (self.keys.namespace_base(namespace) + self.keys.type_segment(spec.name) + ":", spec)
        bases = self.bases
        if len(bases) >= _MAX_REMEMBERED_NAMESPACES:
            bases.clear()  # namespaces are per project; bound the memory if there are very many
        bases.setdefault(namespace, {})[cache_type] = found
        return found

    def locate(self, namespace: str, key: str, cache_type: str | None) -> tuple[TypeSpec, str, bool]:
        """The type's spec, the storage key of ``key`` and whether it is hashed (as :meth:`storage_key`)."""
        try:
            base, spec = self.bases[namespace][cache_type]
        except KeyError:
            base, spec = self.type_base(namespace, cache_type)
        if type(key) is not str:
            key = check_key(key)
        elif not key.isascii():
            check_key(key)
        skey = base + key
        if len(skey) <= self.max_key_length and key[:1] != HASHED_MARK:
            return spec, skey, False
        skey, hashed = self.keys.build(namespace, self.keys.type_segment(spec.name), key)
        return spec, skey, hashed

    def storage_key(self, namespace: str, spec: TypeSpec, key: str) -> tuple[str, bool]:
        """The storage key of ``key`` and whether it is a hash of it (keys too long for Redis keys)."""
        return self.keys.build(namespace, self.keys.type_segment(spec.name), check_key(key))

    def namespace_base(self, namespace: str) -> str:
        """``<prefix>:<namespace>:``, the start of every storage key of the namespace."""
        return self.keys.namespace_base(namespace)
