"""qcache inside Locust: Redis provisioning, the users' base classes, exact latencies and the run folder.

Importing this module imports Locust, which patches the standard library with
gevent; import it only from a locustfile (``loadtests/``). What happens, per
Locust process:

- ``init``: the master (or the single local process) finds a Redis through
  :func:`qcache.testing.provision_redis` (``REDIS_URL`` when set, otherwise a
  server it starts and stops at quit, also on Ctrl-C or failure) and passes
  its URL to workers in a hidden custom argument, which Locust forwards with
  every spawn message.
- Users (:class:`CacheUser` and its async and raw variants) time every call
  with ``perf_counter``, record it exactly (µs) in the process's
  :class:`~qcache.load.histogram.LatencyRecorder`, and fire
  ``events.request`` so Locust's console, CSV, HTML and web UI work as for HTTP.
- Workers send their recorded histograms with every stats report; the master
  merges them. At ``quitting`` the master (or local process) writes
  ``results/load/<run-id>/``.

Async users run on one asyncio event loop per process, driven by a greenlet:
gevent's patched ``selectors`` make the loop yield to other greenlets while it
waits for sockets, and users hand it coroutines with ``call_soon_threadsafe``
and wait on a gevent ``AsyncResult``. So one :class:`~qcache.AsyncQueryCache`
(one L1, one connection pool) serves every async user, as in an asyncio
service; the recorded latency is measured inside the loop, as an asyncio
caller sees it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import logging
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import gevent
import redis
from gevent.event import AsyncResult
from locust import LoadTestShape, User, constant, events
from locust.env import Environment
from locust.html import get_html_report
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV
from redis.cluster import RedisCluster

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.errors import ConfigError, QCacheError
from qcache.l2 import escape_glob
from qcache.load import shapes
from qcache.load.chaos import (
    CHAOS_MODES,
    FaultTimes,
    chaos_report,
    inject_fault,
    owned_server,
)
from qcache.load.histogram import LatencyRecorder
from qcache.load.knee import ramp_steps
from qcache.load.results import (
    RunInfo,
    build_summary,
    new_run_id,
    read_summary,
    results_root,
    summary_lines,
    write_run,
)
from qcache.load.workload import Workload, ZipfKeys
from qcache.testing import ClusterEndpoint, RedisEndpoint, provision_redis, provision_redis_cluster
from qcache.testing.endpoint import redact_url

log = logging.getLogger("qcache.load")
T = TypeVar("T")

RUN_ID = new_run_id()  # computed at import, before --processes forks, so every process shares it
_URL_OPTION = "qcache_redis_url"
_RUN_OPTION = "qcache_run_id"
#: With a profile that asks for TLS, the throwaway server's CA and client files, for the workers too.
_TLS_OPTIONS = {"qcache_tls_ca": "REDIS_SSL_CA_CERT_PATH", "qcache_tls_cert": "REDIS_SSL_CERT_PATH",
                "qcache_tls_key": "REDIS_SSL_KEY_PATH"}


# -- command line ----------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("qcache workload and shape")
    group.add_argument("--shape", choices=shapes.SHAPES, default="steady",
                       help="load shape: steady (-u/-r/-t, default 10 users for 60 s headless, until stopped "
                            "in the web UI), ramp, spike, soak, "
                            "chaos (fail the run's own Redis), compare (alternate --compare classes)")
    group.add_argument("--keys", type=int, default=Workload.keys, help="distinct keys in the key space")
    group.add_argument("--zipf-s", type=float, default=Workload.zipf_s,
                       help="Zipf exponent of key popularity (0: uniform)")
    group.add_argument("--value-bytes", type=int, default=Workload.value_bytes, help="serialized size of dict values")
    group.add_argument("--hot-keys", type=int, default=Workload.hot_keys,
                       help="most popular keys written before the load starts (0: cold cache)")
    group.add_argument("--read-ratio", type=float, default=Workload.read_ratio,
                       help="share of reads for the read-heavy, embedding, async and raw users")
    group.add_argument("--ramp-users", type=str, default="10,10,8",
                       help="ramp: start users, users added per step, number of steps")
    group.add_argument("--step-seconds", type=float, default=10.0, help="ramp: seconds per step")
    group.add_argument("--spike-users", type=int, default=50, help="spike: users during the spike (base: -u)")
    group.add_argument("--spike-seconds", type=float, default=10.0, help="spike: length of the spike")
    group.add_argument("--soak-minutes", type=float, default=30.0, help="soak: length (at most 240)")
    group.add_argument("--chaos-mode", choices=CHAOS_MODES, default="kill",
                       help="chaos: SIGKILL and restart the run's Redis, or CLIENT PAUSE it")
    group.add_argument("--chaos-at", type=float, default=10.0, help="chaos: seconds before the fault")
    group.add_argument("--chaos-down", type=float, default=2.0, help="chaos: seconds Redis stays down or paused")
    group.add_argument("--chaos-after", type=float, default=15.0, help="chaos: seconds of load after Redis is back")
    group.add_argument("--compare", type=str, default="ReadHeavyUser,RawRedisUser",
                       help="compare: the two user classes to alternate")
    group.add_argument("--compare-phase", type=float, default=4.0, help="compare: seconds per phase (at least 2)")
    group.add_argument("--compare-rounds", type=int, default=5, help="compare: rounds (each class once per round)")
    group.add_argument("--results-dir", type=str, default="",
                       help="folder for run folders (default: $QCACHE_LOAD_RESULTS or results/load)")
    # Set by the master for its workers; Locust forwards custom arguments with every spawn.
    parser.add_argument(f"--{_URL_OPTION.replace('_', '-')}", default="", include_in_web_ui=False,
                        help="(internal) the Redis URL the master provisioned")
    parser.add_argument(f"--{_RUN_OPTION.replace('_', '-')}", default="", include_in_web_ui=False,
                        help="(internal) the master's run id")
    for option in _TLS_OPTIONS:
        parser.add_argument(f"--{option.replace('_', '-')}", default="", include_in_web_ui=False,
                            help="(internal) a TLS file of the Redis the master provisioned")


def workload_of(options: Any) -> Workload:
    """The workload from parsed options (every field validated)."""
    return Workload(
        keys=int(options.keys),
        zipf_s=float(options.zipf_s),
        value_bytes=int(options.value_bytes),
        hot_keys=min(int(options.hot_keys), int(options.keys)),
        read_ratio=float(options.read_ratio),
    )


def _int_list(text: str, count: int, what: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise ConfigError(f"{what} must be {count} comma-separated integers, got {text!r}")
    return values


def schedule_of(options: Any) -> shapes.Schedule:
    """The schedule ``--shape`` names, with Locust's -u/-r/-t where they apply."""
    users = int(options.num_users or 10)
    rate = float(options.spawn_rate or users)
    run_time = float(options.run_time or 60)
    name = options.shape
    if name == "steady":
        # From the web UI without a run time, the test runs until it is stopped there.
        until_stopped = not options.headless and not options.run_time
        return shapes.Steady(users, rate, math.inf if until_stopped else run_time)
    if name == "ramp":
        start, step, steps = _int_list(options.ramp_users, 3, "--ramp-users")
        return shapes.Ramp(start, step, steps, float(options.step_seconds))
    if name == "spike":
        base_s = max(1.0, (run_time - float(options.spike_seconds)) / 2)
        return shapes.Spike(users, int(options.spike_users), base_s, float(options.spike_seconds))
    if name == "soak":
        return shapes.Soak(users, rate, float(options.soak_minutes) * 60)
    if name == "chaos":
        return shapes.Chaos(users, rate, float(options.chaos_at), float(options.chaos_down),
                            float(options.chaos_after))
    if name == "compare":
        parts = [p.strip() for p in options.compare.split(",")]
        if len(parts) != 2:
            raise ConfigError(f"--compare names two user classes, got {options.compare!r}")
        return shapes.Compare(parts[0], parts[1], users, float(options.compare_phase), int(options.compare_rounds))
    raise ConfigError(f"unknown shape {name!r}; choose from {', '.join(shapes.SHAPES)}")


