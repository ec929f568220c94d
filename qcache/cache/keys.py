"""Building storage keys from the prefix, project namespace, cache type and key.

The layout is ``<prefix>:<namespace>:<type>:<key>``. The namespace comes right
after the prefix so that everything one project owns starts with one literal
run, ``<prefix>:<namespace>:``: clearing or pattern-invalidating a namespace is
a single ``SCAN MATCH`` on that escaped run followed by the caller's glob, and
no glob can reach past it. Prefix, namespace and type names are validated to
contain no ``:`` and no glob metacharacters. Keys whose storage form would be
longer than ``max_key_length`` are stored in the hashed form
``<prefix>:<namespace>:<type>:#<digest>``: the digest is SHA-256 of the key as 64
hex digits, or, when that would break ``max_key_length``, its first 160 bits as
32 base32 characters. The limit holds for every key whose
``<prefix>:<namespace>:<type>:#`` leaves room for 32 characters; longer
prefix, project and type names are the caller's choice and are not cut. The
caller's key travels inside the stored record and is compared on every read,
so two keys can never collide.

With ``CACHE_SCHEMA_VERSION`` set, the type segment becomes
``<type>@<version>``: processes of another version (a rolling deploy) neither
read nor overwrite each other's entries, and a new version starts from an
empty cache instead of misreading what the old code stored. Invalidation
(patterns, tags, ``clear``) reaches every version's entries, so no version
can keep serving a value another one deleted.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from qcache.errors import ConfigError

#: Namespace of keys written outside any project view.
GLOBAL_NAMESPACE = "_"
HASHED_MARK = "#"
#: Separates a cache type from the schema version in the type segment of a key.
VERSION_MARK = "@"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # fullmatch: "$" would let a trailing newline in


def check_name(kind: str, name: str) -> str:
    """Validate a prefix, cache type or project name; return it unchanged."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid {kind} {name!r}: use 1-64 characters from letters, digits, '_', '.', '-',"
            " starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    """Turns (namespace, cache type, caller key) into the key stored in both tiers."""

    prefix: str
    max_key_length: int
    schema_version: str = ""

    def __post_init__(self) -> None:
        try:
            check_name("key prefix", self.prefix)
        except ValueError as exc:
            raise ConfigError(f"CACHE_KEY_PREFIX: {exc}") from None
        if self.max_key_length < 32:
            raise ConfigError(
                f"CACHE_MAX_KEY_LENGTH: must be at least 32, got {self.max_key_length}"
            )

    def type_segment(self, cache_type: str) -> str:
        """The segment of a cache type in storage keys: its name, and the schema version if any."""
        return f"{cache_type}{VERSION_MARK}{self.schema_version}" if self.schema_version else cache_type

    def namespace_base(self, namespace: str) -> str:
        """The literal ``<prefix>:<namespace>:`` that starts every key of a namespace."""
        return f"{self.prefix}:{namespace}:"

    def build(self, namespace: str, segment: str, key: str) -> tuple[str, bool]:
        """The storage key for ``key`` under the type segment ``segment`` and whether it is the hashed form.

        The hashed form is used when the plain one would exceed
        ``max_key_length``, and for keys starting with ``#`` (so that no plain
        key can ever look like a hashed one).
        """
        full = f"{self.prefix}:{namespace}:{segment}:{key}"
        if len(full) <= self.max_key_length and not key.startswith(HASHED_MARK):
            return full, False
        base = f"{self.prefix}:{namespace}:{segment}:{HASHED_MARK}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass"))
        if len(base) + 64 <= self.max_key_length:
            return base + digest.hexdigest(), True
        # The same base always picks the same form, so a key is always found where it was stored.
        short = base64.b32encode(digest.digest()[:20]).decode("ascii").lower()
        return base + short, True
