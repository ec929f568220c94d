"""TinyLFU's frequency estimate: a 4-bit count-min sketch with aging and a doorkeeper."""

from __future__ import annotations

import zlib
from collections.abc import Hashable

_MASK64 = (1 << 64) - 1
_SALT = 0x2545F4914F6CDD1D
# Re-mixes the hash for the doorkeeper, whose probes then do not line up with the rows.
_DOORKEEPER_MIX = 0xFF51AFD7ED558CCD
_MAX_COUNT = 15
#: The largest value a counter holds (4 bits).
MAX_COUNT = _MAX_COUNT
# Byte translation tables applied to the whole counter table at once (C speed).
_HALVE = bytes(value >> 1 for value in range(256))
_ODD = bytes(value & 1 for value in range(256))

DEPTH = 4

#: A key's positions: four counter indexes, then (byte, bit) twice for the doorkeeper.
Slots = tuple[int, int, int, int, int, int, int, int]


def stable_key(key: Hashable) -> Hashable:
    """``key`` with str and bytes replaced by a 64-bit checksum that is the same in every process.

    Python salts ``hash()`` of str and bytes per process (PYTHONHASHSEED), so
    hashing them directly would make the sketch's collisions -- and with them
    W-TinyLFU's hit ratios -- differ from run to run. ints (and tuples of
    them) already hash deterministically and pass through untouched, which
    keeps the common simulator case free of the checksum's cost. Other keys
    are as reproducible as their own ``hash()``.
    """
    kind = type(key)
    if kind is int:
        return key
    if kind is str:
        try:
            data = key.encode()  # type: ignore[attr-defined]  # `type(key) is str`, which mypy does not narrow on
        except UnicodeEncodeError:  # lone surrogates: still a key, still hashable
            data = key.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]  # as above
    elif isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    elif isinstance(key, str):
        data = str(key).encode("utf-8", "surrogatepass")
    else:
        return key
    # CRC-32 and Adler-32 are unrelated checksums, so together they separate keys
    # about as well as a 64-bit hash, at half the cost of a BLAKE2b digest (this
    # runs on every miss). The sketch's salted tuple hash then mixes the result.
    return (_crc32(data) << 32) | _adler32(data)


_crc32 = zlib.crc32
_adler32 = zlib.adler32


def _ceil_pow2(value: int) -> int:
    """Smallest power of two >= ``value`` (at least 1)."""
    return 1 << max(0, (value - 1).bit_length())


