"""The in-process L1 tier and its eviction policies."""

from qcache.memory.clock import Clock, ManualClock
from qcache.memory.partition import DEFAULT_PARTITION, Partition
from qcache.memory.store import MemoryStats, MemoryStore, StoredEntry

__all__ = [
    "DEFAULT_PARTITION",
    "Clock",
    "ManualClock",
    "MemoryStats",
    "MemoryStore",
    "Partition",
    "StoredEntry",
]
