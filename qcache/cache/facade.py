"""What the sync and async facades share beyond the plans: construction, views, the L2 backend, stats."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from qcache.cache.coherence import L1Coherence
from qcache.cache.core import CacheCore
from qcache.cache.flusher import FlushSchedule
from qcache.cache.keys import GLOBAL_NAMESPACE
from qcache.cache.monitor import AlertEvaluator, AlertHook, AlertHooks, AsyncHealthMonitor, HealthMonitor
from qcache.cache.oplog import install_operation_log
from qcache.cache.reads import ReadPlans
from qcache.cache.sampling import AccessSample, install_access_sample
from qcache.cache.writes import WritePlans
from qcache.config import CacheConfig
from qcache.errors import AccessDenied, BackendError
from qcache.l2.core import TierCore
from qcache.l2.protocol import AsyncL2Backend, L2Backend, L2Op, bind_operations
from qcache.l2.tracking import AsyncTrackingListener, TrackingListener

if TYPE_CHECKING:
    from qcache.access.guard import AccessGuard
    from qcache.access.policy import AccessPolicy
    from qcache.access.view import RoleView

logger = logging.getLogger("qcache")

B = TypeVar("B", L2Backend, AsyncL2Backend)
S = TypeVar("S", bound="SharedState[Any]")
Self = TypeVar("Self", bound="FacadeBase[Any, Any]")


def warm_up(tier: Any) -> None:
    """Open the tier's ``CACHE_CONNECTION_POOL_SIZE`` connections; a failure is logged, never raised."""
    try:
        opened = tier.warm_up()
    except Exception as exc:  # a warm-up is an optimisation: the first operations connect instead
        logger.info("qcache: could not open connections ahead of traffic: %s", exc)
    else:
        logger.debug("qcache: %d connections opened ahead of traffic", opened)


async def warm_up_async(tier: Any) -> None:
    """:func:`warm_up` for the asyncio tier."""
    try:
        opened = await tier.warm_up()
    except Exception as exc:
        logger.info("qcache: could not open connections ahead of traffic: %s", exc)
    else:
        logger.debug("qcache: %d connections opened ahead of traffic", opened)


class SharedState(Generic[B]):
    """What every project view of one cache shares: the core, the L2 backend and the flusher's schedule.

    Each facade adds what is specific to threads or coroutines (locks,
    single-flight table, the flusher itself).
    """

    def __init__(self, core: CacheCore, tier: B | None, build_tier: Callable[[], B]) -> None:
        self.core = core
        self.tier: B | None = tier
        self.ops: dict[L2Op, Callable[..., Any]] | None = None if tier is None else bind_operations(tier)
        self.schedule = FlushSchedule(lambda exc: core.failures.note("write-back flush", exc))
        #: Alert hooks and the background health monitor (see qcache.cache.monitor), one per cache.
        self.alert_hooks = AlertHooks()
        self.monitor: HealthMonitor | AsyncHealthMonitor | None = None
        #: Roles for as_role() (None: the seed's three), and the guard all role-bound views share.
        self.access_policy: AccessPolicy | None = None
        self.access_guard: AccessGuard | None = None
        self.access_lock = threading.Lock()
        #: The invalidation listener keeping L1 coherent (see qcache.cache.coherence), if any;
        #: ``listener_idle`` until an async one has been started and made its first attempt.
        self.listener: TrackingListener | AsyncTrackingListener | None = None
        self.listener_idle = False
        #: Sampled reads for size advice (CACHE_ACCESS_SAMPLE_RATE), shared by every view.
        self.access_sample: AccessSample | None = None
        #: Set once the owning facade has closed; no backend is built afterwards.
        self.closed = False
        self._build_tier: Callable[[], B] = build_tier
        self._tier_lock = threading.Lock()

    def l2(self) -> B:
        """The L2 backend, built on first need: a live config change may switch to a level with L2."""
        with self._tier_lock:
            if self.tier is None:
                if self.closed:
                    raise BackendError("the cache is closed")
                self.tier = self._build_tier()
            return self.tier

    def operations(self) -> dict[L2Op, Callable[..., Any]]:
        """The backend's method per operation, for running plans (building the backend on first need)."""
        if self.ops is None:
            self.ops = bind_operations(self.l2())
        return self.ops