# -- the per-process runtime -----------------------------------------------------------


class AsyncBridge:
    """One asyncio event loop in a greenlet; greenlets hand it coroutines and wait for them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait (yielding to other greenlets) for its result.

        Without ``timeout`` it waits as long as a sync call would: the cache's
        own socket timeouts bound it. A timeout raises :class:`TimeoutError`.
        """
        result: AsyncResult = AsyncResult()

        def done(future: asyncio.Future[T]) -> None:
            if future.cancelled():
                result.set_exception(asyncio.CancelledError())
            elif future.exception() is not None:
                result.set_exception(future.exception())
            else:
                result.set(future.result())

        def start() -> None:
            self.loop.create_task(coroutine).add_done_callback(done)

        self.loop.call_soon_threadsafe(start)
        try:
            value: T = result.get(timeout=timeout)
        except gevent.Timeout as exc:  # a BaseException: never let it escape as one
            raise TimeoutError(f"the event loop did not finish the call within {timeout} s") from exc
        return value

    def close(self) -> None:
        """Cancel what is still pending (users killed mid-call), then stop and close the loop."""
        if self.loop.is_closed():
            return

        async def cancel_pending() -> None:
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            self.call(cancel_pending(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._greenlet.join(timeout=5)
        with contextlib.suppress(RuntimeError):
            self.loop.close()


class LoadRuntime:
    """What every user in one Locust process shares: Redis, caches, workload, recorder."""

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self.recorder = LatencyRecorder()
        self.stack = ExitStack()
        self.endpoint: RedisEndpoint | ClusterEndpoint | None = None
        self.url = ""
        self.run_id = RUN_ID
        self.started_at = time.time()
        self.users_by_second: dict[int, int] = {}
        self.caller_exceptions: dict[str, int] = {}
        self.fault: FaultTimes | None = None
        self.fault_error: str | None = None
        self._config: CacheConfig | None = None
        self._sync: QueryCache | None = None
        self._bridge: AsyncBridge | None = None
        self._async: AsyncQueryCache | None = None
        self._raw: Any = None  # redis.Redis, or RedisCluster when the cache runs on a cluster
        self._keys: ZipfKeys | None = None
        self._warmed: set[str] = set()
        self._sampler: Any = None
        self._last_l2_hits = 0
        self.processes = 1
        self.written = False  # the current test's run folder is written
        self.started_at_test = False  # a test has started (a web UI closed before any start writes nothing)
        self.closed = False

    # -- roles -------------------------------------------------------------------------

    @property
    def options(self) -> Any:
        assert self.environment is not None and self.environment.parsed_options is not None
        return self.environment.parsed_options

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment and self.environment.runner, WorkerRunner)

    # -- what users share --------------------------------------------------------------

    def workload(self) -> Workload:
        return workload_of(self.options)

    def keys(self) -> ZipfKeys:
        if self._keys is None:
            workload = self.workload()
            self._keys = ZipfKeys(workload.keys, workload.zipf_s)
        return self._keys

    def redis_url(self) -> str:
        url = self.url or getattr(self.options, _URL_OPTION, "") or os.environ.get("REDIS_URL", "")
        if not url:
            raise ConfigError("no Redis for the load test: the master did not pass one and REDIS_URL is unset")
        return url

    def config(self) -> CacheConfig:
        """The library's configuration (CACHE_*, .env, ENVIRONMENT) aimed at the run's Redis.

        Keys go under ``<CACHE_KEY_PREFIX>-load-<run id>`` so a run never reads
        or overwrites entries of a service sharing the server, and ``clear()``
        at the end removes exactly what the run wrote.
        """
        if self._config is None:
            overrides: dict[str, Any] = {"REDIS_URL": self.redis_url()}
            for option, env in _TLS_OPTIONS.items():
                if getattr(self.options, option, ""):
                    overrides[env] = getattr(self.options, option)
            base = CacheConfig.from_env(**overrides)
            run_id = getattr(self.options, _RUN_OPTION, "") or self.run_id
            overrides["CACHE_KEY_PREFIX"] = f"{base.core.key_prefix}-load-{run_id}"
            self._config = CacheConfig.from_env(**overrides)
        return self._config

    def sync_cache(self) -> QueryCache:
        if self._sync is None:
            self._sync = QueryCache(self.config())
        return self._sync

    def bridge(self) -> AsyncBridge:
        if self._bridge is None:
            self._bridge = AsyncBridge()
        return self._bridge

    def async_cache(self) -> AsyncQueryCache:
        if self._async is None:
            config = self.config()

            async def build() -> AsyncQueryCache:
                return AsyncQueryCache(config)

            self._async = self.bridge().call(build())
        return self._async

    def raw_client(self) -> Any:
        """redis-py's plain client on the run's Redis (its ``RedisCluster`` on a cluster), for the baseline."""
        if self._raw is None:
            tls: dict[str, Any] = {}
            ca, cert, key = (getattr(self.options, option, "") for option in _TLS_OPTIONS)
            if ca:  # the run's own TLS server: trust its throwaway CA, present its client certificate
                tls = {"ssl_ca_certs": ca, "ssl_certfile": cert or None, "ssl_keyfile": key or None}
            client_cls: Any = RedisCluster if self.config().redis.cluster_enabled else redis.Redis
            self._raw = client_cls.from_url(self.redis_url(), socket_timeout=5.0, socket_connect_timeout=5.0, **tls)
        return self._raw

    def raw_prefix(self) -> str:
        return f"{self.config().core.key_prefix}:raw:"

    def warm_once(self, user: type[CacheUser]) -> None:
        """Write the hot keys for ``user``'s kind of traffic, once per process and class."""
        name = user.__name__
        if name in self._warmed:
            return
        self._warmed.add(name)
        hot = self.keys().keys[: self.workload().hot_keys]
        if hot:
            user.warm(self, hot)

    # -- lifecycle ---------------------------------------------------------------------

    def provision(self, *, persistent: bool = False, tls: bool = False, cluster: bool = False) -> None:
        """Find the run's Redis (master or local process only).

        ``cluster`` (``REDIS_CLUSTER_ENABLED``): ``REDIS_URL`` names a node of
        an existing cluster, otherwise a local 3-primary cluster is started
        for the run and stopped at quit, and every process's cache and
        baseline client use redis-py's cluster clients.

        ``persistent`` (the chaos shape) turns the append-only file on, as a
        production Redis would have it, so a server killed and restarted comes
        back with its data and the run measures the cache's recovery rather
        than a refill of an empty server. ``tls`` (a profile with
        ``REDIS_SSL_ENABLED``) starts a TLS-only server with throwaway
        certificates, which the cache then verifies.
        """
        if cluster:
            given = os.environ.get("REDIS_URL", "").strip() or None
            cluster_endpoint = self.stack.enter_context(provision_redis_cluster(url=given))
            self.endpoint, self.url = cluster_endpoint, cluster_endpoint.url
            log.info("qcache load: Redis Cluster %s (%s, %d nodes)", redact_url(self.url), cluster_endpoint.method,
                     len(cluster_endpoint.nodes))
            return
        extra = ("appendonly yes", "appendfsync everysec") if persistent else ()
        endpoint = self.stack.enter_context(provision_redis(extra_config=extra, tls=tls))
        self.endpoint, self.url = endpoint, endpoint.url
        if endpoint.tls is not None:
            files = endpoint.tls
            for option, path in zip(_TLS_OPTIONS, (files.ca_certs, files.certfile, files.keyfile), strict=True):
                setattr(self.options, option, str(path))
        log.info("qcache load: Redis %s (%s)", endpoint.redacted_url, endpoint.method)

    def start_sampler(self) -> None:
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_forever)

    def _sample_forever(self) -> None:
        while not self.closed:
            gevent.sleep(1.0)
            self.sample()

    def sample(self) -> None:
        """Once a second: fold recorded latencies, count L2 hits, note the user count."""
        l2_hits = sum(
            int(cache.stats()["hits"].get("l2", 0)) for cache in (self._sync, self._async) if cache is not None
        )
        self.recorder.record_l2_hits(l2_hits - self._last_l2_hits)
        self._last_l2_hits = l2_hits
        self.recorder.fold()
        runner = self.environment.runner if self.environment else None
        if runner is not None and not self.is_worker:
            self.users_by_second[int(time.time())] = runner.user_count

    def count_exception(self, user: str) -> None:
        self.caller_exceptions[user] = self.caller_exceptions.get(user, 0) + 1

    def close(self) -> None:
        """Close caches and clients, remove the run's keys, stop a server we started."""
        if self.closed:
            return
        self.closed = True
        if self._sync is not None:
            with contextlib.suppress(QCacheError, redis.RedisError, OSError):
                self._sync.clear()
            self._sync.close()
        if self._async is not None and self._bridge is not None:
            cache = self._async

            async def shut() -> None:
                with contextlib.suppress(QCacheError, redis.RedisError, OSError):
                    await cache.clear()
                await cache.close()

            with contextlib.suppress(Exception):
                self._bridge.call(shut(), timeout=10)
        if self._bridge is not None:
            self._bridge.close()
        if self._raw is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                batch: list[bytes] = []
                for key in self._raw.scan_iter(match=escape_glob(self.raw_prefix()) + "*", count=1000):
                    batch.append(key)
                    if len(batch) == 500:
                        self._raw.delete(*batch)
                        batch.clear()
                if batch:
                    self._raw.delete(*batch)
            self._raw.close()
        self.stack.close()


