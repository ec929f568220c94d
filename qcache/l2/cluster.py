"""The L2 tier on Redis Cluster: the standalone tiers with redis-py's own cluster clients swapped in.

:class:`RedisClusterTier` and :class:`AsyncRedisClusterTier` inherit every
operation of :class:`RedisTier` / :class:`AsyncRedisTier` (guards, breaker,
chunking, TTL rules) and change only what a cluster does differently:

* Reads (one key or a batch) go to the primaries directly: one pipeline of
  GETs per primary, every primary at once (:mod:`qcache.l2.node_batches`),
  falling back to redis-py's ``get`` / ``mget_nonatomic`` (redirects
  followed, topology refreshed) on any error. Batch writes likewise send one
  pipeline of SETs per primary (:mod:`qcache.l2.node_writes`); only entries
  not acknowledged go through redis-py's pipeline.
  UNLINK of many keys is split by slot by redis-py.
* ``delete_pattern`` and ``scan_keys`` SCAN every primary (``scan_iter``
  keeps one cursor per node), so ``invalidate_pattern`` and ``clear`` reach
  the whole cluster; keys found are unlinked in batches, split by slot.
* A tagged write cannot run the tag script of :mod:`qcache.l2.tagging` (its
  keys live in different slots): the tag sets are updated in one pipeline,
  and only once that succeeded are the entries written in a second one, so an
  entry is never stored without its tag memberships, whatever node fails.
* ``server_info`` sums memory, clients and evictions over the primaries;
  ``ping`` answers only when every node does.
* L1 coherence across processes needs one invalidation connection per
  primary, following failovers: :mod:`qcache.l2.cluster_tracking`.

The sync ``RedisCluster`` talks to its seed nodes as soon as it is built;
the tier builds it on first use instead, under the operation's guard, so a
cluster that is down when the cache starts is a miss, not a crash.

Redis Cluster errors that redis-py raises outside ``RedisError`` (a slot with
no live node, no reachable seed) count as connectivity failures for the
breaker (see :mod:`qcache.l2.guard`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio.cluster as aredis_cluster
import redis.cluster as redis_cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.connection import parse_url
from redis.retry import Retry

from qcache.config.validation import cluster_seed_nodes
from qcache.l2.aio import AsyncRedisTier
from qcache.l2.batching import Entry, SetManyItems, normalize_items
from qcache.l2.breaker import CircuitBreaker
from qcache.l2.core import TierCore, configured_breaker
from qcache.l2.deadline import DeadlineRetry, arm, being_cancelled, bounded_connection_class, remaining
from qcache.l2.guard import unjudged
from qcache.l2.node_batches import plan_reads, read_async, read_sync
from qcache.l2.node_writes import plan_writes, write_async, write_sync
from qcache.l2.patterns import SCAN_COUNT, UnlinkBatcher
from qcache.l2.responses import ServerInfo, server_info_from
from qcache.l2.settings import ConfigLike, ConnectionSettings
from qcache.l2.tagging import Membership, queue_tag_updates, tag_updates
from qcache.l2.tier import RedisTier

ClusterTierT = TypeVar("ClusterTierT", bound=TierCore)
T = TypeVar("T")


class ClusterSection(Protocol):
    """The cluster attributes of ``config.redis``."""

    @property
    def cluster_enabled(self) -> bool: ...
    @property
    def cluster_nodes(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Seed nodes plus the connection settings every node connection uses.

    The seeds are ``REDIS_CLUSTER_NODES`` when set, else the node named by
    ``REDIS_URL`` or ``REDIS_HOST``/``REDIS_PORT``; redis-py discovers the
    rest of the cluster from any seed that answers.
    """

    seeds: tuple[tuple[str, int], ...]
    connection: ConnectionSettings

    @classmethod
    def from_config(cls, config: ConfigLike) -> ClusterSettings:
        """Read ``config.redis`` (validated by :meth:`ConnectionSettings.from_config`)."""
        connection = ConnectionSettings.from_config(config.redis)
        nodes = str(getattr(config.redis, "cluster_nodes", "") or "")
        seeds = cluster_seed_nodes(nodes)
        if not seeds:
            if connection.url:
                parts = parse_url(connection.url)  # type: ignore[no-untyped-call]  # unannotated in redis-py
                seeds = [(str(parts.get("host", "localhost")), int(parts.get("port", 6379)))]
            else:
                seeds = [(connection.host, connection.port)]
        return cls(tuple(seeds), connection)

    def for_cache_tier(self) -> ClusterSettings:
        """Every wait capped at ``CACHE_L2_TIMEOUT_MS`` (see ``ConnectionSettings.for_cache_tier``)."""
        return replace(self, connection=self.connection.for_cache_tier())

    def startup_nodes(self, node_cls: Any) -> list[Any]:
        """The seeds as ``ClusterNode`` objects of either flavour (``node_cls``)."""
        return [node_cls(host, port) for host, port in self.seeds]

    def client_kwargs(self, retry_cls: type[Any]) -> dict[str, Any]:
        """Keyword arguments for either ``RedisCluster``: credentials, timeouts, retry, TLS, pool cap."""
        settings = self.connection
        kwargs: dict[str, Any] = {
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "retry": settings.retry(retry_cls),
            "max_connections": settings.max_connections,  # per node
            "decode_responses": False,
            # Slots of live primaries keep serving while another primary fails over.
            "require_full_coverage": False,
            "password": settings.password,
            "username": settings.username,
        }
        if settings.url:
            parts = parse_url(settings.url)  # type: ignore[no-untyped-call]
            kwargs["password"] = parts.get("password", settings.password)
            kwargs["username"] = parts.get("username", settings.username)
        if settings.uses_tls:
            tls = settings.tls
            kwargs.update(
                ssl=True,
                ssl_ca_certs=tls.ca_certs if tls else None,
                ssl_certfile=tls.certfile if tls else None,
                ssl_keyfile=tls.keyfile if tls else None,
                ssl_cert_reqs="required",
            )
        return kwargs


