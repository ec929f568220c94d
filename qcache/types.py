"""Enumerations shared by configuration, tiers and the cache facade."""

from __future__ import annotations

from enum import Enum


class CacheLevel(str, Enum):
    """Which tiers a cache uses."""

    L1_MEMORY = "L1_MEMORY"
    L2_REDIS = "L2_REDIS"
    BOTH = "BOTH"

    @property
    def uses_l1(self) -> bool:
        return self is not CacheLevel.L2_REDIS

    @property
    def uses_l2(self) -> bool:
        return self is not CacheLevel.L1_MEMORY


class WriteStrategy(str, Enum):
    """How a write reaches the tiers."""

    WRITE_THROUGH = "WRITE_THROUGH"  # L1 and L2 within the call
    WRITE_BACK = "WRITE_BACK"  # L1 now, L2 later in batches
    WRITE_AROUND = "WRITE_AROUND"  # L2 only; the next read fills L1
