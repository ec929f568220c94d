"""``QueryCache``: the synchronous facade over L1 (memory) and L2 (Redis).

The behaviour lives in the plans (see :mod:`qcache.cache.plans`); this module
runs them on the sync L2 backend and owns what is thread-specific: the
single-flight table for ``get_or_set`` and the write-back flusher thread. The
operations between the two marker lines are derived from the async facade's
(``tests/cache/sync_from_async.py``), which a test keeps in step.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from qcache.cache.coherence import L1Coherence
from qcache.cache.core import CacheCore
from qcache.cache.facade import FacadeBase, SharedState, warm_up
from qcache.cache.flusher import DrainDeadline
from qcache.cache.monitor import HealthMonitor, weakly
from qcache.cache.plans import MISSING, Plan
from qcache.errors import BackendError
from qcache.l2 import L2Backend, RedisClusterTier, RedisTier
from qcache.l2.cluster import sync_tier_from_config
from qcache.l2.cluster_tracking import ClusterTrackingListener
from qcache.l2.core import TierCore
from qcache.l2.tracking import FIRST_CONNECT_WAIT, TrackingListener

logger = logging.getLogger("qcache")

T = TypeVar("T")
#: Namespaces whose get closure is kept (as KeyLocator remembers their key bases).
_MAX_FAST_GETS = 4096


class _Flight:
    """One in-progress ``get_or_set`` load that other threads wait on."""

    __slots__ = ("done", "value", "error", "owner")

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Shared(SharedState[L2Backend]):
    """What every project view of one cache shares, plus the thread-specific parts."""

    def __init__(self, core: CacheCore, tier: L2Backend | None) -> None:
        super().__init__(core, tier, lambda: sync_tier_from_config(core.config, namespace=f"{core.keys.prefix}:"))
        self.flush_lock = threading.Lock()  # a delete never interleaves with a flush batch
        self.flights: dict[str, _Flight] = {}
        self.flights_lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.flusher: threading.Thread | None = None
        #: Each namespace's get closure (see QueryCache._instrument); None where there is no L1.
        self.fast_gets: dict[str, Callable[..., Any] | None] = {}


class QueryCache(FacadeBase[_Shared, L2Backend]):
    """A two-tier cache: an in-process L1 in front of a Redis L2.

    Build it from configuration (``QueryCache(config)`` or ``QueryCache.from_env()``)
    and use it as a context manager, or call :meth:`close`. Every method is
    thread-safe. An L2 failure never reaches the caller: it is a miss (reads)
    or an L1-only write, counted in :meth:`stats` and logged, unless
    ``strict=True``, which raises :class:`qcache.errors.BackendError` instead.
    Bad input (a non-str key, a TTL <= 0, a value the codec cannot encode, an
    unknown cache type) always raises.

    ``tier`` lets tests and benchmarks pass an existing L2 backend (a
    :class:`qcache.l2.RedisTier`, or a :class:`qcache.l2.MemoryBackend`); by
    default a Redis tier is built from the configuration when the level uses L2.
    """

    def _new_tier(self, core: CacheCore) -> L2Backend:
        return sync_tier_from_config(core.config, namespace=f"{core.keys.prefix}:")

    def _new_shared(self, core: CacheCore, tier: L2Backend | None) -> _Shared:
        shared = _Shared(core, tier)
        if isinstance(tier, RedisTier):
            # CACHE_CONNECTION_POOL_SIZE connections, opened now in the background so that the
            # first burst of traffic pays no connects; a Redis that is down only logs here.
            threading.Thread(target=warm_up, args=(tier,), name="qcache-warm-up", daemon=True).start()
        interval = core.config.monitoring.health_check_interval
        if interval > 0:  # CACHE_HEALTH_CHECK_INTERVAL: checks in the background, alerts on changes
            # Its first check comes one interval from now, when this cache is long built.
            shared.monitor = HealthMonitor(weakly(self.health), weakly(self.stats), self._alert_evaluator(),
                                           shared.alert_hooks, interval).start()
        return shared

    def _new_listener(self, tier: TierCore, coherence: L1Coherence) -> TrackingListener:
        wait = min(FIRST_CONNECT_WAIT, self._core.config.redis.connection_timeout)
        # A cluster: one invalidation connection per primary, under a supervisor (see qcache.l2.cluster_tracking).
        if isinstance(tier, RedisClusterTier):
            return ClusterTrackingListener(tier.client, tier.namespace, coherence).start(wait)
        # The connection takes single-key writes too, when free: Redis echoes none of them (qcache.l2.tracking).
        listener = TrackingListener(tier.client, tier.namespace, coherence, quiet_writes=True)
        coherence.writer = listener
        return listener.start(wait)

    def _listening(self) -> None:
        """The sync listener starts with the cache (see ``_start_coherence``): nothing to wait for here."""

    def _instrument(self) -> None:
        """Serve this view's L1 hits without the method's frame, then add the configured wrappers.

        ``get`` becomes an instance attribute: a closure that answers a live L1
        hit itself and hands everything else to the method (see
        :func:`qcache.cache.l1path.l1_hit_paths`). Views of one namespace behave
        alike, so they share one closure (views may be made per request). A
        subclass that overrides ``get`` keeps its own. A cache that writes no
        L2 gets ``set`` the same way (see
        :func:`qcache.cache.l1path.memory_set_function`), unless overridden.
        """
        if type(self).get is QueryCache.get:
            gets = self._shared.fast_gets
            get = gets.get(self._namespace, MISSING)
            if get is MISSING:
                full_get = QueryCache.get.__get__(self)
                get = self._reads.view_get(self._namespace, full_get)
                if get is full_get:  # no L1: nothing to serve without the method
                    get = None
                else:  # the method's name and doc, for help() and wrappers
                    get.__doc__, get.__qualname__ = QueryCache.get.__doc__, QueryCache.get.__qualname__
                if len(gets) >= _MAX_FAST_GETS:
                    gets.clear()  # namespaces are projects; bound the memory if there are very many
                gets[self._namespace] = get
            if get is not None:
                setattr(self, "get", get)  # noqa: B010  # mypy refuses assigning to a method
        core = self._core
        if type(self).set is QueryCache.set and core.l1 is not None and not core.use_l2:
            # A memory-only set in one frame as well: the partial *is* the view's set (see
            # qcache.cache.l1path.memory_set_function); the method takes over if the level changes.
            fast_set = functools.partial(self._writes.memory_set, QueryCache.set.__get__(self), self._namespace)
            fast_set.__doc__ = QueryCache.set.__doc__
            setattr(self, "set", fast_set)  # noqa: B010  # as for get
        super()._instrument()

    # -- begin: derived from aio.py by tests/cache/sync_from_async.py; edit aio.py, then run it --

    # -- running plans -----------------------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        """Drive a plan: run each L2 call it yields on the backend and send the result back in."""
        shared = self._shared
        if shared.listener_idle:
            self._listening()
        try:
            call = next(plan)
            while True:
                try:
                    result = (shared.ops or shared.operations())[call.op](*call.args)
                except BackendError as exc:
                    call = plan.throw(exc)
                except BaseException as exc:
                    # Interrupted or cancelled mid-call: the plan undoes its bookkeeping (a write-back
                    # batch it took goes back to the queue), then the exception propagates.
                    with contextlib.suppress(StopIteration):
                        plan.throw(exc)
                    raise
                else:
                    call = plan.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None, *, cache_type: str | None = None) -> Any:
        """The cached value of ``key``, or ``default`` on a miss."""
        core = self._core
        if not core.enabled:
            core.check_open()
            return default
        if core.use_l1:
            value = self._reads.l1_lookup(self._namespace, key, cache_type)
            if value is not MISSING:
                return value
        value, state = core.reads.get_begin(self._namespace, key, cache_type, default, l1_checked=True)
        if state is None:
            return value
        if self._shared.listener_idle:
            self._listening()
        try:
            raw = (self._shared.tier or self._shared.l2()).get(state.skey)
        except BackendError as exc:
            core.failures.l2_failed("get", exc)
            raw = None
        return core.reads.get_end(state, raw, default)

    def get_many(self, keys: Iterable[str], *, cache_type: str | None = None) -> dict[str, Any]:
        """``{key: value}`` for the keys that hit; L2 is read with chunked MGETs."""
        if not self._core.enabled:
            self._core.check_open()
            return {}
        return self._run(self._core.reads.plan_get_many(self._namespace, keys, cache_type))

    # -- writes ------------------------------------------------------------------------------

    def set(
        self, key: str, value: Any, ttl: float | None = None, *, cache_type: str | None = None,
        tags: Iterable[str] = (), source: object = None,
    ) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the cache type's TTL).

        ``tags`` name the entry for :meth:`invalidate_tags`; ``source`` is the
        data the value was computed from, whose digest :meth:`validate` checks.
        """
        core = self._core
        if not core.enabled:
            core.check_open()
            return
        if core.writes_l2_now:
            # No flush lock: a key with a write or invalidation still on its way to L2 is queued
            # behind it by the plan (see WritePlans.plan_set), so a hung flush never holds us up.
            try:
                self._run(core.writes.plan_set(self._namespace, key, value, ttl, cache_type, tags, source))
            finally:
                self._after_write()  # an L2 write that failed, or queued, goes with the flusher
        elif core.use_l2:  # write-back, nothing to send now: no generator to drive (see WritePlans.set_begin)
            if self._shared.listener_idle:
                self._listening()  # before L1 takes the value: tracking coming up would flush it
            writes = self._writes
            writes.set_end(writes.set_begin(self._namespace, key, value, ttl, cache_type, tags, source))
            self._after_write()
        else:  # memory only: no record to build (and checked here, so no fallback)
            self._writes.memory_set(None, self._namespace, key, value, ttl, cache_type=cache_type, tags=tags,
                                    source=source)

    def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, *, cache_type: str | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Store many values, each with every tag of ``tags``; every value is encoded before anything is written."""
        core = self._core
        if not core.enabled:
            core.check_open()
            return
        try:
            self._run(core.writes.plan_set_many(self._namespace, items, ttl, cache_type, tags))  # as in set()
        finally:
            self._after_write()

    def delete(self, key: str, *, cache_type: str | None = None) -> bool:
        """Remove ``key`` from both tiers (and any pending write-back); True if something was removed.

        When Redis cannot be reached, the delete is kept and retried until it
        lands (also by ``flush()`` and ``close()``), and this process never
        reads the key from L2 meanwhile; the result then covers L1 and the
        queue only. Strict mode raises the error after queuing it.
        """
        # Works while CACHE_ENABLED=false too: an invalidation must never be lost.
        self._core.check_open()
        try:
            with self._shared.flush_lock:
                return self._run(self._core.writes.plan_delete(self._namespace, key, cache_type))
        finally:
            self._after_write()

    def invalidate_pattern(self, pattern: str, *, cache_type: str | None = None) -> int:
        """Delete this namespace's keys matching a Redis glob; returns how many were removed.

        The glob is matched against the keys as the caller gave them
        (``"features:*AAPL*"`` drops ``"features:AAPL:1"``), in every cache
        type; ``cache_type`` narrows it to one (``invalidate_pattern("*",
        cache_type="search")`` drops every search result). When Redis cannot
        be reached, the L2 part is kept and retried as :meth:`delete` does;
        the count then covers L1 and the queue only.
        """
        self._core.check_open()  # works while disabled, as delete()
        try:
            with self._shared.flush_lock:
                return self._run(
                    self._core.invalidation.plan_invalidate(self._namespace, pattern, cache_type)
                )
        finally:
            self._after_write()

    def validate(self, key: str, current_source: object, *, cache_type: str | None = None) -> bool:
        """Whether ``key``'s entry was computed from ``current_source`` (as passed to ``set(source=)``).

        When not (the source changed, or the entry has no digest), the entry
        is deleted and the answer is False, so the caller recomputes it.
        """
        self._core.check_open()
        try:
            with self._shared.flush_lock:
                return self._run(
                    self._core.freshness.plan_validate(self._namespace, key, current_source, cache_type)
                )
        finally:
            self._after_write()  # a delete that could not reach L2 is queued, as in delete()

    def invalidate_tags(self, *tags: str) -> int:
        """Delete this namespace's entries written with any of ``tags``; returns how many were removed.

        Works across processes: membership lives in Redis, in one sorted set
        per tag that is pruned as its entries expire. When Redis cannot be
        reached it is kept and retried as :meth:`delete` does, and meanwhile
        no entry of this namespace is read from L2 (only Redis knows which
        carry the tags).
        """
        self._core.check_open()  # works while disabled, as delete()
        try:
            with self._shared.flush_lock:
                return self._run(self._core.invalidation.plan_invalidate_tags(self._namespace, tags))
        finally:
            self._after_write()

    def clear(self) -> int:
        """Delete every key of this namespace in both tiers (SCAN + UNLINK, never FLUSHDB).

        Works even while ``CACHE_ENABLED=false``, so stale entries can be
        dropped before the cache is switched back on. Kept and retried when
        Redis cannot be reached, as :meth:`invalidate_pattern`.
        """
        self._core.check_open()
        try:
            with self._shared.flush_lock:
                return self._run(self._core.invalidation.plan_clear(self._namespace))
        finally:
            self._after_write()

    # -- write-back --------------------------------------------------------------------------

    def _drain(self) -> None:
        # The queue is checked under the lock: a batch another flush holds in flight is either
        # sent or put back by the time the lock is free, so returning means it reached L2.
        core = self._core
        while True:
            with self._shared.flush_lock:
                if not core.pending.queued:
                    return
                self._run(core.flushing.plan_flush_batch(core.batch_size))

    def flush(self, timeout: float | None = None) -> int:
        """Write every pending write-back value to L2; returns how many are still pending.

        Retries until ``timeout`` (seconds; None: a single attempt) while L2
        fails; 0 means everything has reached L2.
        """
        self._core.check_open()
        return self._flush(timeout)

    def _flush(self, timeout: float | None) -> int:
        deadline = DrainDeadline(timeout)
        while True:
            try:
                self._drain()
                return 0
            except BackendError as exc:
                if deadline.expired():
                    return self._core.flushing.gave_up(exc)
                time.sleep(deadline.pause())

    # -- observability -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Probe both tiers: ``{"status": "healthy" | "degraded" | "unhealthy", "reasons": [...], ...}``."""
        self._core.check_open()
        return self._stamp(self._run(self._core.observability.plan_probe()))

    # -- end of the shared operations --

    # -- single-flight -----------------------------------------------------------------------

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        *,
        cache_type: str | None = None,
        cache_none: bool = False,
    ) -> Any:
        """The cached value, or ``loader()``'s result stored and returned.

        Concurrent callers asking for the same missing key share one call of
        ``loader``; if it raises, every waiter gets the exception and nothing
        is cached. ``None`` results are cached only with ``cache_none=True``.
        """
        value = self.get(key, MISSING, cache_type=cache_type)
        if value is not MISSING:
            return value
        shared = self._shared
        spec = self._core.spec(cache_type)
        flight_key = self._core.storage_key(self._namespace, spec, key)[0]
        with shared.flights_lock:
            flight = shared.flights.get(flight_key)
            leader = flight is None
            if leader:
                flight = shared.flights[flight_key] = _Flight()
        assert flight is not None
        if not leader:
            if flight.owner == threading.get_ident():
                # The loader asked for its own key: waiting for ourselves would never end.
                raise RuntimeError(f"get_or_set({key!r}) called again from inside its own loader")
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = self._run(self._core.reads.plan_peek(self._namespace, key, cache_type))  # filled meanwhile?
            if value is MISSING:
                value = loader()
                if value is not None or cache_none:
                    self.set(key, value, ttl, cache_type=cache_type)
            flight.value = value
            return value
        except StopIteration as exc:
            # A StopIteration escaping here would end whatever generator our caller is running
            # (and the async twin cannot put one into a future): a RuntimeError, as PEP 479 does.
            error = RuntimeError(f"the loader of get_or_set({key!r}) raised StopIteration")
            error.__cause__ = exc
            flight.error = error
            raise error from exc
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with shared.flights_lock:
                del shared.flights[flight_key]
            flight.done.set()

    # -- write-back flusher ------------------------------------------------------------------

    def _after_write(self) -> None:
        shared = self._shared
        pending = len(self._core.pending)
        if not pending:
            return
        if shared.flusher is None:
            self._start_flusher()
        if pending >= self._core.batch_size and not shared.wake.is_set() and shared.schedule.may_wake():
            shared.wake.set()  # Event.set takes a lock: only when the flusher is not already woken

    def _start_flusher(self) -> None:
        shared = self._shared
        with shared.flights_lock:
            if shared.flusher is not None or shared.closed:
                return
            shared.flusher = threading.Thread(target=self._flush_loop, name="qcache-writeback", daemon=True)
            shared.flusher.start()

    def _flush_loop(self) -> None:
        shared = self._shared
        schedule = shared.schedule
        while not shared.stopping.is_set():
            shared.wake.wait(schedule.delay)
            shared.wake.clear()
            try:
                self._drain()
            except Exception as exc:  # never let the flusher die: writes stay queued, retried later
                schedule.failed(exc)
            else:
                schedule.drained()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Drain pending writes (up to ``timeout`` seconds), stop the flusher, close the tier.

        Closing a project view does nothing; close the cache it came from.
        Afterwards every operation (on the cache and its views) raises
        :class:`qcache.errors.CacheClosedError`, so no write is silently lost;
        ``stats()`` still answers.
        """
        core = self._core
        if not self._owner or core.closed:
            return
        shared = self._shared
        if isinstance(shared.monitor, HealthMonitor):
            shared.monitor.stop(timeout)
        core.close()  # first: a write racing with close() raises instead of being lost
        shared.stopping.set()
        shared.wake.set()
        if shared.flusher is not None:
            shared.flusher.join(timeout)
        try:
            left = self._flush(timeout) if len(core.pending) else 0
        except BackendError:  # strict mode: counted and logged below all the same, and the cache still closes
            left = len(core.pending)
        if left:
            self._count_lost(left)
        shared.closed = True
        self._close_access()
        if isinstance(shared.listener, TrackingListener):
            shared.listener.stop(timeout)
        core.coherence = None
        if shared.tier is not None:
            shared.tier.close()

    def __enter__(self) -> QueryCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
