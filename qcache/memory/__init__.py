"""The in-process L1 tier and its eviction policies."""

from qcache.memory.clock import Clock, ManualClock
from qcache.memory.store import MemoryStats, MemoryStore, StoredEntry

__all__ = ["Clock", "ManualClock", "MemoryStats", "MemoryStore", "StoredEntry"]
