"""TinyLFU's frequency estimate: a 4-bit count-min sketch with aging and a doorkeeper."""

from __future__ import annotations

import zlib
from collections.abc import Hashable

import numpy as np

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


# CPython's hashing of ints and tuples (Objects/longobject.c, Objects/tupleobject.c).
_MODULUS = np.uint64((1 << 61) - 1)
_XXPRIME_1 = np.uint64(11400714785074694791)
_XXPRIME_2 = np.uint64(14029467366897019727)
_XXPRIME_5 = np.uint64(2870177450012600261)
_PAIR_LENGTH_MIX = np.uint64(2 ^ (2870177450012600261 ^ 3527539))
_INT64_MIN = np.iinfo(np.int64).min


def _int_hashes(keys: np.ndarray) -> np.ndarray:
    """``hash(k)`` of each int64 key, as the uint64 bit pattern CPython mixes into a tuple hash."""
    negative = keys < 0
    magnitude = np.where(negative, -keys, keys).astype(np.uint64) % _MODULUS
    signed = np.where(negative, -magnitude.astype(np.int64), magnitude.astype(np.int64))
    signed[signed == -1] = -2
    return signed.astype(np.uint64)


def _pair_hash(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``hash((a, b))`` from the two items' hashes, wrapped to 64 bits as ``& _MASK64`` does."""
    acc = np.full_like(first, _XXPRIME_5)
    for lane in (first, second):
        acc = acc + lane * _XXPRIME_2
        acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
        acc = acc * _XXPRIME_1
    acc = acc + _PAIR_LENGTH_MIX
    acc[acc == np.uint64(_MASK64)] = np.uint64(1546275796)
    return acc


def _int_lanes(keys: np.ndarray) -> np.ndarray | None:
    """:func:`_int_hashes` of int64 keys; None for an array numpy cannot hash as CPython does."""
    if keys.dtype != np.int64 or not len(keys) or bool((keys == _INT64_MIN).any()):
        return None
    return _int_hashes(keys)


def int_pair_hashes(keys: np.ndarray, salt: int) -> np.ndarray | None:
    """``hash((key, salt)) & (2**64 - 1)`` of each int64 key, with numpy; None where that cannot be exact.

    A spot check against ``hash()`` itself guards against an interpreter that
    hashes differently: then the caller hashes key by key.
    """
    lanes = _int_lanes(keys)
    if lanes is None:
        return None
    with np.errstate(over="ignore"):
        hashes = _pair_hash(lanes, np.full_like(lanes, np.uint64(hash(salt) & _MASK64)))
    step = max(1, len(keys) // 16)
    for got, key in zip(hashes[::step].tolist(), keys[::step].tolist(), strict=True):
        if got != hash((key, salt)) & _MASK64:
            return None
    return hashes


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

    def int_slots(self, keys: np.ndarray) -> dict[Hashable, Slots] | None:
        """:meth:`slots` of many int64 keys at once, with numpy; None where that cannot be exact."""
        array = self.int_slot_array(keys)
        if array is None:
            return None
        return dict(zip(keys.tolist(), map(tuple, array.tolist())))

    def int_slot_array(self, keys: np.ndarray) -> np.ndarray | None:
        """:meth:`slots` of many int64 keys as rows of an int64 array; None where that cannot be exact.

        It reproduces CPython's hash of ``(key, salt)`` (the int hash modulo
        2**61 - 1 and the tuple's xxHash-style mixing) on whole arrays, then
        the same cuts as :meth:`slots`. A spot check against :meth:`slots`
        guards against an interpreter that hashes differently: then the
        caller hashes key by key as usual.
        """
        lanes = _int_lanes(keys)
        if lanes is None:
            return None
        salt_lane = np.uint64(hash(self._salt) & _MASK64)
        out = np.empty((len(keys), 8), dtype=np.int64)
        with np.errstate(over="ignore"):
            h = _pair_hash(lanes, np.full_like(lanes, salt_lane))
            bits, mask, width = self._row_bits, np.uint64(self._mask), self._width
            high = _pair_hash(np.full_like(lanes, salt_lane), lanes) if self._two_hashes else None
            for row in range(DEPTH):
                offset = row * bits
                if offset + bits <= 64:
                    index = h >> np.uint64(offset)
                elif offset >= 64:
                    assert high is not None
                    index = high >> np.uint64(offset - 64)
                else:
                    assert high is not None
                    index = (h >> np.uint64(offset)) | (high << np.uint64(64 - offset))
                out[:, row] = (index & mask).astype(np.int64) + row * width
            spread = (h ^ (h >> np.uint64(31))) * np.uint64(_DOORKEEPER_MIX)
            first = (spread >> np.uint64(self._door_shift)).astype(np.int64)
            second = ((spread >> np.uint64(7)) & np.uint64(self._door_mask)).astype(np.int64)
        out[:, 4] = first >> 3
        out[:, 5] = 1 << (first & 7)
        out[:, 6] = second >> 3
        out[:, 7] = 1 << (second & 7)
        for row, key in zip(out[:: max(1, len(keys) // 16)].tolist(), keys[:: max(1, len(keys) // 16)].tolist()):
            if tuple(row) != self.slots(key):
                return None
        return out

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
