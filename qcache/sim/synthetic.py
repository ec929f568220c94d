"""Seeded synthetic workloads: Zipf, uniform, hot-spot, and scans mixed into any of them.

Each workload is a :class:`~qcache.sim.sources.TraceSource`: it has a name
that records every parameter (so a report says exactly what ran) and yields
integer keys. Generation is vectorised with numpy and fully determined by
the seed, so the same spec always produces the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qcache.sim.errors import SimulationError
from qcache.sim.sources import Key, Trace, TraceSource, as_keys, materialize


def _check_counts(keys: int, requests: int) -> None:
    """Refuse empty, negative or fractional workloads."""
    for label, value in (("keys", keys), ("requests", requests)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SimulationError(f"{label} must be a whole number, got {value!r}")
    if keys <= 0:
        raise SimulationError(f"a workload needs at least one key, got keys={keys}")
    if requests <= 0:
        raise SimulationError(f"a workload needs at least one request, got requests={requests}")


def _scatter(ranks: np.ndarray, keys: int, rng: np.random.Generator) -> list[Key]:
    """Map popularity ranks to shuffled key ids, so popularity is not key order."""
    return as_keys(rng.permutation(keys)[ranks])


@dataclass(frozen=True)
class Zipf:
    """Key of popularity rank *r* requested with probability proportional to 1 / r^exponent.

    Any exponent >= 0 works (0 is uniform); web and database workloads sit
    roughly between 0.6 and 1.2. Sampling inverts the exact finite CDF, so
    unlike ``numpy.random.zipf`` exponents below 1 are fine.
    """

    keys: int
    requests: int
    exponent: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_counts(self.keys, self.requests)
        if not self.exponent >= 0:
            raise SimulationError(f"Zipf exponent must be >= 0, got {self.exponent!r}")

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return f"zipf(exponent={self.exponent:g},keys={self.keys},requests={self.requests},seed={self.seed})"

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        rng = np.random.default_rng(self.seed)
        weights = np.arange(1, self.keys + 1, dtype=np.float64) ** -self.exponent
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        ranks = np.searchsorted(cdf, rng.random(self.requests), side="right")
        np.minimum(ranks, self.keys - 1, out=ranks)  # guard the top float edge
        return _scatter(ranks, self.keys, rng)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class Uniform:
    """Every key equally likely: no policy can beat capacity / keys, a sanity check."""

    keys: int
    requests: int
    seed: int = 0

    def __post_init__(self) -> None:
        _check_counts(self.keys, self.requests)

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return f"uniform(keys={self.keys},requests={self.requests},seed={self.seed})"

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        rng = np.random.default_rng(self.seed)
        return as_keys(rng.integers(0, self.keys, self.requests))

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class HotSpot:
    """A ``hot_fraction`` of the keys receives a ``hot_probability`` share of the requests.

    The classic "80/20" skew, uniform within the hot and the cold set.
    """

    keys: int
    requests: int
    hot_fraction: float = 0.2
    hot_probability: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        _check_counts(self.keys, self.requests)
        if not 0.0 < self.hot_fraction < 1.0:
            raise SimulationError(f"hot_fraction must be in (0, 1), got {self.hot_fraction!r}")
        if not 0.0 <= self.hot_probability <= 1.0:
            raise SimulationError(
                f"hot_probability must be in [0, 1], got {self.hot_probability!r}"
            )

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return (
            f"hotspot(hot_fraction={self.hot_fraction:g},hot_probability={self.hot_probability:g},"
            f"keys={self.keys},requests={self.requests},seed={self.seed})"
        )

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        rng = np.random.default_rng(self.seed)
        hot_keys = min(self.keys - 1, max(1, round(self.keys * self.hot_fraction)))
        hot = rng.random(self.requests) < self.hot_probability
        ranks = np.where(
            hot,
            rng.integers(0, hot_keys, self.requests),
            rng.integers(hot_keys, self.keys, self.requests),
        )
        return _scatter(ranks, self.keys, rng)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class WithScans:
    """``base`` with a sequential scan of ``length`` keys inserted after every ``every`` requests.

    Scan keys come from their own key space (negative ids, never clashing
    with the base workload's). With ``span`` unset every scan reads fresh
    keys, which pollutes recency-based caches; with ``span`` set the scans
    cycle over that many keys, like repeated table scans (a loop that LRU
    handles worst of all).
    """

    base: TraceSource
    every: int
    length: int
    span: int | None = None

    def __post_init__(self) -> None:
        if self.every <= 0 or self.length <= 0:
            raise SimulationError(
                f"scan every and length must be positive, got every={self.every}, length={self.length}"
            )
        if self.span is not None and self.span <= 0:
            raise SimulationError(f"scan span must be positive, got {self.span}")

    @property
    def name(self) -> str:
        """The base's label plus the scan parameters."""
        span = "fresh" if self.span is None else str(self.span)
        return f"{self.base.name}+scan(every={self.every},length={self.length},span={span})"

    def load(self) -> Trace:
        """The base requests with the scans spliced in."""
        base = materialize(self.base).keys
        out: list[Key] = []
        cursor = 0
        for start in range(0, len(base), self.every):
            out.extend(base[start : start + self.every])
            if start + self.every > len(base):
                break
            scan: Sequence[int] = range(cursor, cursor + self.length)
            if self.span is not None:
                scan = [position % self.span for position in scan]
            out.extend(-1 - position for position in scan)
            cursor += self.length
        return Trace(name=self.name, keys=out)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.load().keys)