RUNTIME = LoadRuntime()
atexit.register(RUNTIME.stack.close)  # a crash between init and quit still stops our Redis


# -- users -----------------------------------------------------------------------------


class CacheUser(User):
    """A user whose tasks call qcache; every call is timed, recorded and reported to Locust.

    Subclasses write tasks with :meth:`timed` and may override :meth:`warm`
    to pre-load the hot keys. ``cache_user = False`` marks a baseline that
    does not use qcache (reported, never checked).
    """

    abstract = True
    wait_time = constant(0)
    cache_user: ClassVar[bool] = True
    request_type: ClassVar[str] = "qcache"

    def on_start(self) -> None:
        RUNTIME.start_sampler()
        RUNTIME.warm_once(type(self))
        RUNTIME.recorder.user_started(type(self).__name__)

    def on_stop(self) -> None:
        RUNTIME.recorder.user_stopped(type(self).__name__)

    @classmethod
    def warm(cls, runtime: LoadRuntime, keys: list[str]) -> None:
        """Pre-load ``keys`` before the load (default: none)."""

    def timed(self, operation: str, call: Callable[[], T], hit: Callable[[T], bool] | None = None) -> T | None:
        """Run ``call``, record its latency and outcome, and report it to Locust."""
        start = time.perf_counter()
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001  # a cache must never raise to its caller: count every one
            self._failed(operation, time.perf_counter() - start, exc)
            return None
        self._succeeded(operation, time.perf_counter() - start, result, hit)
        return result

    def timed_async(
        self, operation: str, make: Callable[[], Awaitable[T]], hit: Callable[[T], bool] | None = None
    ) -> T | None:
        """Like :meth:`timed` for a coroutine, timed inside the event loop."""

        async def measure() -> tuple[T, float]:
            start = time.perf_counter()
            value = await make()
            return value, time.perf_counter() - start

        start = time.perf_counter()
        try:
            result, elapsed = RUNTIME.bridge().call(measure())
        except asyncio.CancelledError:  # the run is closing and cancelled the call: nothing to record
            return None
        except Exception as exc:  # noqa: BLE001  # as in timed(): every exception reaching a caller counts
            self._failed(operation, time.perf_counter() - start, exc)
            return None
        self._succeeded(operation, elapsed, result, hit)
        return result

    def _succeeded(self, operation: str, elapsed: float, result: T, hit: Callable[[T], bool] | None) -> None:
        RUNTIME.recorder.record(type(self).__name__, operation, elapsed * 1e6,
                                hit=None if hit is None else hit(result))
        self._report(operation, elapsed, None)

    def _failed(self, operation: str, elapsed: float, exc: Exception) -> None:
        user = type(self).__name__
        RUNTIME.recorder.record(user, operation, elapsed * 1e6, error=True)
        RUNTIME.count_exception(user)
        self._report(operation, elapsed, exc)

    def _report(self, operation: str, elapsed: float, exception: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type=self.request_type,
            name=f"{type(self).__name__}.{operation}",
            response_time=elapsed * 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )


