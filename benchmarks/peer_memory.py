"""Resident memory of an in-process cache holding 100k entries of 1 KiB, measured in a fresh process.

Run as ``python peer_memory.py CACHE [ENTRIES]`` (``qcache``, ``cachetools``,
``cachebox`` or ``theine``); prints one JSON object: the resident bytes the
process gained while the entries were made and stored, per entry (key,
value and the cache's own bookkeeping; what a service pays for each entry).
A fresh process per cache, so one cache's freed memory is never counted
for the next. Linux only (``/proc/self/statm``); elsewhere it prints an error.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import sys
from collections.abc import Callable
from typing import Any

VALUE_BYTES = 1024
DEFAULT_ENTRIES = 100_000
TTL = 3600


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def store_for(name: str, entries: int) -> Callable[[str, bytes], Any]:
    """A cache of ``entries`` capacity (already warmed by one write) and how to put into it."""
    if name == "qcache":
        from qcache import CacheConfig, QueryCache

        config = CacheConfig.from_env(env_file=None, environ={}, CACHE_LEVEL="L1_MEMORY",
                                      MEMORY_CACHE_MAX_SIZE=entries + 10, MEMORY_CACHE_MAX_MEMORY_MB=4096,
                                      CACHE_LOG_LEVEL="WARNING")
        cache = QueryCache(config)
        cache.set("warm", b"x", ttl=TTL)
        return lambda key, value: cache.set(key, value, ttl=TTL)
    if name == "cachetools":
        from cachetools import TTLCache

        ttl_cache: TTLCache[str, bytes] = TTLCache(maxsize=entries + 10, ttl=TTL)
        ttl_cache["warm"] = b"x"
        return ttl_cache.__setitem__
    if name == "cachebox":
        import cachebox

        box = cachebox.TTLCache(entries + 10, TTL)
        box["warm"] = b"x"
        return box.insert
    if name == "theine":
        import theine

        tiny = theine.Cache(entries + 10)
        ttl = datetime.timedelta(seconds=TTL)
        tiny.set("warm", b"x", ttl)
        return lambda key, value: tiny.set(key, value, ttl)
    raise SystemExit(f"unknown cache {name!r}")


def measure(name: str, entries: int) -> dict[str, Any]:
    put = store_for(name, entries)
    gc.collect()
    before = resident_bytes()
    for i in range(entries):
        put(f"doc:{i:08d}", os.urandom(VALUE_BYTES))
    gc.collect()
    return {"cache": name, "entries": entries, "bytes_per_entry": (resident_bytes() - before) / entries}


if __name__ == "__main__":
    try:
        result = measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_ENTRIES)
    except ImportError as exc:
        result = {"error": f"not installed: {exc.name}"}
    except OSError as exc:
        result = {"error": f"cannot read resident memory here: {exc}"}
    print(json.dumps(result))