def cluster_enabled(config: ConfigLike) -> bool:
    """Whether ``config`` asks for a Redis Cluster (``REDIS_CLUSTER_ENABLED``)."""
    return getattr(config.redis, "cluster_enabled", False) is True


class _SyncClusterClient:
    """A sync ``RedisCluster``, built on first use, with ``mget`` meaning ``mget_nonatomic``.

    Building it contacts the seed nodes; doing that lazily puts the first
    contact inside an operation's guard. A failure to build is raised as a
    redis ``ConnectionError`` and tried again on the next call.
    """

    connection_pool = None  # one pool per node: see get_connection_kwargs

    def __init__(self, factory: Callable[[], Any], connection_kwargs: Mapping[str, Any]) -> None:
        self._factory = factory
        self._connection_kwargs = dict(connection_kwargs)
        self._client: Any = None
        self._lock = threading.Lock()

    def get_connection_kwargs(self) -> dict[str, Any]:
        return dict(self._connection_kwargs)

    def cluster(self) -> Any:
        """The ``RedisCluster``, built now if it was not yet."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._factory()
                    except redis.exceptions.RedisClusterException as exc:
                        raise redis.ConnectionError(str(exc)) from exc
                client = self._client
        return client

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """One pipeline of GETs per primary (:mod:`qcache.l2.node_batches`); redis-py's own path on trouble."""
        values = self._read_direct(keys)
        if values is None:
            values = self.cluster().mget_nonatomic(keys)
        return values

    def get(self, key: str) -> bytes | None:
        """One GET sent to the key's primary directly; redis-py's ``get`` (and its errors) on trouble."""
        values = self._read_direct([key])
        if values is None:
            value: bytes | None = self.cluster().get(key)
            return value
        return values[0]

    def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` by primary (:mod:`qcache.l2.node_writes`); the ones not acknowledged."""
        cluster = self.cluster()
        plan = plan_writes(entries, cluster.nodes_manager.slots_cache)
        return list(entries) if plan is None else write_sync(plan)

    def _read_direct(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """The values read by primary, or None when redis-py's own path must serve the call.

        That is a slot missing from the table, a MOVED/ASK reply, a failed node
        or a reply error: redis-py then redirects, refreshes and retries (and
        raises what it raises). Once the deadline is spent the error is raised
        at once: a second attempt could only wait again.
        """
        cluster = self.cluster()
        plan = plan_reads(keys, cluster.nodes_manager.slots_cache)
        if plan is None:
            return None
        try:
            return read_sync(plan, len(keys))
        except (redis.RedisError, OSError):
            left = remaining()
            if left is not None and left <= 0:
                raise
            return None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster(), name)


class _AsyncClusterClient:
    """An asyncio ``RedisCluster`` (it connects on first command) with ``mget`` meaning ``mget_nonatomic``."""

    connection_pool = None

    def __init__(self, client: Any) -> None:
        self._cluster = client

    def cluster(self) -> Any:
        return self._cluster

    def get_connection_kwargs(self) -> dict[str, Any]:
        return dict(self._cluster.get_connection_kwargs())

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """One pipeline of GETs per primary, all at once; redis-py's own path on trouble (as the sync one)."""
        values = await self._read_direct(keys)
        if values is None:
            values = await self._cluster.mget_nonatomic(keys)
        return values

    async def get(self, key: str) -> bytes | None:
        """One GET sent to the key's primary directly; redis-py's ``get`` on trouble (as the sync one)."""
        values = await self._read_direct([key])
        if values is None:
            value: bytes | None = await self._cluster.get(key)
            return value
        return values[0]

    async def set_direct(self, entries: Sequence[Entry]) -> list[Entry]:
        """Write ``entries`` by primary, every primary at once; the ones not acknowledged."""
        plan = plan_writes(entries, self._cluster.nodes_manager.slots_cache)
        return list(entries) if plan is None else await write_async(plan)

    async def _read_direct(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """The values read by primary, or None for redis-py's path (the deadline is ``asyncio.timeout``'s)."""
        plan = plan_reads(keys, self._cluster.nodes_manager.slots_cache)
        if plan is None:
            return None
        try:
            return await read_async(plan, len(keys))
        except (redis.RedisError, OSError):
            if being_cancelled():  # the deadline passed: redis-py's path could only wait again
                raise
            return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


def _cluster_info(replies: Mapping[str, Mapping[str, object]]) -> ServerInfo:
    """One :class:`ServerInfo` for the primaries: memory, clients and evictions summed.

    ``maxmemory`` is 0 (no limit) when any primary has none; the version is
    the oldest one, the policy the first primary's (they should all agree).
    """
    infos = [server_info_from(raw) for raw in replies.values()]
    if not infos:
        return server_info_from({})
    first = infos[0]
    return ServerInfo(
        version=min((i.version for i in infos), key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit())),
        used_memory=sum(i.used_memory for i in infos),
        maxmemory=0 if any(i.maxmemory == 0 for i in infos) else sum(i.maxmemory for i in infos),
        maxmemory_policy=first.maxmemory_policy,
        mode="cluster",
        connected_clients=sum(i.connected_clients for i in infos),
        evicted_keys=sum(i.evicted_keys for i in infos),
    )


def _tier_kwargs(config: ConfigLike, settings: ClusterSettings) -> dict[str, Any]:
    perf = config.performance
    cap = settings.connection.max_connections
    return {
        "batch_size": perf.batch_size,
        "parallel_operations": min(perf.parallel_operations, cap),
        "owns_client": True,
        "warm_connections": min(perf.connection_pool_size, cap),
        "timeout": settings.connection.operation_timeout,
    }


def _armed(items: Iterator[T], budget: float | None) -> Iterator[T]:
    """``items`` (a ``scan_iter``) with a fresh deadline before each step: a long scan is many round trips."""
    while True:
        arm(budget)
        try:
            item = next(items)
        except StopIteration:
            return
        yield item


async def _bounded(items: AsyncIterator[T], budget: float | None) -> AsyncIterator[T]:
    """``items`` with each step under its own ``asyncio.timeout(budget)`` (the async ``_armed``)."""
    while True:
        try:
            async with asyncio.timeout(budget):
                item = await anext(items)
        except StopAsyncIteration:
            return
        yield item


class RedisClusterTier(RedisTier):
    """:class:`RedisTier` on a Redis Cluster (redis-py's ``RedisCluster``); see the module docstring."""

    @classmethod
    def from_config(
        cls: type[ClusterTierT], config: ConfigLike, *, namespace: str, breaker: CircuitBreaker | None = None
    ) -> ClusterTierT:
        """A tier on the cluster named by ``config``; nothing connects until the first operation.

        ``CACHE_L2_TIMEOUT_MS`` bounds every round trip as on a standalone
        server: the node connections wait for a reply only until the deadline
        and the cluster's retries stop once it has passed (:mod:`qcache.l2.deadline`).
        """
        settings = ClusterSettings.from_config(config).for_cache_tier()
        kwargs = settings.client_kwargs(DeadlineRetry)
        plain = redis.SSLConnection if settings.connection.uses_tls else redis.Connection
        kwargs.update(connection_pool_class=redis.BlockingConnectionPool, timeout=settings.connection.connect_timeout,
                      connection_class=bounded_connection_class(plain))
        nodes = settings.startup_nodes(redis_cluster.ClusterNode)

        def build() -> Any:
            return redis_cluster.RedisCluster(startup_nodes=nodes, **kwargs)

        client = _SyncClusterClient(build, {"decode_responses": False})
        return cls(client, namespace=namespace, breaker=breaker or configured_breaker(config),
                   **_tier_kwargs(config, settings))

    @classmethod
    def from_client(cls, client: Any, *, namespace: str, **options: Any) -> RedisClusterTier:
        """Wrap an existing ``redis.cluster.RedisCluster`` (tests, benchmarks); it must return bytes."""
        kwargs = client.get_connection_kwargs()
        return cls(_SyncClusterClient(lambda: client, kwargs), namespace=namespace, **options)

    def delete_pattern(self, pattern: str) -> int:
        """SCAN every primary and UNLINK what matches, in batches split by slot; returns the count."""
        self.check_pattern(pattern)
        batcher = UnlinkBatcher(self._batch_size)
        removed = 0
        with self._guards["SCAN+UNLINK"]:
            for key in _armed(self._client.scan_iter(match=pattern, count=SCAN_COUNT), self._timeout):
                due = batcher.take([key], finished=False)
                if due:
                    arm(self._timeout)
                    removed += self._client.unlink(*due)
            due = batcher.take([], finished=True)
            if due:
                arm(self._timeout)
                removed += self._client.unlink(*due)
        return removed

    def scan_keys(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` on every primary (SCAN, never KEYS)."""
        self.check_pattern(pattern)
        with self._guards["SCAN"]:
            return [k.decode("utf-8", "surrogateescape")
                    for k in _armed(self._client.scan_iter(match=pattern, count=SCAN_COUNT), self._timeout)]

    def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """Tag sets first (one pipeline), then the entries (another): never an entry without its tags."""
        entries = normalize_items(items, None)
        updates = tag_updates(memberships)
        with self._guards["SET+TAGS"]:
            with self._client.pipeline(transaction=False) as pipe:
                queue_tag_updates(pipe, updates, now_ms)
                pipe.execute()
            arm(self._timeout)
            self._set_chunk(entries)

    def ping(self) -> float:
        """Round-trip time of a PING to every node, in seconds; discovering the cluster is not timed."""
        with self._guards["PING"]:
            client = self._client.cluster()
            arm(self._timeout)  # discovery had its own round trips
            start = time.perf_counter()
            client.ping(target_nodes=redis_cluster.RedisCluster.ALL_NODES)
            return time.perf_counter() - start

    def server_info(self) -> ServerInfo:
        """Memory and clients summed over the primaries (one INFO each)."""
        with self._guards["INFO"]:
            raw = self._client.info(target_nodes=redis_cluster.RedisCluster.PRIMARIES)
        return _cluster_info(raw)

    def warm_up(self) -> int:
        """Discover the cluster and open one connection per node (a PING each); returns the node count."""
        with unjudged("CONNECT"):  # speculative: the breaker is left to the calls that matter
            arm(self._timeout)
            client = self._client.cluster()
            nodes = client.get_nodes()
            arm(self._timeout)
            client.ping(target_nodes=nodes)
        return len(nodes)


class AsyncRedisClusterTier(AsyncRedisTier):
    """:class:`AsyncRedisTier` on ``redis.asyncio.cluster.RedisCluster``; see the module docstring."""

    @classmethod
    def from_config(
        cls: type[ClusterTierT], config: ConfigLike, *, namespace: str, breaker: CircuitBreaker | None = None
    ) -> ClusterTierT:
        """A tier on the cluster named by ``config``; the client connects on its first command.

        ``CACHE_L2_TIMEOUT_MS`` bounds every round trip with ``asyncio.timeout``, as on a standalone server.
        """
        settings = ClusterSettings.from_config(config).for_cache_tier()
        kwargs = settings.client_kwargs(AsyncRetry)
        nodes = settings.startup_nodes(aredis_cluster.ClusterNode)
        client = aredis_cluster.RedisCluster(startup_nodes=nodes, **kwargs)
        return cls(_AsyncClusterClient(client), namespace=namespace, breaker=breaker or configured_breaker(config),
                   **_tier_kwargs(config, settings))

    @classmethod
    def from_client(cls, client: Any, *, namespace: str, **options: Any) -> AsyncRedisClusterTier:
        """Wrap an existing ``redis.asyncio.cluster.RedisCluster``; it must return bytes."""
        return cls(_AsyncClusterClient(client), namespace=namespace, **options)

    async def delete_pattern(self, pattern: str) -> int:
        """SCAN every primary and UNLINK what matches; see :meth:`RedisClusterTier.delete_pattern`."""
        self.check_pattern(pattern)
        batcher = UnlinkBatcher(self._batch_size)
        removed = 0
        with self._guards["SCAN+UNLINK"]:
            async for key in _bounded(self._client.scan_iter(match=pattern, count=SCAN_COUNT), self._timeout):
                due = batcher.take([key], finished=False)
                if due:
                    async with asyncio.timeout(self._timeout):
                        removed += await self._client.unlink(*due)
            due = batcher.take([], finished=True)
            if due:
                async with asyncio.timeout(self._timeout):
                    removed += await self._client.unlink(*due)
        return removed

    async def scan_keys(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` on every primary."""
        self.check_pattern(pattern)
        with self._guards["SCAN"]:
            return [k.decode("utf-8", "surrogateescape")
                    async for k in _bounded(self._client.scan_iter(match=pattern, count=SCAN_COUNT), self._timeout)]

    async def set_tagged(self, items: SetManyItems, memberships: Sequence[Membership], now_ms: int) -> None:
        """Tag sets first, then the entries; see :meth:`RedisClusterTier.set_tagged`."""
        entries = normalize_items(items, None)
        updates = tag_updates(memberships)
        with self._guards["SET+TAGS"]:
            async with asyncio.timeout(self._timeout), self._client.pipeline(transaction=False) as pipe:
                queue_tag_updates(pipe, updates, now_ms)
                await pipe.execute()
            async with asyncio.timeout(self._timeout):
                await self._set_chunk(entries)

    async def ping(self) -> float:
        """Round-trip time of a PING to every node, in seconds; discovering the cluster is not timed."""
        with self._guards["PING"]:
            client = self._client.cluster()
            async with asyncio.timeout(self._timeout):
                await client.initialize()
            start = time.perf_counter()
            async with asyncio.timeout(self._timeout):
                await client.ping(target_nodes=aredis_cluster.RedisCluster.ALL_NODES)
            return time.perf_counter() - start

    async def server_info(self) -> ServerInfo:
        """Memory and clients summed over the primaries (one INFO each)."""
        with self._guards["INFO"]:
            async with asyncio.timeout(self._timeout):
                raw = await self._client.info(target_nodes=aredis_cluster.RedisCluster.PRIMARIES)
        return _cluster_info(raw)

    async def warm_up(self) -> int:
        """Discover the cluster and open one connection per node (a PING each); returns the node count."""
        with unjudged("CONNECT"):  # speculative: the breaker is left to the calls that matter
            client = self._client.cluster()
            async with asyncio.timeout(self._timeout):
                await client.initialize()
                nodes = client.get_nodes()
                await client.ping(target_nodes=nodes)
        return len(nodes)


def sync_cluster_client(config: ConfigLike) -> Any:
    """A plain sync ``RedisCluster`` for the operations tools (backup, maintenance), connected now."""
    settings = ClusterSettings.from_config(config)
    nodes = settings.startup_nodes(redis_cluster.ClusterNode)
    return redis_cluster.RedisCluster(startup_nodes=nodes, **settings.client_kwargs(Retry))


def sync_tier_from_config(config: ConfigLike, *, namespace: str) -> RedisTier:
    """The sync L2 tier ``config`` asks for: on a Redis Cluster or a standalone server."""
    cls = RedisClusterTier if cluster_enabled(config) else RedisTier
    return cls.from_config(config, namespace=namespace)


def async_tier_from_config(config: ConfigLike, *, namespace: str) -> AsyncRedisTier:
    """The asyncio L2 tier ``config`` asks for: on a Redis Cluster or a standalone server."""
    cls = AsyncRedisClusterTier if cluster_enabled(config) else AsyncRedisTier
    return cls.from_config(config, namespace=namespace)