@dataclass(frozen=True)
class ShiftingWorkingSet:
    """A working set of ``width`` keys that slides forward one key every ``rate`` requests.

    Each request picks a key uniformly in the current set, so a key is
    requested a few times while the set passes over it and never again: the
    recency-dominated regime (an ORM's entity accesses, a session store)
    where LRU is hard to beat and a frequency filter rejects the newcomers
    that will be reused.
    """

    requests: int
    width: int = 1000
    rate: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        _check_counts(self.width, self.requests)
        if self.rate <= 0:
            raise SimulationError(f"rate must be positive, got {self.rate!r}")

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return f"shifting(width={self.width},rate={self.rate},requests={self.requests},seed={self.seed})"

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        rng = np.random.default_rng(self.seed)
        start = np.arange(self.requests, dtype=np.int64) // self.rate
        return as_keys(start + rng.integers(0, self.width, self.requests))

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class RecentReuse:
    """New keys, each re-requested at geometrically distributed distances back in the stream.

    A request is a brand-new key with probability ``new_fraction``; otherwise
    it repeats the request made ``gap`` requests earlier, ``gap`` geometric
    with mean ``mean_gap``. Popularity is inherited from recency, not from a
    fixed ranking: an entity touched now is likely touched again soon, and
    a long gap means the reuse survives only in a large or clever cache.
    """

    requests: int
    new_fraction: float = 0.2
    mean_gap: float = 400.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_counts(1, self.requests)
        if not 0.0 < self.new_fraction <= 1.0:
            raise SimulationError(f"new_fraction must be in (0, 1], got {self.new_fraction!r}")
        if not self.mean_gap >= 1.0:
            raise SimulationError(f"mean_gap must be >= 1, got {self.mean_gap!r}")

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return (f"reuse(new_fraction={self.new_fraction:g},mean_gap={self.mean_gap:g},"
                f"requests={self.requests},seed={self.seed})")

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        rng = np.random.default_rng(self.seed)
        fresh = rng.random(self.requests) < self.new_fraction
        fresh[0] = True
        gaps = rng.geometric(1.0 / self.mean_gap, self.requests).tolist()
        out: list[int] = []
        append = out.append
        next_key = 0
        for position, is_new in enumerate(fresh.tolist()):
            if is_new:
                append(next_key)
                next_key += 1
            else:
                append(out[max(0, position - gaps[position])])
        return list(out)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class Loop:
    """``keys`` keys requested in the same order over and over: LRU's worst case once they outgrow the cache."""

    keys: int
    requests: int

    def __post_init__(self) -> None:
        _check_counts(self.keys, self.requests)

    @property
    def name(self) -> str:
        """Label with every parameter."""
        return f"loop(keys={self.keys},requests={self.requests})"

    def generate(self) -> list[Key]:
        """The requests, as a list of key ids."""
        return as_keys(np.arange(self.requests, dtype=np.int64) % self.keys)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.generate())


@dataclass(frozen=True)
class Phases:
    """Several workloads one after the other, each in its own key space: a mix that changes phase.

    Phase *i*'s integer keys are offset by ``i x 2**40`` (other keys become
    ``(i, key)``), so no key carries over and a policy must notice the
    change of regime by itself.
    """

    parts: tuple[TraceSource, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise SimulationError("Phases needs at least one workload")

    @property
    def name(self) -> str:
        """The phases' labels in order."""
        return "phases(" + ";".join(part.name for part in self.parts) + ")"

    def load(self) -> Trace:
        """The phases' requests, concatenated."""
        out: list[Key] = []
        for index, part in enumerate(self.parts):
            offset = index << 40
            out.extend(
                key + offset if isinstance(key, int) else (index, key)
                for key in materialize(part).keys
            )
        return Trace(name=self.name, keys=out)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.load().keys)
