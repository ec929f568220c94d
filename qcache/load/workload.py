"""What the load users ask for: keys drawn from a Zipf distribution and values of a chosen kind.

Drawing a key must cost far less than the cache call it feeds, so keys are
drawn from a precomputed table in blocks of :data:`BLOCK` with numpy and the
key strings are built once. Values are built once per size as well: a load
test measures the cache, not the workload generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from qcache.errors import ConfigError

BLOCK = 8192
EMBEDDING_DIM = 1536
ValueKind = Literal["dict", "embedding"]


@dataclass(frozen=True)
class Workload:
    """The shape of the traffic, from Locust's custom arguments.

    ``keys`` distinct keys, ranked by popularity with Zipf exponent ``zipf_s``
    (0 is uniform); values of about ``value_bytes`` serialized bytes;
    ``hot_keys`` most popular keys written before the load starts (0: a cold
    cache); ``read_ratio`` of operations are reads.
    """

    keys: int = 10_000
    zipf_s: float = 1.0
    value_bytes: int = 200
    hot_keys: int = 1_000
    read_ratio: float = 0.95
    ttl_s: float = 600.0

    def __post_init__(self) -> None:
        problems = []
        if self.keys < 1:
            problems.append(f"keys must be at least 1, got {self.keys}")
        if not 0 <= self.zipf_s <= 10:
            problems.append(f"zipf_s must be within 0..10, got {self.zipf_s}")
        if self.value_bytes < 1:
            problems.append(f"value_bytes must be at least 1, got {self.value_bytes}")
        if not 0 <= self.hot_keys <= self.keys:
            problems.append(f"hot_keys must be within 0..keys ({self.keys}), got {self.hot_keys}")
        if not 0 <= self.read_ratio <= 1:
            problems.append(f"read_ratio must be within 0..1, got {self.read_ratio}")
        if not self.ttl_s > 0:
            problems.append(f"ttl_s must be positive, got {self.ttl_s}")
        if problems:
            raise ConfigError("invalid load workload: " + "; ".join(problems))

    def describe(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "zipf_s": self.zipf_s,
            "value_bytes": self.value_bytes,
            "hot_keys": self.hot_keys,
            "read_ratio": self.read_ratio,
            "ttl_s": self.ttl_s,
        }


class ZipfKeys:
    """Keys ``k0`` (most popular) to ``k{n-1}``, drawn with probability proportional to 1 / rank**s."""

    def __init__(self, n: int, s: float, *, prefix: str = "k", seed: int | None = None) -> None:
        if n < 1:
            raise ConfigError(f"a key space needs at least one key, got {n}")
        ranks = np.arange(1, n + 1, dtype=np.float64)
        weights = ranks ** (-s)
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0
        self.keys = [f"{prefix}{i}" for i in range(n)]
        self._rng = np.random.default_rng(seed)
        self._block: Iterator[int] = iter(())

    def probability(self, rank: int) -> float:
        """The chance that one draw is the key of 0-based ``rank``."""
        low = self._cdf[rank - 1] if rank else 0.0
        return float(self._cdf[rank] - low)

    def _refill(self) -> Iterator[int]:
        indices = np.searchsorted(self._cdf, self._rng.random(BLOCK), side="right")
        return iter(np.minimum(indices, len(self.keys) - 1).tolist())

    def index(self) -> int:
        """The 0-based rank of the next key."""
        for i in self._block:
            return int(i)
        self._block = self._refill()
        return int(next(self._block))

    def next(self) -> str:
        """The next key."""
        return self.keys[self.index()]

    def batch(self, size: int) -> list[str]:
        """``size`` distinct keys (fewer when the key space is smaller), in draw order."""
        wanted = min(size, len(self.keys))
        seen: dict[str, None] = {}
        attempts = 0
        while len(seen) < wanted and attempts < wanted * 50:
            seen[self.next()] = None
            attempts += 1
        if len(seen) < wanted:  # a very skewed space: top up with keys in rank order
            for key in self.keys:
                if len(seen) == wanted:
                    break
                seen.setdefault(key, None)
        return list(seen)


def make_value(kind: ValueKind, value_bytes: int, seed: int = 0) -> Any:
    """One value: a small dict of about ``value_bytes`` serialized bytes, or a float32 embedding.

    Embeddings are :data:`EMBEDDING_DIM` float32 numbers (6 KiB) whatever
    ``value_bytes`` says, as the services that cache them store them.
    """
    if kind == "embedding":
        rng = np.random.default_rng(seed)
        return rng.standard_normal(EMBEDDING_DIM).astype(np.float32)
    if kind == "dict":
        # msgpack adds about 40 bytes of keys and headers around the payload.
        return {"id": seed, "score": 0.5, "tags": ["load", "test"], "payload": "x" * max(0, value_bytes - 40)}
    raise ConfigError(f"unknown value kind {kind!r}; choose dict or embedding")
