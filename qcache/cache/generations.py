"""Write generations: whether a write or delete may have landed on a key since a read began.

An L2 read notes its key's generation before it starts and fills L1 only if
no write, delete or invalidation touched the key meanwhile; else it would put
back the value that was just deleted or overwritten. Keys share counters by
hash slot (a false "changed" only costs one L1 fill); the epoch covers
operations on many keys at once.
"""

from __future__ import annotations

_SLOTS = 4096
#: ``slots[hash(skey) & SLOT_MASK]`` is the counter of ``skey``.
SLOT_MASK = _SLOTS - 1


class WriteGenerations:
    """One counter per slot of storage-key hashes, plus an epoch for every key at once.

    ``slots`` is public so that the write hot path can bump a counter inline:
    a method call there costs a measurable share of a write-back ``set``.
    """

    __slots__ = ("_epoch", "slots")

    def __init__(self) -> None:
        self.slots = [0] * _SLOTS
        self._epoch = 0

    def token(self, skey: str) -> int:
        """The write generation of ``skey``: changes whenever a write or delete of the key may have landed."""
        return self.slots[hash(skey) & SLOT_MASK] + self._epoch  # both only grow: the sum changes too

    def bump(self, skey: str) -> None:
        """Mark ``skey`` written: L2 reads already in flight must not fill L1 with what they got."""
        self.slots[hash(skey) & SLOT_MASK] += 1

    def bump_all(self) -> None:
        """As :meth:`bump`, for every key (pattern invalidation, clear, level switches)."""
        self._epoch += 1
