"""The state of one cache, shared by every project view of it, and how it follows its configuration.

The behaviour lives in plan objects, one module each: :mod:`~qcache.cache.reads`,
:mod:`~qcache.cache.writes`, :mod:`~qcache.cache.invalidation`,
:mod:`~qcache.cache.flushing` and :mod:`~qcache.cache.observe`. The sync and
async facades run those plans; this module holds what they all read: the
tiers, the switches of the configuration in force, the key locator, the
codec, the metrics, the write-back queue and the write generations.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable

from qcache.cache.coherence import L1Coherence
from qcache.cache.content import LocalDigests
from qcache.cache.entries import EntryCodec
from qcache.cache.failures import FailurePolicy
from qcache.cache.flushing import FlushPlans
from qcache.cache.freshness import FreshnessPlans
from qcache.cache.generations import WriteGenerations
from qcache.cache.invalidation import InvalidationPlans
from qcache.cache.keys import GLOBAL_NAMESPACE, KeyBuilder, check_name
from qcache.cache.locator import DEFAULT_TYPE, KeyLocator, TypeSpec
from qcache.cache.metrics import CacheMetrics, CountsOnlyMetrics, NullMetrics
from qcache.cache.observe import Observability
from qcache.cache.reads import ReadPlans
from qcache.cache.tags import LocalTagIndex, check_tags, tag_keys
from qcache.cache.writeback import WriteBackQueue
from qcache.cache.writes import WritePlans
from qcache.codec import Codec, CodecStats, build_codec, codec_for_type
from qcache.config import CacheConfig, ConfigSnapshot
from qcache.errors import CacheClosedError
from qcache.memory.store import MemoryStore
from qcache.types import CacheLevel, WriteStrategy

#: Distinct (namespace, tags) whose tag set keys are remembered; see :meth:`CacheCore.tag_keys`.
_TAG_KEY_MEMO = 4096
#: Pending write-back writes kept at most (per cache); see :class:`WriteBackQueue`.
DEFAULT_MAX_PENDING_WRITES = 100_000


class CacheCore:
    """State of one cache; shared by every project view of it.

    ``clock`` gives wall-clock seconds (entry expiry stored in Redis must mean
    the same thing in every process); the L1 store has its own monotonic clock.
    """

    def __init__(
        self,
        config: CacheConfig,
        *,
        codec: Codec | None = None,
        l1: MemoryStore | None = None,
        clock: Callable[[], float] = time.time,
        strict: bool = False,
        max_pending_writes: int = DEFAULT_MAX_PENDING_WRITES,
        rng: random.Random | None = None,
    ) -> None:
        snap = config.snapshot()
        self.config = config
        self.strict = strict
        self.clock = clock
        self.codec = codec if codec is not None else build_codec(snap, clock=clock)
        # One set of codec counters for every type, kept across configuration changes.
        self.codec_stats = CodecStats()
        self.keys = KeyBuilder(snap.core.key_prefix, snap.core.max_key_length, snap.core.schema_version)
        self.locator = KeyLocator(self.keys)
        self.metrics: CacheMetrics = (
            NullMetrics() if not snap.monitoring.metrics_enabled
            else CacheMetrics() if snap.monitoring.performance_monitoring
            else CountsOnlyMetrics()
        )
        if l1 is None and snap.core.level.uses_l1:
            l1 = MemoryStore(
                max_entries=snap.memory.max_size,
                max_bytes=snap.memory.max_memory_mb * 1024 * 1024,
                policy=snap.memory.eviction_policy,
                cleanup_interval=float(snap.memory.cleanup_interval),
            )
        self.l1 = l1
        self.pending = WriteBackQueue(max_pending_writes)
        self.generations = WriteGenerations()
        #: Set by the facade while an invalidation listener keeps L1 coherent (see qcache.cache.coherence).
        self.coherence: L1Coherence | None = None
        self.tag_index = LocalTagIndex()
        self._tag_key_memo: dict[tuple[str, tuple[object, ...]], tuple[str, ...]] = {}
        self.local_digests = LocalDigests()
        self.failures = FailurePolicy(self.metrics, strict)
        self.entries = EntryCodec(clock, self.metrics, rng or random.Random())
        #: Set by the owning facade's close(); every later operation raises CacheClosedError.
        self.closed = False
        # The switches of the configuration in force, set by _apply().
        self.enabled = False
        self.level = CacheLevel.BOTH
        self.use_l1 = False
        #: ``enabled and use_l1``: whether an L1 hit may be served (the sync facade's get reads only this).
        self.serve_l1 = False
        self.use_l2 = False
        self.strategy = WriteStrategy.WRITE_THROUGH
        #: Whether a ``set`` writes L2 during the call (else it only touches L1 and the queue).
        self.writes_l2_now = False
        self.isolation = True
        self.batch_size = 1
        #: MEMORY_CACHE_TTL: no L1 copy of a Redis entry outlives it, whatever the entry's TTL (coherence's safety net).
        self.l1_max_ttl = 3600.0
        self.latency_threshold_ms = 0.0
        self.hit_rate_threshold = 0.0
        self._applied = False
        self._apply(snap)
        self.reads = ReadPlans(self)
        self.writes = WritePlans(self)
        self.invalidation = InvalidationPlans(self)
        self.flushing = FlushPlans(self)
        self.freshness = FreshnessPlans(self)
        self.observability = Observability(self)
        self._unsubscribe = config.on_change(lambda cfg, _changes: self._apply(cfg.snapshot()))

    def _apply(self, snap: ConfigSnapshot) -> None:
        """Adopt a (new) configuration snapshot: switches, levels, TTLs and per-type codecs."""
        core = snap.core
        l1 = self.l1
        use_l1 = core.level.uses_l1 and l1 is not None
        if self._applied and l1 is not None and use_l1 and core.enabled and not (self.use_l1 and self.enabled):
            # L1 saw none of the writes and deletes made while it was off (or the cache was
            # disabled): whatever it still holds may be stale or deleted.
            self.generations.bump_all()
            l1.clear()
        self._applied = True
        # CACHE_LOG_LEVEL (CACHE_DEBUG_MODE: DEBUG) for the qcache loggers; process-wide, as loggers are.
        logging.getLogger("qcache").setLevel(
            logging.DEBUG if snap.monitoring.debug_mode else logging.getLevelName(snap.monitoring.log_level)
        )
        self.enabled = core.enabled
        self.level = core.level
        self.use_l1 = use_l1
        self.serve_l1 = self.enabled and use_l1
        self.use_l2 = core.level.uses_l2
        strategy = core.write_strategy
        if strategy is WriteStrategy.WRITE_BACK and not self.use_l1:
            strategy = WriteStrategy.WRITE_THROUGH  # nothing to write back from
        self.strategy = strategy
        self.writes_l2_now = self.use_l2 and strategy is not WriteStrategy.WRITE_BACK
        self.isolation = snap.security.project_isolation
        self.entries.ttl_jitter = snap.performance.ttl_jitter
        self.batch_size = snap.performance.batch_size
        # Only copies of Redis entries need the safety net; a memory-only entry lives for its own TTL.
        self.l1_max_ttl = float(snap.memory.ttl) if core.level.uses_l2 else math.inf
        self.latency_threshold_ms = float(snap.monitoring.latency_threshold_ms)
        self.hit_rate_threshold = float(snap.monitoring.hit_rate_threshold)
        types = {
            DEFAULT_TYPE: TypeSpec(
                DEFAULT_TYPE, float(core.default_ttl), codec_for_type(self.codec, snap, None, stats=self.codec_stats)
            )
        }
        for name, settings in snap.cache_types.items():
            codec = codec_for_type(self.codec, snap, name, stats=self.codec_stats)
            types[name] = TypeSpec(name, float(settings.ttl), codec)
        self.locator.set_types(types)
        if l1 is not None:
            # Each type's entries form an L1 partition capped by {TYPE}_CACHE_MAX_SIZE (a store
            # passed in gets the caps too); the untyped "default" one is bounded only globally.
            for name, settings in snap.cache_types.items():
                l1.set_partition_cap(name, settings.max_size)

    def wants_coherence(self) -> bool:
        """Whether L1 copies must follow Redis: both tiers in use and ``MEMORY_CACHE_COHERENCE`` on."""
        return self.l1 is not None and self.level is CacheLevel.BOTH and self.config.memory.coherence

    def close(self) -> None:
        """Stop following the configuration and refuse every later operation."""
        self.closed = True
        self.enabled = False  # the facades' disabled branch is where a closed cache raises
        self.serve_l1 = False
        self._unsubscribe()

    def check_open(self) -> None:
        """Raise :class:`CacheClosedError` once the cache is closed."""
        if self.closed:
            raise CacheClosedError("the cache is closed")

    def spec(self, cache_type: str | None) -> TypeSpec:
        """The settings of ``cache_type`` (None: the default type); ValueError if unknown."""
        return self.locator.spec(cache_type)

    def storage_key(self, namespace: str, spec: TypeSpec, key: str) -> tuple[str, bool]:
        """The storage key of ``key`` in ``namespace`` and whether it is hashed."""
        return self.locator.storage_key(namespace, spec, key)

    def tag_keys(self, namespace: str, tags: object) -> tuple[str, ...]:
        """The Redis keys of the sets of ``tags`` (checked: TypeError or ValueError for bad ones).

        Remembered for tuples of tags, which services pass again and again (a bounded memo).
        """
        if type(tags) is not tuple:
            return tag_keys(self.keys, namespace, check_tags(tags))
        memo = self._tag_key_memo
        found = memo.get((namespace, tags))
        if found is None:
            found = tag_keys(self.keys, namespace, check_tags(tags))
            if len(memo) >= _TAG_KEY_MEMO:
                memo.clear()
            memo[(namespace, tags)] = found
        return found

    def held_locally(self, skey: str) -> bool:
        """Whether this process holds ``skey`` in L1 or in the write-back queue (the tag index's sweep)."""
        l1 = self.l1
        return (l1 is not None and skey in l1) or self.pending.get(skey) is not None

    def namespace_for(self, project: str) -> str:
        """The key namespace of a project view (the global one when isolation is off)."""
        check_name("project name", project)
        return project if self.isolation else GLOBAL_NAMESPACE
