"""A local Redis Cluster for tests and benchmarks: redis-server processes on loopback, meshed by us.

:func:`provision_redis_cluster` tries, in order:

1. ``url``: ``REDIS_CLUSTER_URL`` from the environment (any node of an
   existing cluster), used as it is and never flushed.
2. ``binary`` / ``embedded``: ``primaries`` x (1 + ``replicas``) redis-server
   processes with ``cluster-enabled yes`` on free loopback ports (each a
   :class:`RedisServerProcess`: private directory, no persistence), joined
   into one cluster: slots assigned evenly to the primaries, ``CLUSTER MEET``,
   ``CLUSTER REPLICATE``, then a wait until every node reports
   ``cluster_state:ok``, knows every other node and the replicas are in sync.

The mesh is built with cluster commands sent by redis-py rather than
``redis-cli --cluster create``: the result is the same, and it works with a
pip-embedded redis-server that ships no redis-cli. Every process is stopped
on exit, also when building the cluster fails halfway or the body raises.
Fault tests kill a primary (:meth:`LocalCluster.kill_primary`) and wait for a
replica's promotion (:meth:`LocalCluster.wait_for_promotion`), or freeze one
node for a while (:meth:`LocalCluster.paused`).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing.endpoint import build_url, redact_url
from qcache.testing.process import ProcessMethod, RedisServerProcess, first_server_executable, probe_client

REDIS_CLUSTER_URL_ENV = "REDIS_CLUSTER_URL"
SLOTS = 16384


@dataclass(frozen=True)
class ClusterEndpoint:
    """A reachable Redis Cluster: its seed nodes and how it was provisioned.

    ``url`` names one node (redis-py's ``RedisCluster.from_url`` discovers the
    rest); ``nodes`` lists every node we know of as ``host:port`` (for
    ``REDIS_CLUSTER_NODES``). ``cluster`` is the :class:`LocalCluster` when
    this helper started it, ``None`` for a cluster reached through
    ``REDIS_CLUSTER_URL``.
    """

    url: str
    nodes: tuple[str, ...]
    password: str | None
    method: str
    cluster: LocalCluster | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"ClusterEndpoint(url={redact_url(self.url)!r}, nodes={self.nodes!r}, method={self.method!r})"

    @property
    def host(self) -> str:
        """The seed node's host."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The seed node's port."""
        return urlsplit(self.url).port or 6379

    def client(self, **kwargs: Any) -> Any:
        """A redis-py ``RedisCluster`` on this cluster (bytes replies unless told otherwise).

        Typed ``Any``: redis-py leaves most cluster methods unannotated.
        """
        return RedisCluster.from_url(self.url, **kwargs)

    def describe(self) -> dict[str, Any]:
        """A printable summary (no secrets)."""
        return {"method": self.method, "url": redact_url(self.url), "nodes": len(self.nodes)}


class LocalCluster:
    """A Redis Cluster made of redis-server processes we start, mesh and stop.

    Use as a context manager. ``replicas`` replicas per primary; with
    ``require_full_coverage=False`` (the default, and the setting a cache
    wants) the slots of live primaries keep serving while one primary is
    down. ``node_timeout_ms`` is how long a primary must be unreachable
    before its replica takes over.
    """

    def __init__(
        self,
        executable: str | os.PathLike[str],
        *,
        primaries: int = 3,
        replicas: int = 0,
        password: str | None = None,
        node_timeout_ms: int = 1000,
        require_full_coverage: bool = False,
        startup_timeout: float = 30.0,
        method: ProcessMethod = "binary",
    ) -> None:
        if primaries < 1 or replicas < 0:
            raise ConfigError(f"a cluster needs >= 1 primary and >= 0 replicas, got {primaries}/{replicas}")
        if node_timeout_ms < 100:
            raise ConfigError(f"node_timeout_ms must be >= 100, got {node_timeout_ms}")
        self.primaries_wanted = primaries
        self.replicas_per_primary = replicas
        self.password = password
        self.method: ProcessMethod = method
        self._startup_timeout = startup_timeout
        config = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
            f"cluster-require-full-coverage {'yes' if require_full_coverage else 'no'}",
            # A replica may take over however long it was cut off: with no persistence there
            # is no better copy to wait for.
            "cluster-replica-validity-factor 0",
            "repl-diskless-sync-delay 0",  # a replica syncs at once instead of after 5 s
        ]
        if password is not None:
            config.append(f"masterauth {password}")
        total = primaries * (1 + replicas)
        self.servers = [
            RedisServerProcess(executable, password=password, extra_config=config, port=port,
                               startup_timeout=startup_timeout, method=method)
            for port in _free_cluster_ports(total)
        ]
        self._stack = ExitStack()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> LocalCluster:
        """Start every process, assign slots, meet, attach replicas, wait for ``cluster_state:ok``."""
        try:
            for server in self.servers:
                self._stack.enter_context(server)
            self._mesh()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every process we started (idempotent)."""
        self._stack.close()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------- views
    @property
    def endpoint(self) -> ClusterEndpoint:
        """How clients reach this cluster (the first live node is the seed)."""
        live = [s for s in self.servers if s.is_running] or self.servers
        return ClusterEndpoint(
            url=build_url("127.0.0.1", live[0].port, password=self.password, tls=False),
            nodes=tuple(f"127.0.0.1:{s.port}" for s in self.servers),
            password=self.password,
            method=self.method,
            cluster=self,
        )

    def node_client(self, server: RedisServerProcess) -> redis.Redis:
        """A plain client on one node, failing fast (for probes and admin commands)."""
        return probe_client({**server.endpoint.client_kwargs(), "socket_timeout": 2.0,
                             "socket_connect_timeout": 2.0})

    def role_of(self, server: RedisServerProcess) -> str | None:
        """``master`` / ``slave`` as the node reports it, ``None`` when it does not answer."""
        if not server.is_running:
            return None
        client = self.node_client(server)
        try:
            return str(client.info("replication")["role"])
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()

    def primaries(self) -> list[RedisServerProcess]:
        """The live nodes that currently serve slots as primaries."""
        return [s for s in self.servers if self.role_of(s) == "master"]

    def replicas_of(self, primary: RedisServerProcess) -> list[RedisServerProcess]:
        """The live replicas following ``primary`` (by its node id)."""
        node_id = self._node_id(primary)
        found = []
        for server in self.servers:
            if server is primary or not server.is_running:
                continue
            client = self.node_client(server)
            try:
                myself = next(line for line in _nodes_lines(client) if "myself" in line.split()[2])
            except (redis.RedisError, OSError, StopIteration):
                continue
            finally:
                client.close()
            if myself.split()[3] == node_id:
                found.append(server)
        return found

    # ------------------------------------------------------------------ faults
    def kill_primary(self, primary: RedisServerProcess | None = None) -> RedisServerProcess:
        """SIGKILL a primary that has a replica (the first such one unless given); returns it."""
        if primary is None:
            primary = next((p for p in self.primaries() if self.replicas_of(p)), None)
            if primary is None:
                raise ProvisioningError("no primary with a replica to kill: start the cluster with replicas=1")
        primary.kill()
        return primary

    @contextmanager
    def paused(self, server: RedisServerProcess) -> Iterator[None]:
        """Freeze ``server`` (SIGSTOP) for the ``with`` body, as a hung host would; SIGCONT after, also on error.

        The process keeps its sockets: clients connect and send, no reply comes.
        Keep the body shorter than ``node_timeout_ms`` unless a failover is wanted.
        """
        pid = server.pid
        if pid is None or not server.is_running:
            raise ProvisioningError(f"the node on port {server.port} is not running")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def server_for_port(self, port: int) -> RedisServerProcess:
        """The node process listening on ``port``."""
        return next(s for s in self.servers if s.port == port)

    def wait_for_promotion(self, killed: RedisServerProcess, timeout: float = 30.0) -> float:
        """Wait until a live node reports ``cluster_state:ok`` with every slot served; seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            if len(self.primaries()) == self.primaries_wanted and all(
                self._state_ok(s) for s in self.servers if s.is_running
            ):
                return time.monotonic() - start
            time.sleep(0.05)
        raise ProvisioningError(f"no replica took over from port {killed.port} within {timeout:g} s")

    # --------------------------------------------------------------- internals
    def _mesh(self) -> None:
        primaries = self.servers[: self.primaries_wanted]
        replicas = self.servers[self.primaries_wanted :]
        per = SLOTS // len(primaries)
        for index, server in enumerate(primaries):
            first = index * per
            last = SLOTS - 1 if index == len(primaries) - 1 else first + per - 1
            self._admin(server, "CLUSTER", "ADDSLOTSRANGE", first, last)
        seed = self.servers[0]
        for server in self.servers[1:]:
            self._admin(server, "CLUSTER", "MEET", "127.0.0.1", seed.port)
        self._wait(lambda: all(self._knows_all(s) for s in self.servers), "every node to know every other")
        for index, server in enumerate(replicas):
            target = primaries[index % len(primaries)]
            self._admin(server, "CLUSTER", "REPLICATE", self._node_id(target))
        self._wait(lambda: all(self._state_ok(s) for s in self.servers), "cluster_state:ok on every node")
        self._wait(lambda: all(self._replica_synced(s) for s in replicas), "every replica to sync")

    def _admin(self, server: RedisServerProcess, *command: object) -> Any:
        client: Any = self.node_client(server)  # redis-py leaves execute_command unannotated
        try:
            return client.execute_command(*command)
        except redis.RedisError as exc:
            raise ProvisioningError(f"cluster setup on port {server.port} failed: {exc}") from exc
        finally:
            client.close()

    def _node_id(self, server: RedisServerProcess) -> str:
        return str(_decode(self._admin(server, "CLUSTER", "MYID")))

    def _cluster_info(self, server: RedisServerProcess) -> dict[str, str]:
        text = _decode(self._admin(server, "CLUSTER", "INFO"))
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _knows_all(self, server: RedisServerProcess) -> bool:
        return int(self._cluster_info(server).get("cluster_known_nodes", "0")) == len(self.servers)

    def _state_ok(self, server: RedisServerProcess) -> bool:
        try:
            info = self._cluster_info(server)
        except ProvisioningError:
            return False
        return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(SLOTS)

    def _replica_synced(self, server: RedisServerProcess) -> bool:
        client = self.node_client(server)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while not ready():
            if time.monotonic() >= deadline:
                tails = "\n".join(f"port {s.port}: {s.log_tail(5)}" for s in self.servers)
                raise ProvisioningError(f"cluster not ready: waited {self._startup_timeout:g} s for {what}\n{tails}")
            time.sleep(0.05)


def _free_cluster_ports(count: int) -> list[int]:
    """Loopback ports ``p`` free together with their cluster bus port ``p + 10000``.

    Redis refuses ports above 55535 in cluster mode (the bus port must fit),
    so the ephemeral range the OS hands out cannot be used as it is. Both
    ports stay below that range (32768 on Linux): a bus port inside it was
    taken by some outgoing connection while its node was stopped, and the
    node could not start again.
    """
    rng = random.Random()
    ports: list[int] = []
    for _ in range(count * 200):
        port = rng.randrange(12000, 22700)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ProvisioningError(f"could not find {count} free loopback port pairs for a cluster")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nodes_lines(client: Any) -> list[str]:
    """``CLUSTER NODES`` as lines: id, address, flags, primary id, ..."""
    return [line for line in _decode(client.execute_command("CLUSTER", "NODES")).splitlines() if line.strip()]


def local_cluster(*, primaries: int = 3, replicas: int = 0, **options: Any) -> LocalCluster:
    """A not-yet-started :class:`LocalCluster` on the first of binary / embedded redis-server that exists."""
    executable, method = first_server_executable("a cluster")
    return LocalCluster(executable, primaries=primaries, replicas=replicas, method=method, **options)


@contextmanager
def provision_redis_cluster(
    *, primaries: int = 3, replicas: int = 0, methods: Sequence[str] = ("url", "binary", "embedded"),
    url: str | None = None, **options: Any,
) -> Iterator[ClusterEndpoint]:
    """A Redis Cluster for the duration of the ``with`` block (see the module docstring for the order).

    ``url`` (else ``REDIS_CLUSTER_URL``), when set and allowed by ``methods``,
    is used as it is: its shape (primaries, replicas) is whatever the cluster
    has. A set URL that does not answer is an error, not a silent switch to a
    local cluster.
    """
    url = (url or os.environ.get(REDIS_CLUSTER_URL_ENV, "")).strip()
    if "url" in methods and url:
        yield _existing_cluster(url)
        return
    with local_cluster(primaries=primaries, replicas=replicas, **options) as cluster:
        yield cluster.endpoint


def _existing_cluster(url: str) -> ClusterEndpoint:
    """Check that ``url`` reaches a cluster in ``cluster_state:ok``; list its nodes."""
    shown = redact_url(url)
    try:
        client: Any = RedisCluster.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    except (redis.RedisError, RedisClusterException, OSError, ValueError) as exc:
        raise ProvisioningError(f"{REDIS_CLUSTER_URL_ENV} is set ({shown}) but no cluster answers: {exc}") from exc
    try:
        nodes = tuple(f"{n.host}:{n.port}" for n in client.get_nodes())
        password = urlsplit(url).password
    finally:
        client.close()
    return ClusterEndpoint(url=url, nodes=nodes, password=password, method="url")
