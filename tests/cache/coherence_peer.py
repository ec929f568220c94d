"""Process B of the coherence tests: a cache in its own process that changes keys when told to.

Run as ``python coherence_peer.py URL PREFIX FLAVOUR [cluster]`` (``cluster``: URL
is a node of a Redis Cluster). Each line on stdin is a command (``set KEY VALUE [TAG]``,
``delete KEY``, ``pattern GLOB``, ``tags TAG``, ``clear``, ``quit``) on keys of the ``search`` type; after the
cache call returns, the peer answers ``ok`` and the ``time.monotonic()`` of
that moment (the clock is system-wide on Linux, so the test process can
compare it with its own readings).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from qcache import AsyncQueryCache, CacheConfig, QueryCache

#: Every key the peer touches is of this cache type (patterns are then matched against the key alone).
TYPE = "search"


def config(url: str, prefix: str, cluster: bool = False) -> CacheConfig:
    return CacheConfig.from_profile(
        "development", REDIS_URL=url, CACHE_KEY_PREFIX=prefix, CACHE_LEVEL="BOTH", CACHE_PROJECT_ISOLATION="true",
        REDIS_CLUSTER_ENABLED=str(cluster).lower(),
    )


async def run(cache: Any, is_async: bool) -> None:
    async def call(result: Any) -> Any:
        return await result if is_async else result

    print("ready", flush=True)
    for line in sys.stdin:
        op, *args = line.split()
        if op == "set":
            await call(cache.set(args[0], args[1], ttl=600, cache_type=TYPE, tags=tuple(args[2:])))
        elif op == "tags":
            await call(cache.invalidate_tags(*args))
        elif op == "delete":
            await call(cache.delete(args[0], cache_type=TYPE))
        elif op == "pattern":
            await call(cache.invalidate_pattern(args[0], cache_type=TYPE))
        elif op == "clear":
            await call(cache.clear())
        elif op == "quit":
            break
        print(f"ok {time.monotonic()!r}", flush=True)


async def main(url: str, prefix: str, flavour: str, backend: str = "redis") -> None:
    settings = config(url, prefix, backend == "cluster")
    if flavour == "async":
        async with AsyncQueryCache(settings) as acache:
            await run(acache, True)
    else:
        with QueryCache(settings) as cache:
            await run(cache, False)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