class FacadeBase(Generic[S, B]):
    """Configuration, the shared core and the project namespace of one cache view.

    ``S`` is the facade's shared state (backend, locks, flusher), common to
    all views of one cache; ``B`` its L2 backend protocol.
    """

    _shared: S
    _core: CacheCore
    _reads: ReadPlans
    _writes: WritePlans
    _namespace: str
    _owner: bool

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        strict: bool = False,
        tier: B | None = None,
        core: CacheCore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """See the facades' class docstrings; ``tier`` and ``core`` let tests and benchmarks pass their own."""
        config = config if config is not None else CacheConfig.from_env()
        config.check()
        core = core if core is not None else CacheCore(config, strict=strict, clock=clock)
        if tier is None and core.use_l2:
            tier = self._new_tier(core)
        self._core = core
        self._reads = core.reads
        self._writes = core.writes
        self._namespace = GLOBAL_NAMESPACE
        self._owner = True
        self._shared = self._new_shared(core, tier)
        if core.wants_coherence():
            self._start_coherence()
        rate = config.monitoring.access_sample_rate
        if rate > 0:
            self._shared.access_sample = AccessSample(rate)
        self._instrument()

    def _new_tier(self, core: CacheCore) -> B:
        """The Redis backend of this facade's flavour, as the configuration describes it."""
        raise NotImplementedError

    def _new_shared(self, core: CacheCore, tier: B | None) -> S:
        """The state all views of this cache share."""
        raise NotImplementedError

    def _start_coherence(self) -> None:
        """Start the invalidation listener that keeps L1 coherent with Redis (a Redis tier only)."""
        tier = self._shared.tier
        core = self._core
        if not isinstance(tier, TierCore) or core.l1 is None:
            return  # another backend (tests, in-memory): no Redis to report changes
        if not tier.supports_tracking:
            logger.info("qcache: L1 coherence across processes is not available on this L2")
            return
        coherence = L1Coherence(core.l1, core.generations)
        self._shared.listener = self._new_listener(tier, coherence)
        core.coherence = coherence

    def _new_listener(self, tier: TierCore, coherence: L1Coherence) -> TrackingListener | AsyncTrackingListener:
        """This flavour's listener on ``tier``'s server, reporting to ``coherence``, started if it can be."""
        raise NotImplementedError

    @classmethod
    def from_env(cls: type[Self], **kwargs: Any) -> Self:
        """A cache configured from the environment and ``.env`` (see :meth:`CacheConfig.from_env`)."""
        return cls(CacheConfig.from_env(), **kwargs)

    def for_project(self: Self, project: str) -> Self:
        """A view with the same API whose keys live in ``project``'s own namespace.

        With ``CACHE_PROJECT_ISOLATION=true`` a view can never read, overwrite,
        delete, clear or pattern-invalidate another project's keys: its keys
        all start with ``<prefix>:<project>:`` and patterns are confined to
        that prefix. With isolation off, every view shares the global
        namespace. Closing a view does nothing; close the cache it came from.
        """
        view = object.__new__(type(self))
        view._shared = self._shared
        view._core = self._core
        view._reads = self._reads
        view._writes = self._writes
        view._namespace = self._core.namespace_for(project)
        view._owner = False
        view._instrument()
        return view

    def _instrument(self) -> None:
        """Install the operation log and the access sample when configured (see their modules)."""
        if self._core.config.monitoring.log_operations:
            install_operation_log(self)
        sample = self._shared.access_sample
        if sample is not None:
            install_access_sample(self, sample)

    @property
    def access_sample(self) -> AccessSample | None:
        """The sampled reads (``CACHE_ACCESS_SAMPLE_RATE`` > 0), for :mod:`qcache.ops.maintenance`."""
        return self._shared.access_sample

    @property
    def config(self) -> CacheConfig:
        """The configuration this cache follows (live updates apply)."""
        return self._core.config

    @property
    def namespace(self) -> str:
        """The key namespace of this view (``_`` for the global one)."""
        return self._namespace

    def on_alert(self, hook: AlertHook) -> Callable[[], None]:
        """Call ``hook(alert)`` when a background health check enters or leaves breach; returns a remover.

        See :mod:`qcache.cache.monitor` for the checks; hooks are per cache
        (every project view shares them) and may be added at any time.
        """
        return self._shared.alert_hooks.add(hook)

    def last_health(self) -> dict[str, Any] | None:
        """The last background health report with the open breaches, or None before the first check."""
        monitor = self._shared.monitor
        return None if monitor is None else monitor.state.last

    def use_access_policy(self, policy: AccessPolicy) -> None:
        """Roles, project grants and role tokens for :meth:`as_role` (default: admin, service, client)."""
        shared = self._shared
        with shared.access_lock:
            shared.access_policy = policy
            if shared.access_guard is not None:
                shared.access_guard.policy = policy

    def as_role(self, role: str, token: str | None = None) -> RoleView:
        """This cache as ``role`` sees it: what the role lacks raises :class:`~qcache.errors.AccessDenied`.

        The view expires after ``CACHE_SESSION_TIMEOUT``; denials are audited
        (``SECURITY_AUDIT_LOG_PATH``), counted, and alert past
        ``FAILED_ACCESS_THRESHOLD`` within ``FAILED_ACCESS_WINDOW``. See
        :mod:`qcache.access` for the threat model.
        """
        from qcache.access.guard import AccessGuard
        from qcache.access.policy import AccessPolicy
        from qcache.access.view import RoleView

        shared = self._shared
        with shared.access_lock:
            if shared.access_guard is None:
                core = self._core
                shared.access_guard = AccessGuard.from_config(
                    core.config, policy=shared.access_policy or AccessPolicy(), hooks=shared.alert_hooks,
                    count_error=lambda kind: core.metrics.error(kind),
                )
            guard = shared.access_guard
        try:
            bound = guard.policy.role(role, token)
        except AccessDenied as exc:
            guard.denied(role, self._namespace, "as_role", None, str(exc))
            raise
        if not bound.may_enter(self._namespace):
            why = f"role {role!r} has no grant for project {self._namespace!r}"
            guard.denied(role, self._namespace, "as_role", None, why)
            raise AccessDenied(why)
        return RoleView(self, bound, guard, expires_at=time.monotonic() + guard.session_timeout)

    def _count_lost(self, left: int) -> None:
        """Count and log what close() could not send to L2: write-back writes and invalidations."""
        core = self._core
        invalidations = min(left, core.pending.invalidations)
        if left - invalidations:
            core.metrics.error("writeback_lost", left - invalidations)
            logger.error("qcache: %d write-back writes could not reach L2 before close", left - invalidations)
        if invalidations:
            # The entries they should have removed may be served again by every process from L2.
            core.metrics.error("invalidation_lost", invalidations)
            logger.error("qcache: %d deletes or invalidations could not reach L2 before close", invalidations)

    def _close_access(self) -> None:
        guard = self._shared.access_guard
        if guard is not None:
            guard.close()

    def _alert_evaluator(self) -> AlertEvaluator:
        core = self._core
        return AlertEvaluator(lambda: (core.latency_threshold_ms, core.hit_rate_threshold))

    def reset_stats(self) -> None:
        """Start the counters and latency histograms from zero (the whole cache: every view shares them)."""
        self._core.metrics.reset()

    def stats(self) -> dict[str, Any]:
        """Hits and misses per tier, hit rate, errors by kind, sets, sizes, latency percentiles."""
        out = self._core.observability.stats()
        tier = self._shared.tier
        if tier is not None:
            out["l2_breaker"] = tier.breaker_stats().state.value
        coherence = self._core.coherence
        if coherence is not None:
            out["l1_coherence"] = dataclasses.asdict(coherence.stats())
        return out

    @staticmethod
    def _stamp(report: dict[str, Any]) -> dict[str, Any]:
        report["timestamp"] = time.time()
        return report
