"""L1 coherence on a Redis Cluster: one invalidation connection per primary, following the topology.

Client tracking reports only the keys of the node its connection is on, so a
cluster needs one tracking connection per primary (``BCAST PREFIX`` on each:
every primary reports the keys of its own slots). :class:`ClusterTrackingListener`
and :class:`AsyncClusterTrackingListener` supervise them: every
:data:`TOPOLOGY_INTERVAL` they read the primaries from the cluster client's
slot table, refreshed from the cluster first whenever a node's connection is
down (so the replica promoted by a failover is found), start a
:class:`~qcache.l2.tracking.TrackingListener` on each new primary and stop
the ones on nodes that no longer are.

Each node's listener reports to the cache's sink through a :class:`_NodeSink`:
keys go straight through; a lost connection flushes L1, since that node's
reports may be missed, and a restored one flushes it again, for what L1 took
in while nobody listened there (as on a standalone server); the coherence
counts as live only while every primary has a live listener. The echo checks
run once for the whole cluster, on the supervisor, with the cluster client's
batch reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from qcache.l2.tracking import FIRST_CONNECT_WAIT, AsyncTrackingListener, InvalidationSink, TrackingListener

logger = logging.getLogger("qcache")

#: Seconds between two looks at the cluster's primaries.
TOPOLOGY_INTERVAL = 1.0


class _Coverage:
    """Which primaries have a live tracking connection; the cache's sink is live only when all of them do."""

    def __init__(self, sink: InvalidationSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._live: set[str] = set()

    def want(self, names: set[str]) -> None:
        """The primaries of the cluster now."""
        with self._lock:
            self._wanted = set(names)
            self._live &= self._wanted
            self._sink.live = bool(self._wanted) and self._wanted <= self._live

    def incomplete(self) -> bool:
        """Whether some primary has no live listener (a failed node, a connection not up yet)."""
        with self._lock:
            return not self._wanted <= self._live

    def restored(self, name: str) -> None:
        with self._lock:
            self._live.add(name)
            self._sink.restored()
            self._sink.live = self._wanted <= self._live

    def lost(self, name: str) -> None:
        with self._lock:
            self._live.discard(name)
            self._sink.lost()


class _NodeSink:
    """One primary's listener's sink: keys go to the cache's sink, losses and restorations via the coverage."""

    def __init__(self, name: str, coverage: _Coverage, sink: InvalidationSink) -> None:
        self.name = name
        self.live = False
        self.wake = _nothing  # set by the node's listener; its echo checks are the supervisor's
        self._coverage = coverage
        self._sink = sink

    def invalidated(self, skeys: Sequence[str] | None) -> None:
        self._sink.invalidated(skeys)

    def lost(self) -> None:
        self._coverage.lost(self.name)

    def restored(self) -> None:
        self._coverage.restored(self.name)

    def take_checks(self) -> dict[str, bytes]:
        return {}

    def checked(self, skeys: Sequence[str], expected: Sequence[bytes], found: Sequence[bytes | None]) -> None:
        """Never called: node listeners run no echo checks."""


class _NodeClient:
    """What a node's listener uses of a client: a pool-like object with ``connection_class`` and kwargs."""

    def __init__(self, pool: Any) -> None:
        self.connection_pool = pool


class ClusterTrackingListener(TrackingListener):
    """A sync cache's invalidation connections on a cluster: a supervisor thread and one listener per primary.

    ``client`` is the cluster tier's client (``cluster()`` gives the
    ``RedisCluster``; ``mget`` reads across slots, for the echo checks).
    """

    def __init__(self, client: Any, prefix: str, sink: InvalidationSink) -> None:
        super().__init__(client, prefix, sink)
        self._coverage = _Coverage(sink)
        self._nodes: dict[str, TrackingListener] = {}

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the supervisor, then every node's listener."""
        super().stop(timeout)
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            node.stop(timeout)
        self._sink.lost()

    def _listen_loop(self) -> None:
        """The supervisor (it runs where a standalone listener reads its connection)."""
        while not self._stopping.is_set():
            try:
                self._follow(self._primaries())
            except Exception as exc:  # the cluster unreachable: the next round tries again
                logger.debug("qcache: cluster topology for invalidation not read: %s", exc)
            self._first_attempt.set()
            self._stopping.wait(TOPOLOGY_INTERVAL)

    def _primaries(self) -> dict[str, Any]:
        """``{node name: its connection pool}`` for every primary, refreshed from the cluster if one is not covered.

        A primary redis-py has not connected yet maps to None: it is wanted (L1
        is not called coherent without it) and gets its listener in a later round.
        """
        cluster = self._client.cluster()
        if self._coverage.incomplete():
            cluster.nodes_manager.initialize()
        return {node.name: None if node.redis_connection is None else node.redis_connection.connection_pool
                for node in cluster.get_primaries()}

    def _follow(self, primaries: dict[str, Any]) -> None:
        for name in self._nodes.keys() - primaries.keys():
            self._nodes.pop(name).stop()
        self._coverage.want(set(primaries))
        for name in primaries.keys() - self._nodes.keys():
            if self._stopping.is_set():
                return
            if primaries[name] is None:
                continue
            sink = _NodeSink(name, self._coverage, self._sink)
            node = TrackingListener(_NodeClient(primaries[name]), self._prefix, sink)
            self._nodes[name] = node.start(FIRST_CONNECT_WAIT, checks=False)


class AsyncClusterTrackingListener(AsyncTrackingListener):
    """An asyncio cache's invalidation connections on a cluster; see :class:`ClusterTrackingListener`."""

    def __init__(self, client: Any, prefix: str, sink: InvalidationSink) -> None:
        super().__init__(client, prefix, sink)
        self._coverage = _Coverage(sink)
        self._nodes: dict[str, AsyncTrackingListener] = {}

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop the supervisor, then every node's listener."""
        await super().stop(timeout)
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            await node.stop(timeout)
        self._sink.lost()

    async def _listen_loop(self) -> None:
        while not self._stopping:
            try:
                await self._follow(await self._primaries())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("qcache: cluster topology for invalidation not read: %s", exc)
            self._first_attempt.set()
            await asyncio.sleep(TOPOLOGY_INTERVAL)

    async def _primaries(self) -> dict[str, Any]:
        """``{node name: the node}`` for every primary (an asyncio ``ClusterNode`` is its own pool)."""
        cluster = self._client.cluster()
        await cluster.initialize()  # once; then a no-op
        if self._coverage.incomplete():
            await cluster.nodes_manager.initialize()
        return {node.name: node for node in cluster.get_primaries()}

    async def _follow(self, primaries: dict[str, Any]) -> None:
        for name in self._nodes.keys() - primaries.keys():
            await self._nodes.pop(name).stop()
        self._coverage.want(set(primaries))
        started = []
        for name in primaries.keys() - self._nodes.keys():
            sink = _NodeSink(name, self._coverage, self._sink)
            node = AsyncTrackingListener(_NodeClient(primaries[name]), self._prefix, sink)
            self._nodes[name] = node.start(checks=False)
            started.append(node)
        for node in started:
            await node.first_attempt(FIRST_CONNECT_WAIT)


def _nothing() -> None:
    """A node sink's ``wake`` until its listener sets one (never called: checks are the supervisor's)."""
