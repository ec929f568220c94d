"""``AsyncQueryCache``: the asyncio facade, with the same semantics as :class:`qcache.QueryCache`.

It runs the same plans (see :mod:`qcache.cache.plans`) by awaiting the async L2
backend; only the single-flight table (futures) and the write-back flusher (a
task) are its own. L1 operations never block, so they run inline on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from qcache.cache.coherence import L1Coherence
from qcache.cache.core import CacheCore
from qcache.cache.facade import FacadeBase, SharedState, warm_up_async
from qcache.cache.flusher import DrainDeadline
from qcache.cache.monitor import AsyncHealthMonitor, weakly
from qcache.cache.plans import MISSING, Plan
from qcache.errors import BackendError
from qcache.l2 import AsyncL2Backend, AsyncRedisClusterTier, AsyncRedisTier
from qcache.l2.cluster import async_tier_from_config
from qcache.l2.cluster_tracking import AsyncClusterTrackingListener
from qcache.l2.core import TierCore
from qcache.l2.tracking import FIRST_CONNECT_WAIT, AsyncTrackingListener

logger = logging.getLogger("qcache")

T = TypeVar("T")


class _AsyncShared(SharedState[AsyncL2Backend]):
    """What every project view of one async cache shares, plus the coroutine-specific parts."""

    def __init__(self, core: CacheCore, tier: AsyncL2Backend | None) -> None:
        super().__init__(
            core, tier, lambda: async_tier_from_config(core.config, namespace=f"{core.keys.prefix}:")
        )
        self.flush_lock = asyncio.Lock()
        self.flights: dict[str, asyncio.Future[Any]] = {}
        self.flight_leaders: dict[str, asyncio.Task[Any] | None] = {}
        self.wake = asyncio.Event()
        self.flusher: asyncio.Task[None] | None = None
        self.stopping = False  # set by close(): the flusher drains once more and returns
        self.warm_up: asyncio.Task[None] | None = None


class AsyncQueryCache(FacadeBase[_AsyncShared, AsyncL2Backend]):
    """The coroutine twin of :class:`qcache.QueryCache`: same methods, same semantics.

    Use it with ``async with`` or ``await cache.close()``. One instance
    belongs to one event loop.
    """

    def _new_tier(self, core: CacheCore) -> AsyncL2Backend:
        return async_tier_from_config(core.config, namespace=f"{core.keys.prefix}:")

    def _new_shared(self, core: CacheCore, tier: AsyncL2Backend | None) -> _AsyncShared:
        return _AsyncShared(core, tier)

    def _new_listener(self, tier: TierCore, coherence: L1Coherence) -> AsyncTrackingListener:
        # A cluster: one invalidation connection per primary, under a supervisor (see qcache.l2.cluster_tracking).
        cluster = isinstance(tier, AsyncRedisClusterTier)
        listener_cls = AsyncClusterTrackingListener if cluster else AsyncTrackingListener
        listener = listener_cls(tier.client, tier.namespace, coherence)
        self._shared.listener = listener
        self._shared.listener_idle = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return listener  # built outside a loop: the first L2 call (or ``async with``) starts it
        self._listen()
        return listener

    def _listen(self) -> None:
        listener = self._shared.listener
        if isinstance(listener, AsyncTrackingListener) and not listener.started and not self._shared.closed:
            listener.start()

    async def _listening(self) -> None:
        """Start the listener if it is not yet, and wait (briefly) for its first connection attempt.

        Until then, whatever L1 takes in would be flushed when tracking comes up.
        """
        shared = self._shared
        listener = shared.listener
        if isinstance(listener, AsyncTrackingListener):
            self._listen()
            await listener.first_attempt(min(FIRST_CONNECT_WAIT, self._core.config.redis.connection_timeout))
        shared.listener_idle = False

    # -- begin: shared with sync.py, which tests/cache/sync_from_async.py derives from this --

    # -- running plans -----------------------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        """Drive a plan: run each L2 call it yields on the backend and send the result back in."""
        shared = self._shared
        if shared.listener_idle:
            await self._listening()
        try:
            call = next(plan)
            while True:
                try:
                    result = await (shared.ops or shared.operations())[call.op](*call.args)
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

    async def get(self, key: str, default: Any = None, *, cache_type: str | None = None) -> Any:
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
            await self._listening()
        try:
            raw = await (self._shared.tier or self._shared.l2()).get(state.skey)
        except BackendError as exc:
            core.failures.l2_failed("get", exc)
            raw = None
        return core.reads.get_end(state, raw, default)

    async def get_many(self, keys: Iterable[str], *, cache_type: str | None = None) -> dict[str, Any]:
        """``{key: value}`` for the keys that hit; L2 is read with chunked MGETs."""
        if not self._core.enabled:
            self._core.check_open()
            return {}
        return await self._run(self._core.reads.plan_get_many(self._namespace, keys, cache_type))

    # -- writes ------------------------------------------------------------------------------

    async def set(
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
                await self._run(core.writes.plan_set(self._namespace, key, value, ttl, cache_type, tags, source))
            finally:
                self._after_write()  # an L2 write that failed, or queued, goes with the flusher
        elif core.use_l2:  # write-back, nothing to send now: no generator to drive (see WritePlans.set_begin)
            if self._shared.listener_idle:
                await self._listening()  # before L1 takes the value: tracking coming up would flush it
            writes = self._writes
            writes.set_end(writes.set_begin(self._namespace, key, value, ttl, cache_type, tags, source))
            self._after_write()
        else:  # memory only: no record to build (and checked here, so no fallback)
            self._writes.memory_set(None, self._namespace, key, value, ttl, cache_type=cache_type, tags=tags,
                                    source=source)

    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, *, cache_type: str | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Store many values, each with every tag of ``tags``; every value is encoded before anything is written."""
        core = self._core
        if not core.enabled:
            core.check_open()
            return
        try:
            await self._run(core.writes.plan_set_many(self._namespace, items, ttl, cache_type, tags))  # as in set()
        finally:
            self._after_write()

    async def delete(self, key: str, *, cache_type: str | None = None) -> bool:
        """Remove ``key`` from both tiers (and any pending write-back); True if something was removed.

        When Redis cannot be reached, the delete is kept and retried until it
        lands (also by ``flush()`` and ``close()``), and this process never
        reads the key from L2 meanwhile; the result then covers L1 and the
        queue only. Strict mode raises the error after queuing it.
        """
        # Works while CACHE_ENABLED=false too: an invalidation must never be lost.
        self._core.check_open()
        try:
            async with self._shared.flush_lock:
                return await self._run(self._core.writes.plan_delete(self._namespace, key, cache_type))
        finally:
            self._after_write()

    async def invalidate_pattern(self, pattern: str, *, cache_type: str | None = None) -> int:
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
            async with self._shared.flush_lock:
                return await self._run(
                    self._core.invalidation.plan_invalidate(self._namespace, pattern, cache_type)
                )
        finally:
            self._after_write()

    async def validate(self, key: str, current_source: object, *, cache_type: str | None = None) -> bool:
        """Whether ``key``'s entry was computed from ``current_source`` (as passed to ``set(source=)``).

        When not (the source changed, or the entry has no digest), the entry
        is deleted and the answer is False, so the caller recomputes it.
        """
        self._core.check_open()
        try:
            async with self._shared.flush_lock:
                return await self._run(
                    self._core.freshness.plan_validate(self._namespace, key, current_source, cache_type)
                )
        finally:
            self._after_write()  # a delete that could not reach L2 is queued, as in delete()

    async def invalidate_tags(self, *tags: str) -> int:
        """Delete this namespace's entries written with any of ``tags``; returns how many were removed.

        Works across processes: membership lives in Redis, in one sorted set
        per tag that is pruned as its entries expire. When Redis cannot be
        reached it is kept and retried as :meth:`delete` does, and meanwhile
        no entry of this namespace is read from L2 (only Redis knows which
        carry the tags).
        """
        self._core.check_open()  # works while disabled, as delete()
        try:
            async with self._shared.flush_lock:
                return await self._run(self._core.invalidation.plan_invalidate_tags(self._namespace, tags))
        finally:
            self._after_write()

    async def clear(self) -> int:
        """Delete every key of this namespace in both tiers (SCAN + UNLINK, never FLUSHDB).

        Works even while ``CACHE_ENABLED=false``, so stale entries can be
        dropped before the cache is switched back on. Kept and retried when
        Redis cannot be reached, as :meth:`invalidate_pattern`.
        """
        self._core.check_open()
        try:
            async with self._shared.flush_lock:
                return await self._run(self._core.invalidation.plan_clear(self._namespace))
        finally:
            self._after_write()

    # -- write-back --------------------------------------------------------------------------

    async def _drain(self) -> None:
        # The queue is checked under the lock: a batch another flush holds in flight is either
        # sent or put back by the time the lock is free, so returning means it reached L2.
        core = self._core
        while True:
            async with self._shared.flush_lock:
                if not core.pending.queued:
                    return
                await self._run(core.flushing.plan_flush_batch(core.batch_size))

    async def flush(self, timeout: float | None = None) -> int:
        """Write every pending write-back value to L2; returns how many are still pending.

        Retries until ``timeout`` (seconds; None: a single attempt) while L2
        fails; 0 means everything has reached L2.
        """
        self._core.check_open()
        return await self._flush(timeout)

    async def _flush(self, timeout: float | None) -> int:
        deadline = DrainDeadline(timeout)
        while True:
            try:
                await self._drain()
                return 0
            except BackendError as exc:
                if deadline.expired():
                    return self._core.flushing.gave_up(exc)
                await asyncio.sleep(deadline.pause())

    # -- observability -----------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """Probe both tiers: ``{"status": "healthy" | "degraded" | "unhealthy", "reasons": [...], ...}``."""
        self._core.check_open()
        return self._stamp(await self._run(self._core.observability.plan_probe()))

    # -- end of the shared operations --

    # -- single-flight -----------------------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any] | Any],
        ttl: float | None = None,
        *,
        cache_type: str | None = None,
        cache_none: bool = False,
    ) -> Any:
        """The cached value, or the loader's result stored and returned (one load per key at a time).

        ``loader`` may be a coroutine function or a plain function.
        """
        value = await self.get(key, MISSING, cache_type=cache_type)
        if value is not MISSING:
            return value
        flights = self._shared.flights
        flight_key = self._core.storage_key(self._namespace, self._core.spec(cache_type), key)[0]
        while (flight := flights.get(flight_key)) is not None:
            if self._shared.flight_leaders.get(flight_key) is asyncio.current_task():
                # The loader awaited its own key: waiting for ourselves would never end.
                raise RuntimeError(f"get_or_set({key!r}) called again from inside its own loader")
            try:
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if flight.cancelled() and task is not None and not task.cancelling():
                    continue  # the leader was cancelled, not this waiter: take the load over
                raise
        flight = flights[flight_key] = asyncio.get_running_loop().create_future()
        self._shared.flight_leaders[flight_key] = asyncio.current_task()
        try:
            value = await self._run(self._core.reads.plan_peek(self._namespace, key, cache_type))  # filled meanwhile?
            if value is MISSING:
                value = loader()
                if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
                    value = await value
                if value is not None or cache_none:
                    await self.set(key, value, ttl, cache_type=cache_type)
            flight.set_result(value)
            return value
        except asyncio.CancelledError:
            # Our caller gave up (a client went away); the waiters must not inherit that.
            flight.cancel()
            raise
        except StopIteration as exc:
            # A future refuses StopIteration (TypeError, and the waiters would hang): wrap it, as PEP 479 does.
            error = RuntimeError(f"the loader of get_or_set({key!r}) raised StopIteration")
            flight.set_exception(error)
            flight.exception()
            raise error from exc
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved here, so an unawaited flight logs nothing
            raise
        finally:
            if not flight.done():  # whatever went wrong above, no waiter may wait forever
                flight.set_exception(RuntimeError(f"get_or_set({key!r}): the load ended without a result"))
                flight.exception()
            del flights[flight_key]
            del self._shared.flight_leaders[flight_key]

    # -- write-back flusher ------------------------------------------------------------------

    def _after_write(self) -> None:
        shared = self._shared
        if not len(self._core.pending) or shared.stopping:
            return
        if shared.flusher is None:
            shared.flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="qcache-writeback")
        if len(self._core.pending) >= self._core.batch_size and shared.schedule.may_wake():
            shared.wake.set()

    async def _flush_loop(self) -> None:
        shared = self._shared
        schedule = shared.schedule
        # A flag, not cancellation, ends the loop: on Python 3.11 wait_for() swallows a cancel
        # that arrives as the wake event fires, and close() would then wait forever.
        while not shared.stopping:
            try:
                await asyncio.wait_for(shared.wake.wait(), schedule.delay)
            except TimeoutError:
                pass
            shared.wake.clear()
            try:
                await self._drain()
            except Exception as exc:  # never let the flusher die: writes stay queued, retried later
                schedule.failed(exc)
            else:
                schedule.drained()

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> None:
        """Drain pending writes (up to ``timeout`` seconds), stop the flusher, close the tier.

        Afterwards every operation raises :class:`qcache.errors.CacheClosedError` (see :meth:`QueryCache.close`).
        """
        shared = self._shared
        core = self._core
        if not self._owner or core.closed:
            return
        if isinstance(shared.monitor, AsyncHealthMonitor):
            await shared.monitor.stop()
        core.close()  # first: a write racing with close() raises instead of being lost
        shared.stopping = True
        shared.wake.set()
        if shared.flusher is not None:
            # The flusher drains what is pending and returns; one stuck on a dead L2 past the
            # timeout is cancelled (a batch it had taken goes back to the queue) and flush() retries.
            done, _ = await asyncio.wait({shared.flusher}, timeout=timeout)
            if not done:
                shared.flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shared.flusher
        try:
            left = await self._flush(timeout) if len(core.pending) else 0
        except BackendError:  # strict mode: counted and logged below all the same, and the cache still closes
            left = len(core.pending)
        if left:
            self._count_lost(left)
        shared.closed = True
        self._close_access()
        if shared.warm_up is not None and not shared.warm_up.done():
            shared.warm_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shared.warm_up
        if isinstance(shared.listener, AsyncTrackingListener):
            await shared.listener.stop()
        core.coherence = None
        if shared.tier is not None:
            await shared.tier.close()

    def start_monitoring(self) -> None:
        """Start the background health checks on the running loop (``async with`` does it).

        Also opens ``CACHE_CONNECTION_POOL_SIZE`` connections in the
        background, once. Does nothing when they already run or the cache is closed.
        """
        shared = self._shared
        if shared.warm_up is None and isinstance(shared.tier, AsyncRedisTier) and not self._core.closed:
            shared.warm_up = asyncio.get_running_loop().create_task(warm_up_async(shared.tier), name="qcache-warm-up")
        interval = self._core.config.monitoring.health_check_interval
        if shared.monitor is None and interval > 0 and not self._core.closed:
            shared.monitor = AsyncHealthMonitor(weakly(self.health), weakly(self.stats), self._alert_evaluator(),
                                                shared.alert_hooks, interval).start()

    async def __aenter__(self) -> AsyncQueryCache:
        if self._shared.listener_idle:
            await self._listening()
        self.start_monitoring()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
