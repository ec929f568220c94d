"""State and checks shared by :class:`RedisTier` and :class:`AsyncRedisTier`; no I/O here."""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from redis.utils import HIREDIS_AVAILABLE

from qcache.l2.batching import check_batch_settings
from qcache.l2.breaker import BreakerStats, CircuitBreaker
from qcache.l2.glob import escape_glob
from qcache.l2.guard import OperationGuard
from qcache.l2.patterns import check_namespace, check_pattern
from qcache.l2.settings import ConfigLike, ConnectionSettings
from qcache.l2.tagging import SET_TAGGED_SCRIPT

TierT = TypeVar("TierT", bound="TierCore")

# One guard per operation name; the names appear in error messages and logs.
OPERATIONS = (
    "GET",
    "MGET",
    "SET",
    "PIPELINE SET",
    "UNLINK",
    "SCAN+UNLINK",
    "SCAN",
    "SET+TAGS",
    "TAG MEMBERS",
    "PTTL",
    "PING",
    "INFO",
)


def connection_kwargs(client: Any) -> dict[str, Any]:
    """The connection keyword arguments of a redis-py client's pool (a cluster client's, for every node)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return dict(client.get_connection_kwargs())
    return dict(pool.connection_kwargs)


def uses_hiredis(client: Any, default_parser: type[Any]) -> bool:
    """Whether the client's connections parse replies with hiredis.

    redis-py's ``DefaultParser`` (``default_parser``) is the hiredis one exactly
    when hiredis is installed (``HIREDIS_AVAILABLE``); a client given another
    ``parser_class`` does not use it.
    """
    parser = connection_kwargs(client).get("parser_class")
    return HIREDIS_AVAILABLE and (parser is None or parser is default_parser)


def configured_breaker(config: ConfigLike) -> CircuitBreaker:
    """A breaker with ``CACHE_BREAKER_THRESHOLD`` and ``CACHE_BREAKER_COOLDOWN_MS``."""
    return CircuitBreaker(config.redis.breaker_threshold, config.redis.breaker_cooldown_ms / 1000.0)


class TierCore:
    """What both tiers share: namespace, batching settings, breaker, guards, client checks.

    Subclasses only add the I/O calls; everything decided without the network
    lives here or in the pure helper modules.
    """

    #: ``redis`` or ``redis.asyncio``: where :meth:`from_config` finds the pool and client classes.
    _flavour: ClassVar[ModuleType]
    #: That flavour's ``Retry`` class.
    _retry_cls: ClassVar[type[Any]]
    #: That flavour's ``DefaultParser`` (the hiredis one when hiredis is installed).
    _default_parser: ClassVar[type[Any]]
    #: Whether L1 coherence may listen to this tier's server (client tracking on one connection).
    supports_tracking: ClassVar[bool] = True

    def __init__(
        self,
        client: Any,
        *,
        namespace: str,
        batch_size: int = 100,
        parallel_operations: int = 4,
        breaker: CircuitBreaker | None = None,
        owns_client: bool = False,
        warm_connections: int = 0,
        timeout: float | None = None,
    ) -> None:
        """Wrap an existing client (tests, benchmarks).

        ``owns_client`` makes ``close`` close it; ``warm_connections`` is how
        many connections ``warm_up`` opens; ``breaker`` may be shared with
        other tiers on the same server (a fresh default one otherwise);
        ``timeout`` is the deadline of one round trip in seconds
        (``CACHE_L2_TIMEOUT_MS``; None: only the client's own timeouts).
        The sync tier enforces it through the connection classes of
        :mod:`qcache.l2.deadline`, which :meth:`from_config` installs.
        """
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        check_batch_settings(batch_size, parallel_operations)
        if connection_kwargs(client).get("decode_responses"):
            raise ValueError(
                "the L2 tier needs a client with decode_responses=False: it stores bytes"
            )
        self._client: Any = client  # redis-py's typing differs across versions and flavours
        self._namespace = check_namespace(namespace)
        self._escaped_namespace = escape_glob(namespace)
        self._batch_size = batch_size
        self._parallel = parallel_operations
        self._breaker = breaker if breaker is not None else CircuitBreaker()
        self._owns_client = owns_client
        self._warm_connections = max(0, warm_connections)
        self._timeout = timeout
        self._guards = {op: OperationGuard(op, self._breaker, timeout) for op in OPERATIONS}
        self._set_tagged_sha = hashlib.sha1(SET_TAGGED_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis's script id
        self._closed = False
        self._init_flavour()

    def _init_flavour(self) -> None:
        """State only one flavour needs (the sync tier's batch threads); none here."""

    @classmethod
    def from_config(
        cls: type[TierT], config: ConfigLike, *, namespace: str, breaker: CircuitBreaker | None = None
    ) -> TierT:
        """Build a tier and its own blocking connection pool from a :class:`qcache.config.CacheConfig`.

        Waits: ``CACHE_L2_TIMEOUT_MS`` bounds every round trip, retries and
        back-off included, and caps the connect, pool and socket timeouts; a
        round trip that runs out of it is a failure for the breaker, whose
        threshold and cool-down are ``CACHE_BREAKER_THRESHOLD`` and
        ``CACHE_BREAKER_COOLDOWN_MS`` (unless a ``breaker`` is given).

        Pool sizing: ``REDIS_MAX_CONNECTIONS`` is the hard cap on sockets to
        the server. ``CACHE_CONNECTION_POOL_SIZE`` (clamped to that cap) is how
        many connections ``warm_up`` opens ahead of traffic, so the first
        burst of parallel batches does not pay connects and TLS handshakes.
        ``CACHE_PARALLEL_OPERATIONS`` is clamped to the cap too: more chunks in
        flight than connections would only queue on the pool. No I/O happens
        here; the first operation (or ``warm_up``) connects.
        """
        flavour = cls._flavour
        redis = config.redis
        settings = ConnectionSettings.from_config(redis).for_cache_tier()
        pool = settings.build_pool(
            pool_cls=flavour.BlockingConnectionPool,
            connection_cls=flavour.Connection,
            ssl_connection_cls=flavour.SSLConnection,
            retry_cls=cls._retry_cls,
        )
        cls._bound_pool(pool)
        perf = config.performance
        return cls(
            flavour.Redis.from_pool(pool),
            namespace=namespace,
            batch_size=perf.batch_size,
            parallel_operations=min(perf.parallel_operations, settings.max_connections),
            breaker=breaker if breaker is not None else configured_breaker(config),
            owns_client=True,
            warm_connections=min(perf.connection_pool_size, settings.max_connections),
            timeout=settings.operation_timeout,
        )

    @classmethod
    def _bound_pool(cls, pool: Any) -> None:
        """Make ``pool``'s connections keep the per-round-trip deadline (the sync tier's job; see there)."""

    @property
    def hiredis_in_use(self) -> bool:
        """Whether replies are parsed by hiredis (about 2x faster MGET than the pure-Python parser)."""
        return uses_hiredis(self._client, self._default_parser)

    @property
    def client(self) -> Any:
        """The underlying redis-py client (for diagnostics; the tier's methods are the API)."""
        return self._client

    @property
    def namespace(self) -> str:
        """The prefix every key of this cache starts with; pattern deletion stays inside it."""
        return self._namespace

    @property
    def batch_size(self) -> int:
        """Keys per MGET / per SET pipeline chunk."""
        return self._batch_size

    @property
    def parallel_operations(self) -> int:
        """Chunks of one batch call in flight at once."""
        return self._parallel

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding this tier (may be shared with another tier)."""
        return self._breaker

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def breaker_stats(self) -> BreakerStats:
        """Breaker state and counters, for metrics and health."""
        return self._breaker.stats()

    def check_pattern(self, pattern: str) -> None:
        """Raise ``ValueError`` unless ``pattern`` stays inside the namespace (see :func:`check_pattern`)."""
        check_pattern(pattern, self._escaped_namespace)

    def _mark_closed(self) -> bool:
        """Flag the tier closed; returns False if it already was (close is idempotent)."""
        if self._closed:
            return False
        self._closed = True
        for guard in self._guards.values():
            guard.closed = True
        return True