def is_hit(value: Any) -> bool:
    return value is not None


# -- the shape -------------------------------------------------------------------------


class QCacheShape(LoadTestShape):
    """The shape ``--shape`` names (steady by default), read from :mod:`qcache.load.shapes`."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._schedule: shapes.Schedule | None = None

    def reset_time(self) -> None:
        """A new test starts: read the options again (the web UI may have changed the users)."""
        super().reset_time()
        self._schedule = None

    def _environment(self) -> Environment:
        if self.runner is None:
            raise RuntimeError("the shape ticks only once Locust has attached a runner")
        return self.runner.environment

    def schedule(self) -> shapes.Schedule:
        if self._schedule is None:
            self._schedule = schedule_of(self._environment().parsed_options)
        return self._schedule

    def tick(self) -> tuple[int, float] | tuple[int, float, list[type[User]] | None] | None:
        stage = self.schedule().tick(self.get_run_time())
        if stage is None:
            return None
        if stage.user_classes is None:
            return stage.users, stage.spawn_rate
        available = user_classes_of(self._environment())
        return stage.users, stage.spawn_rate, [available[name] for name in stage.user_classes]


# -- Locust events ---------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    RUNTIME.environment = environment
    options = environment.parsed_options
    if options is None:  # Locust used as a library without a command line: nothing to set up
        return
    try:
        schedule = schedule_of(options)
        workload_of(options)
        if options.shape == "compare":
            assert isinstance(schedule, shapes.Compare)
            missing = {schedule.first, schedule.second} - set(user_classes_of(environment))
            if missing:
                raise ConfigError(f"--compare names unknown user classes: {', '.join(sorted(missing))}")
    except ConfigError as exc:
        sys.stderr.write(f"qcache load: {exc}\n")
        sys.exit(2)
    if options.tags or options.exclude_tags:
        _keep_tagged_users(environment, set(options.tags or ()), set(options.exclude_tags or ()))
    if isinstance(environment.runner, WorkerRunner):
        RUNTIME.recorder = LatencyRecorder(sends_to_master=True)
        environment.events.report_to_master.add_listener(_on_report_to_master)
        return
    if options.shape == "chaos" and os.environ.get("REDIS_URL", "").strip():
        sys.stderr.write(
            "qcache load: the chaos shape kills or pauses the Redis it runs against, so it runs only "
            "against a server the run starts itself; unset REDIS_URL to use it.\n"
        )
        sys.exit(2)
    try:
        wanted = CacheConfig.from_env().redis
    except ConfigError as exc:
        sys.stderr.write(f"qcache load: the cache's configuration cannot be read: {exc}\n")
        sys.exit(2)
    wants_tls = wanted.ssl_enabled and not os.environ.get("REDIS_URL", "").strip()
    if wanted.cluster_enabled and (options.shape == "chaos" or wants_tls):
        sys.stderr.write(
            "qcache load: on a Redis Cluster (REDIS_CLUSTER_ENABLED) the run starts a plain local cluster; "
            "the chaos shape and TLS need a standalone server, or REDIS_URL naming a node of your cluster.\n"
        )
        sys.exit(2)
    try:
        RUNTIME.provision(persistent=options.shape == "chaos", tls=wants_tls, cluster=wanted.cluster_enabled)
    except QCacheError as exc:
        sys.stderr.write(f"qcache load: no Redis: {exc}\n")
        sys.exit(2)
    problems = [str(issue) for issue in RUNTIME.config().errors()]
    if problems:  # say it once, here, rather than in a traceback per user
        RUNTIME.stack.close()
        sys.stderr.write("qcache load: the cache's configuration is not valid for this run:\n"
                         + "".join(f"  - {problem}\n" for problem in problems))
        sys.exit(2)
    if options.shape == "chaos":
        assert isinstance(RUNTIME.endpoint, RedisEndpoint)
        owned_server(RUNTIME.endpoint)
    setattr(options, _URL_OPTION, RUNTIME.url)
    setattr(options, _RUN_OPTION, RUNTIME.run_id)
    if isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(_on_worker_report)
    RUNTIME.start_sampler()


def _keep_tagged_users(environment: Environment, tags: set[str], exclude: set[str]) -> None:
    """Drop the user classes that ``--tags`` / ``--exclude-tags`` leave without a task.

    Locust filters tasks but still spawns such users, which then fail with
    "No tasks defined"; choosing users by tag is one of the ways the README
    offers, so a tag selects the classes that carry it.
    """

    def selected(task: Any) -> bool:
        task_tags = set(getattr(task, "locust_tag_set", ()))
        return (not tags or bool(task_tags & tags)) and not (task_tags & exclude)

    kept = [cls for cls in environment.user_classes if any(selected(t) for t in cls.tasks)]
    if not kept:
        sys.stderr.write("qcache load: no user class has a task with the selected tags\n")
        sys.exit(2)
    environment.user_classes = kept


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["qcache"] = RUNTIME.recorder.drain()
    data["qcache_exceptions"] = dict(RUNTIME.caller_exceptions)


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    payload = data.get("qcache")
    if payload:
        RUNTIME.recorder.merge(payload, source=client_id)
    for user, count in data.get("qcache_exceptions", {}).items():
        key = f"{client_id}/{user}"
        RUNTIME.caller_exceptions[key] = int(count)  # workers send totals


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if RUNTIME.written:  # a new test in the same Locust process (web UI): a new run folder
        RUNTIME.run_id = new_run_id()
        RUNTIME.written = False
    RUNTIME.recorder.reset()
    RUNTIME.users_by_second.clear()
    RUNTIME.caller_exceptions.clear()
    RUNTIME.fault = None
    RUNTIME.fault_error = None
    RUNTIME.started_at = time.time()
    RUNTIME.started_at_test = True
    if isinstance(environment.runner, MasterRunner):
        RUNTIME.processes = max(1, environment.runner.worker_count)
    if RUNTIME.is_worker or environment.parsed_options is None:
        return
    if environment.parsed_options.shape == "chaos":
        schedule = schedule_of(environment.parsed_options)
        assert isinstance(schedule, shapes.Chaos)
        gevent.spawn(_run_fault, schedule)


def _run_fault(schedule: shapes.Chaos) -> None:
    gevent.sleep(schedule.fault_at_s)
    assert isinstance(RUNTIME.endpoint, RedisEndpoint)
    try:
        RUNTIME.fault = inject_fault(RUNTIME.endpoint, RUNTIME.options.chaos_mode, schedule.down_s,
                                     sleep=gevent.sleep)
        log.info("qcache load: Redis %s at %.1f s, back at %.1f s", RUNTIME.fault.mode,
                 RUNTIME.fault.fault_at - RUNTIME.started_at, RUNTIME.fault.restored_at - RUNTIME.started_at)
    except Exception as exc:  # noqa: BLE001  # the run must still end and write what it measured
        RUNTIME.fault_error = f"{type(exc).__name__}: {exc}"
        log.error("qcache load: the fault could not be injected: %s", RUNTIME.fault_error)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    """A test stopped from the web UI: write it now, as the next one gets its own folder.

    A headless run is written at quit instead: there the master fires
    ``test_stop`` before its workers send their final reports.
    """
    options = environment.parsed_options
    if (options is not None and not options.headless and not RUNTIME.is_worker and RUNTIME.url
            and not RUNTIME.written and not RUNTIME.closed):
        _write_and_print(environment)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    try:
        if (not RUNTIME.is_worker and environment.parsed_options is not None and RUNTIME.url
                and not RUNTIME.written and RUNTIME.started_at_test):
            _write_and_print(environment)
    finally:
        RUNTIME.close()


def _write_and_print(environment: Environment) -> None:
    RUNTIME.sample()
    path = write_results(environment)
    RUNTIME.written = True
    print(f"qcache load: results in {path}", flush=True)
    print("\n".join(summary_lines(read_summary(path))), flush=True)
    print(f"  check them: qcache load check {path}", flush=True)


def user_classes_of(environment: Environment) -> dict[str, type[User]]:
    """The user classes Locust found, by name (Locust annotates them as instances; they are classes)."""
    return cast("dict[str, type[User]]", dict(environment.available_user_classes or {}))


def cache_user_names(environment: Environment) -> tuple[str, ...]:
    return tuple(name for name, cls in user_classes_of(environment).items()
                 if issubclass(cls, CacheUser) and cls.cache_user)


def write_results(environment: Environment) -> Path:
    """The run folder: our summary and tables, plus Locust's own CSV and HTML."""
    options = environment.parsed_options
    assert options is not None
    root = Path(options.results_dir) if options.results_dir else results_root()
    directory = root / RUNTIME.run_id
    schedule = schedule_of(options)
    finished = time.time()
    config = RUNTIME.config()
    selected = [cls.__name__ for cls in environment.user_classes]
    info = RunInfo(
        run_id=RUNTIME.run_id,
        started_at=RUNTIME.started_at,
        finished_at=finished,
        shape=options.shape,
        processes=RUNTIME.processes,
        workload=workload_of(options),
        config=config.to_env(),  # secrets masked
        redis=RUNTIME.endpoint.describe() if RUNTIME.endpoint is not None else {"url": "(from master)"},
        user_classes=tuple(selected),
        cache_users=cache_user_names(environment),
        extra={
            "thresholds": {
                "latency_alert_ms": config.monitoring.latency_threshold_ms,
                "hit_rate": config.monitoring.hit_rate_threshold,
            },
            "caller_exceptions": sum(RUNTIME.caller_exceptions.values()),
            "locust": {"host": environment.host, "num_users": options.num_users,
                       "spawn_rate": options.spawn_rate, "run_time": options.run_time},
            **({"fault_error": RUNTIME.fault_error} if RUNTIME.fault_error else {}),
        },
    )
    steps = None
    timeline = RUNTIME.recorder.timeline()
    if isinstance(schedule, shapes.Ramp):
        relative = [(second - RUNTIME.started_at, stats) for second, stats in timeline]
        steps = ramp_steps(schedule, relative)
    report = None
    if RUNTIME.fault is not None:
        cache_users = set(info.cache_users)
        exceptions = sum(count for key, count in RUNTIME.caller_exceptions.items()
                         if key.rsplit("/", 1)[-1] in cache_users)
        report = chaos_report(RUNTIME.fault, RUNTIME.started_at, timeline, exceptions)
    summary = build_summary(RUNTIME.recorder, info, users_by_second=RUNTIME.users_by_second,
                            ramp_steps=steps, chaos=report,
                            compare=schedule if isinstance(schedule, shapes.Compare) else None)
    write_run(directory, summary, RUNTIME.recorder)
    _write_locust_reports(environment, directory)
    return directory


def _write_locust_reports(environment: Environment, directory: Path) -> None:
    """Locust's own request and failure CSVs and its HTML report, beside ours."""
    stats_csv = StatsCSV(environment, PERCENTILES_TO_REPORT)
    with open(directory / "locust_stats.csv", "w", newline="", encoding="utf-8") as handle:
        stats_csv.requests_csv(csv.writer(handle))
    with open(directory / "locust_failures.csv", "w", newline="", encoding="utf-8") as handle:
        stats_csv.failures_csv(csv.writer(handle))
    with contextlib.suppress(Exception):  # the HTML report is a convenience; never lose the rest for it
        (directory / "locust_report.html").write_text(
            get_html_report(environment, show_download_link=False), encoding="utf-8"
        )


__all__ = ["RUNTIME", "CacheUser", "LoadRuntime", "QCacheShape", "is_hit"]