class FrequencySketch:
    """Approximate access counts of the recent past, in a few dozen bytes per cached entry.

    * **Count-min, 4 rows of 4-bit counters**: an estimate is the minimum of
      the key's four counters, so collisions can only over-count, and 15 is
      plenty to rank a candidate against a victim.
    * **Aging**: after ``sample_factor x capacity`` recorded accesses every
      counter is halved, so yesterday's favourite fades instead of pinning
      itself in the cache forever (Caffeine's "reset").
    * **Doorkeeper**: a Bloom filter absorbs each key's first access in the
      period; only repeat visitors reach the counters. One-hit wonders (many
      of the keys on real traces) then no longer pollute the counters, which
      makes the small sketch more accurate. It is cleared at each aging step.

    Hashing goes through ``hash((key, salt))`` -- CPython mixes tuple hashes
    well even for small ints, whose own hash is the identity -- and the four
    row indexes are cut from one or two such 64-bit hashes. str and bytes
    keys are first replaced by a fixed 64-bit checksum (:func:`stable_key`),
    so results do not depend on the process's hash seed.
    """

    __slots__ = (
        "_additions",
        "_salt",
        "_door",
        "_door_mask",
        "_door_shift",
        "_doorkeeper",
        "_mask",
        "_row_bits",
        "_sample_size",
        "_table",
        "_two_hashes",
        "_width",
    )

    def __init__(
        self,
        capacity: int,
        *,
        sample_factor: float = 10.0,
        width_factor: int = 4,
        doorkeeper: bool = True,
        seed: int = 0,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        if sample_factor <= 0:
            raise ValueError(f"sample_factor must be positive, got {sample_factor!r}")
        if width_factor <= 0:
            raise ValueError(f"width_factor must be positive, got {width_factor!r}")
        # A per-instance salt: another seed gives other collisions (and resists crafted keys).
        self._salt = (_SALT ^ seed) & _MASK64
        self._width = _ceil_pow2(max(64, capacity * width_factor))
        self._mask = self._width - 1
        self._row_bits = self._width.bit_length() - 1
        self._two_hashes = DEPTH * self._row_bits > 64
        self._table = bytearray(DEPTH * self._width)
        self._sample_size = max(1, int(sample_factor * capacity))
        self._additions = 0
        self._doorkeeper = doorkeeper
        # 8 to 16 bits per access of a period: with two probes, at most ~5% false positives.
        door_bits = _ceil_pow2(max(64, 8 * self._sample_size))
        self._door_mask = door_bits - 1
        self._door_shift = 64 - (door_bits.bit_length() - 1)
        self._door = bytearray(door_bits // 8 if doorkeeper else 1)

    @property
    def sample_size(self) -> int:
        """Recorded accesses between two aging steps."""
        return self._sample_size

    def slots(self, key: Hashable) -> Slots:
        """Where ``key`` lives in the sketch: four counters, then two doorkeeper (byte, bit) probes.

        Hashing is the expensive part, so callers that see the same key
        again (the policy, for its resident keys) keep this tuple and use
        :meth:`increment_at` / :meth:`frequency_at`.
        """
        salt = self._salt
        key = stable_key(key)
        h = hash((key, salt)) & _MASK64
        bits, mask, width = self._row_bits, self._mask, self._width
        wide = (h | ((hash((salt, key)) & _MASK64) << 64)) if self._two_hashes else h
        # xor-shift first so the low bits depend on the high ones, then take
        # the best-mixed top bits and a middle slice: unrelated to the rows.
        spread = ((h ^ (h >> 31)) * _DOORKEEPER_MIX) & _MASK64
        first = spread >> self._door_shift
        second = (spread >> 7) & self._door_mask
        return (
            wide & mask,
            width + ((wide >> bits) & mask),
            2 * width + ((wide >> (2 * bits)) & mask),
            3 * width + ((wide >> (3 * bits)) & mask),
            first >> 3,
            1 << (first & 7),
            second >> 3,
            1 << (second & 7),
        )

    def increment(self, key: Hashable) -> None:
        """Record one access to ``key``; age everything when the period is over."""
        self.increment_at(self.slots(key))

    def increment_at(self, slots: Slots) -> None:
        """:meth:`increment` for a key whose :meth:`slots` are known."""
        a, b, c, d, i, bit_i, j, bit_j = slots
        if self._doorkeeper:
            door = self._door
            if not (door[i] & bit_i and door[j] & bit_j):
                door[i] |= bit_i
                door[j] |= bit_j
                self._additions += 1
                if self._additions >= self._sample_size:
                    self.reset()
                return
        table = self._table
        added = False
        if table[a] < _MAX_COUNT:
            table[a] += 1
            added = True
        if table[b] < _MAX_COUNT:
            table[b] += 1
            added = True
        if table[c] < _MAX_COUNT:
            table[c] += 1
            added = True
        if table[d] < _MAX_COUNT:
            table[d] += 1
            added = True
        if added:
            self._additions += 1
            if self._additions >= self._sample_size:
                self.reset()

    def frequency(self, key: Hashable) -> int:
        """Estimated recent accesses of ``key`` (0 to 16; never under-counts within a period)."""
        return self.frequency_at(self.slots(key))

    def frequency_at(self, slots: Slots) -> int:
        """:meth:`frequency` for a key whose :meth:`slots` are known."""
        a, b, c, d, i, bit_i, j, bit_j = slots
        table = self._table
        count = min(table[a], table[b], table[c], table[d])
        if self._doorkeeper:
            door = self._door
            if door[i] & bit_i and door[j] & bit_j:
                count += 1
        return count

    def admits(self, candidate: Slots, victim: Slots) -> bool:
        """TinyLFU's admission test: is the candidate strictly more popular than the victim?

        Ties go to the victim, the resident key: letting a newcomer in on
        equal evidence only churns the cache.
        """
        return self.frequency_at(candidate) > self.frequency_at(victim)

    def reset(self) -> None:
        """Halve every counter and clear the doorkeeper (the aging step)."""
        table = self._table
        # Integer halving drops the odd halves; subtract them as Caffeine does
        # so the next period starts from an honest count.
        odd = table.translate(_ODD).count(1)
        table[:] = table.translate(_HALVE)
        self._additions = max(0, (self._additions - odd // DEPTH) // 2)
        if self._doorkeeper:
            self._door[:] = bytes(len(self._door))

    def clear(self) -> None:
        """Forget everything."""
        self._table[:] = bytes(len(self._table))
        self._additions = 0
        if self._doorkeeper:
            self._door[:] = bytes(len(self._door))
