"""Whether to compress, with which algorithm, from which size; and what encryption costs.

Compression pays for a value kind and size when it stores at most
:data:`MAX_STORED_FRACTION` of the uncompressed bytes and its extra CPU per
round trip (encode + decode, against the codec without compression) stays
under :data:`CPU_SHARE` of a Redis get of that value: the get measured in the
same run, scaled by the value's size in KB (bytes cost time on the wire), so
a saving Redis memory and network feel comes at a CPU price below the round
trip it shrinks. The threshold is the smallest measured size from which it pays at
every larger size; when it pays at no size, compression is switched off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qcache.tune.errors import TuneError
from qcache.tune.evidence import CodecSample, EncryptionSample

MAX_STORED_FRACTION = 0.8
CPU_SHARE = 0.5
#: Thresholds are rounded down to a multiple of this (bytes).
THRESHOLD_STEP = 256
#: Stored fractions this close count as the same saving; the cheaper algorithm then wins.
SAME_BYTES = 0.05


@dataclass(frozen=True)
class Saving:
    """One algorithm on one kind and size, against no compression."""

    algorithm: str
    kind: str
    size: str
    serialized_bytes: int
    stored_fraction: float  # stored bytes / uncompressed stored bytes
    extra_us: float  # CPU added per encode + decode
    pays: bool


@dataclass(frozen=True)
class CompressionChoice:
    figure: str  # the stored fraction that decided
    enabled: bool
    algorithm: str | None
    threshold_bytes: int | None
    savings: tuple[Saving, ...]
    reason: str


def cpu_limit_us(l2_get_us: float, serialized_bytes: int) -> float:
    """The CPU compression may add to a round trip of a value of this size (see the module's rule)."""
    return CPU_SHARE * l2_get_us * max(1.0, serialized_bytes / 1024)


def savings(samples: Sequence[CodecSample], l2_get_us: float | None) -> list[Saving]:
    """Every (algorithm, kind, size) against ``none``, judged by the rule above."""
    none = {(s.kind, s.size): s for s in samples if s.algorithm == "none"}
    found = []
    for sample in samples:
        base = none.get((sample.kind, sample.size))
        if sample.algorithm == "none" or base is None:
            continue
        fraction = sample.stored_bytes / base.stored_bytes
        extra = sample.us - base.us
        cpu_ok = l2_get_us is None or extra <= cpu_limit_us(l2_get_us, sample.serialized_bytes)
        found.append(
            Saving(
                sample.algorithm,
                sample.kind,
                sample.size,
                sample.serialized_bytes,
                fraction,
                extra,
                fraction <= MAX_STORED_FRACTION and cpu_ok,
            )
        )
    return sorted(found, key=lambda s: (s.kind, s.algorithm, s.serialized_bytes))


def _threshold(rows: Sequence[Saving]) -> int | None:
    """Smallest size from which every larger measured size pays (rows of one kind and algorithm)."""
    ordered = sorted(rows, key=lambda s: s.serialized_bytes)
    threshold = None
    for row in reversed(ordered):
        if not row.pays:
            break
        threshold = row.serialized_bytes
    if threshold is None:
        return None
    return max(THRESHOLD_STEP // 4, threshold // THRESHOLD_STEP * THRESHOLD_STEP)


def _nearest(rows: Sequence[Saving], value_bytes: int) -> Saving:
    """The measurement closest to ``value_bytes`` on a log scale (sizes span 100 B to 100 KB)."""
    return min(rows, key=lambda r: abs(math.log(max(r.serialized_bytes, 1)) - math.log(value_bytes)))


def choose_compression(
    samples: Sequence[CodecSample], kind: str, l2_get_us: float | None, value_bytes: int | None = None
) -> CompressionChoice:
    """The algorithm and threshold for values of ``kind`` (one of the measured payload kinds).

    Among the algorithms that pay from some size on, the one storing the
    fewest bytes at ``value_bytes`` (the nearest measured size; over every
    size that pays when it is None) wins; within :data:`SAME_BYTES` of each
    other, the one adding less CPU there does.
    """
    rows = [s for s in savings(samples, l2_get_us) if s.kind == kind]
    if not rows:
        kinds = sorted({s.kind for s in samples})
        raise TuneError(
            f"no compression measurements for values of kind {kind!r}; measured: {', '.join(kinds) or 'none'}"
        )
    all_rows = tuple(rows)
    candidates: list[tuple[str, int, Saving]] = []  # algorithm, threshold, the row it is judged on
    for algorithm in sorted({r.algorithm for r in rows}):
        mine = [r for r in rows if r.algorithm == algorithm]
        threshold = _threshold(mine)
        if threshold is None:
            continue
        paying = [r for r in mine if r.pays]
        judged = _nearest(mine, value_bytes) if value_bytes else min(paying, key=lambda r: r.stored_fraction)
        candidates.append((algorithm, threshold, judged))
    if not candidates:
        best = min(rows, key=lambda r: r.stored_fraction)
        why = (
            f"stores {best.stored_fraction:.2f} of the bytes"
            if best.stored_fraction > MAX_STORED_FRACTION
            else f"adds {best.extra_us:.1f} us per round trip, over {CPU_SHARE:.0%} of a Redis get of that size"
        )
        return CompressionChoice(
            f"at best {best.stored_fraction:.2f} of the bytes stored",
            False,
            None,
            None,
            all_rows,
            f"compression does not pay for {kind} values: at best {best.algorithm} {why} ({best.size})",
        )
    fewest = min(c[2].stored_fraction for c in candidates)
    close = [c for c in candidates if c[2].stored_fraction <= fewest + SAME_BYTES]
    algorithm, threshold, judged = min(close, key=lambda c: (c[2].extra_us, c[1]))
    others = [c[0] for c in candidates if c[0] != algorithm]
    versus = f"; {', '.join(others)} also pays" if others else ""
    return CompressionChoice(
        f"{judged.stored_fraction:.2f} of the bytes stored at {judged.size}",
        True,
        algorithm,
        threshold,
        all_rows,
        f"{algorithm} stores {judged.stored_fraction:.2f} of the bytes of {kind} values of {judged.size} for "
        f"{judged.extra_us:+.1f} us of CPU per round trip, and pays from {threshold:,} B on{versus}",
    )


@dataclass(frozen=True)
class EncryptionCost:
    size: str
    plain_us: float
    encrypted_us: float
    extra_bytes: int

    @property
    def ratio(self) -> float:
        return self.encrypted_us / self.plain_us


def encryption_costs(samples: Sequence[EncryptionSample]) -> list[EncryptionCost]:
    """AES-GCM against no encryption, per measured size."""
    plain = {s.size: s for s in samples if s.encryption == "none"}
    found = []
    for sample in samples:
        base = plain.get(sample.size)
        if sample.encryption != "none" and base is not None and base.us > 0:
            found.append(EncryptionCost(sample.size, base.us, sample.us, sample.stored_bytes - base.stored_bytes))
    return sorted(found, key=lambda c: c.plain_us)
