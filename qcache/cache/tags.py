"""Tags: checking the caller's tags, naming their sets, and which local copies each tag covers.

A tag's authoritative member list lives in Redis (see :mod:`qcache.l2.tagging`),
under ``<prefix>:<namespace>:~tag:<tag>``: no cache type can be called
``~tag``, so a tag set never shares a key with an entry. This process also
remembers which of its own L1 entries and write-back writes carry each tag
(:class:`LocalTagIndex`), because those may not be in Redis yet (write-back)
or at all (an L1-only cache).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from qcache.cache.keys import KeyBuilder

#: The type segment of tag set keys.
TAG_TYPE = "~tag"
#: Limits on what a caller may pass: a tag is a name, not a payload.
MAX_TAG_LENGTH = 256
MAX_TAGS_PER_WRITE = 64
#: The local index is swept (members no longer in L1 or the queue dropped) when it doubles past this.
_MIN_SWEEP = 4096


def check_tags(tags: object) -> tuple[str, ...]:
    """The distinct tags of ``tags`` in order; TypeError or ValueError for anything else.

    A lone string is refused rather than read as a collection of one-letter tags.
    """
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        raise TypeError(f"tags must be a collection of str, such as tags=('repo:42',); got {type(tags).__name__}")
    out: dict[str, None] = {}
    for tag in tags:
        if type(tag) is not str:
            if not isinstance(tag, str):
                raise TypeError(f"tags must be str, got {type(tag).__name__}")
            tag = str.__str__(tag)
        if not 0 < len(tag) <= MAX_TAG_LENGTH:
            raise ValueError(f"a tag must have 1 to {MAX_TAG_LENGTH} characters, got {len(tag)}")
        if not tag.isprintable():
            raise ValueError(f"tag {tag[:40]!r} holds a control character")
        out[tag] = None
    if len(out) > MAX_TAGS_PER_WRITE:
        raise ValueError(f"at most {MAX_TAGS_PER_WRITE} tags per call, got {len(out)}")
    return tuple(out)


def tag_keys(keys: KeyBuilder, namespace: str, tags: Iterable[str]) -> tuple[str, ...]:
    """The Redis keys of the sets of ``tags`` in ``namespace`` (long tags hashed, as long keys are)."""
    return tuple(keys.build(namespace, TAG_TYPE, tag)[0] for tag in tags)


class LocalTagIndex:
    """Tag set key -> storage keys of this process's L1 entries and pending writes carrying it.

    Bounded by what is live: whenever it has doubled since the last sweep,
    members that are neither in L1 nor waiting in the write-back queue are
    dropped, with the tags left empty. Thread-safe.
    """

    def __init__(self) -> None:
        self._members: dict[str, dict[str, None]] = {}
        self._size = 0
        self._sweep_at = _MIN_SWEEP
        self._lock = threading.Lock()

    def add(self, tag_set_keys: Iterable[str], skeys: Iterable[str], live: Callable[[str], bool]) -> None:
        """Note that the entries ``skeys`` carry every tag of ``tag_set_keys``."""
        skeys = list(skeys)
        with self._lock:
            for tag_key in tag_set_keys:
                members = self._members.setdefault(tag_key, {})
                before = len(members)
                members.update(dict.fromkeys(skeys))
                self._size += len(members) - before
            if self._size >= self._sweep_at:
                self._sweep(live)

    def take(self, tag_set_keys: Iterable[str]) -> set[str]:
        """Forget the tags ``tag_set_keys``; the storage keys they covered."""
        doomed: set[str] = set()
        with self._lock:
            for tag_key in tag_set_keys:
                members = self._members.pop(tag_key, None)
                if members:
                    doomed.update(members)
                    self._size -= len(members)
        return doomed

    def __len__(self) -> int:
        """Memberships held (an entry with two tags counts twice)."""
        return self._size

    def _sweep(self, live: Callable[[str], bool]) -> None:
        size = 0
        for tag_key in list(self._members):
            kept = {skey: None for skey in self._members[tag_key] if live(skey)}
            if kept:
                self._members[tag_key] = kept
                size += len(kept)
            else:
                del self._members[tag_key]
        self._size = size
        self._sweep_at = max(_MIN_SWEEP, 2 * size)
