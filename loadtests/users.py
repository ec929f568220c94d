"""The load users: qcache under typical service traffic, and the raw redis-py baseline.

Pick them the usual Locust ways: class names after the options
(``locust -f loadtests/ ReadHeavyUser RawRedisUser``), ``--class-picker`` in
the web UI, or tags (``--tags read``). The cache is configured as the library
is (``CACHE_*``, ``.env``, ``ENVIRONMENT``); the workload comes from the
custom arguments (``locust -f loadtests/ --help``, or the web UI's form).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import msgpack
from locust import tag, task

from qcache.load.harness import RUNTIME, CacheUser, LoadRuntime, is_hit
from qcache.load.workload import make_value


class _Mix(CacheUser):
    """One key from the Zipf space per task: a read with probability ``read_ratio``, else a write.

    Subclasses say how to read and write (:meth:`read`, :meth:`write`) and
    what to pre-load; ``read_ratio`` None means ``--read-ratio``.
    """

    abstract = True
    read_ratio: ClassVar[float | None] = None

    def on_start(self) -> None:
        super().on_start()
        self.keys = RUNTIME.keys()
        self.reads = self.read_ratio if self.read_ratio is not None else RUNTIME.workload().read_ratio

    def mix(self) -> None:
        key = self.keys.next()
        if random.random() < self.reads:
            self.read(key)
        else:
            self.write(key)

    def read(self, key: str) -> None:
        raise NotImplementedError

    def write(self, key: str) -> None:
        raise NotImplementedError


class _Cached(_Mix):
    """The mix through ``QueryCache.get`` / ``set``, dict values of ``--value-bytes`` (no task: see the users)."""

    abstract = True
    cache_type = "search"

    @classmethod
    def warm(cls, runtime: LoadRuntime, keys: list[str]) -> None:
        value = make_value("dict", runtime.workload().value_bytes)
        runtime.sync_cache().set_many({key: value for key in keys}, cache_type=cls.cache_type)

    def on_start(self) -> None:
        super().on_start()
        self.cache = RUNTIME.sync_cache()
        self.value: Any = make_value("dict", RUNTIME.workload().value_bytes)

    def read(self, key: str) -> None:
        self.timed("get", lambda: self.cache.get(key, cache_type=self.cache_type), is_hit)

    def write(self, key: str) -> None:
        self.timed("set", lambda: self.cache.set(key, self.value, cache_type=self.cache_type))


# Locust users inherit their base's tasks (and their tags), so every user below
# derives from a task-less base and declares its one task itself.


class ReadHeavyUser(_Cached):
    """Reads and writes at ``--read-ratio`` (95/5 by default) over the Zipf key space: a search cache."""

    @tag("read")
    @task
    def get_or_set(self) -> None:
        self.mix()


class WriteHeavyUser(_Cached):
    """80% writes, 20% reads: ingestion refreshing what it caches."""

    cache_type = "project"
    read_ratio = 0.2

    @tag("write")
    @task
    def get_or_set(self) -> None:
        self.mix()


class EmbeddingUser(_Cached):
    """1536-float32 numpy embeddings in the embedding cache type (compressed when the type says so)."""

    cache_type = "embedding"

    @classmethod
    def warm(cls, runtime: LoadRuntime, keys: list[str]) -> None:
        runtime.sync_cache().set_many({key: make_value("embedding", 0, seed=i) for i, key in enumerate(keys)},
                                      cache_type=cls.cache_type)

    def on_start(self) -> None:
        super().on_start()
        self.value = make_value("embedding", 0, seed=1)

    @tag("embedding")
    @task
    def get_or_set(self) -> None:
        self.mix()


class AsyncReadHeavyUser(_Cached):
    """The read-heavy mix through ``AsyncQueryCache`` on the process's asyncio loop."""

    def on_start(self) -> None:
        super().on_start()
        self.async_cache = RUNTIME.async_cache()

    def read(self, key: str) -> None:
        self.timed_async("get", lambda: self.async_cache.get(key, cache_type=self.cache_type), is_hit)

    def write(self, key: str) -> None:
        self.timed_async("set", lambda: self.async_cache.set(key, self.value, cache_type=self.cache_type))

    @tag("async")
    @task
    def get_or_set(self) -> None:
        self.mix()


class MixedUser(CacheUser):
    """``get_or_set`` with a loader that builds the value: the read-through pattern."""

    cache_type = "search"

    def on_start(self) -> None:
        super().on_start()
        self.cache = RUNTIME.sync_cache()
        self.keys = RUNTIME.keys()
        self.value = make_value("dict", RUNTIME.workload().value_bytes)

    @tag("mixed")
    @task
    def get_or_set(self) -> None:
        key = self.keys.next()
        self.timed("get_or_set", lambda: self.cache.get_or_set(key, lambda: self.value, cache_type=self.cache_type))


class BatchUser(_Cached):
    """``get_many`` / ``set_many`` of ``CACHE_BATCH_SIZE`` keys: a service resolving a page of results."""

    def on_start(self) -> None:
        super().on_start()
        self.batch = RUNTIME.config().performance.batch_size

    def read(self, key: str) -> None:
        keys = self.keys.batch(self.batch)
        found = self.timed("get_many", lambda: self.cache.get_many(keys, cache_type=self.cache_type))
        if found is not None:  # the hit rate of a batch is counted key by key
            RUNTIME.recorder.count_outcomes(type(self).__name__, "get_many",
                                            hits=len(found), misses=len(keys) - len(found))

    def write(self, key: str) -> None:
        values = {batch_key: self.value for batch_key in self.keys.batch(self.batch)}
        self.timed("set_many", lambda: self.cache.set_many(values, cache_type=self.cache_type))

    @tag("batch")
    @task
    def get_or_set(self) -> None:
        self.mix()


class RawRedisUser(_Mix):
    """The baseline a user would write by hand: redis-py GET / SET PX with msgpack, no L1.

    Same keys, read ratio, values and TTL as :class:`ReadHeavyUser`, so every
    run carries its own reference. Reported beside the cache, never checked.
    """

    cache_user = False
    request_type = "redis"

    @classmethod
    def warm(cls, runtime: LoadRuntime, keys: list[str]) -> None:
        packed = msgpack.packb(make_value("dict", runtime.workload().value_bytes))
        ttl_ms = int(runtime.workload().ttl_s * 1000)
        with runtime.raw_client().pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(runtime.raw_prefix() + key, packed, px=ttl_ms)
            pipe.execute()

    def on_start(self) -> None:
        super().on_start()
        self.client = RUNTIME.raw_client()
        self.prefix = RUNTIME.raw_prefix()
        self.value = make_value("dict", RUNTIME.workload().value_bytes)
        self.ttl_ms = int(RUNTIME.workload().ttl_s * 1000)

    def _get(self, key: str) -> Any:
        raw = self.client.get(self.prefix + key)
        return None if raw is None else msgpack.unpackb(raw)

    def read(self, key: str) -> None:
        self.timed("get", lambda: self._get(key), is_hit)

    def write(self, key: str) -> None:
        self.timed("set", lambda: self.client.set(self.prefix + key, msgpack.packb(self.value), px=self.ttl_ms))

    @tag("raw", "read")
    @task
    def get_or_set(self) -> None:
        self.mix()
