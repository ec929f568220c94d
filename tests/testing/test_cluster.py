"""The local Redis Cluster: meshed, serving every slot, failing over, and stopped afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from qcache.errors import ConfigError, ProvisioningError
from qcache.testing import RedisEndpoint
from qcache.testing.cluster import (
    REDIS_CLUSTER_URL_ENV,
    SLOTS,
    ClusterEndpoint,
    LocalCluster,
    local_cluster,
    provision_redis_cluster,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_shared_cluster_spreads_keys_over_three_primaries(redis_cluster: ClusterEndpoint) -> None:
    client = redis_cluster.client()
    try:
        primaries = client.get_primaries()
        assert len(primaries) >= 3
        keys = [f"qcache-test:spread:{i}" for i in range(60)]
        client.mset_nonatomic({k: b"v" for k in keys})
        owners = {client.get_node_from_key(k).name for k in keys}
        assert len(owners) >= 3
        assert client.mget_nonatomic(keys) == [b"v"] * len(keys)
        assert client.unlink(*keys) == len(keys)
    finally:
        client.close()


def test_a_cluster_with_replicas_is_meshed_and_every_process_stops(
    redis_cluster_factory: Callable[..., LocalCluster],
) -> None:
    cluster = redis_cluster_factory(primaries=3, replicas=1)
    assert len(cluster.servers) == 6
    primaries = cluster.primaries()
    assert len(primaries) == 3
    assert all(len(cluster.replicas_of(p)) == 1 for p in primaries)
    node: Any = cluster.node_client(primaries[0])
    try:
        info = node.execute_command("CLUSTER", "INFO").decode()
    finally:
        node.close()
    assert "cluster_state:ok" in info and f"cluster_slots_ok:{SLOTS}" in info
    pids = [s.pid for s in cluster.servers]
    assert all(pid is not None and _alive(pid) for pid in pids)
    cluster.close()
    assert not any(_alive(pid) for pid in pids if pid is not None)


def test_a_killed_primary_is_replaced_by_its_replica(redis_cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = redis_cluster_factory(primaries=3, replicas=1, node_timeout_ms=500)
    client = cluster.endpoint.client()
    try:
        key = "qcache-test:failover"
        client.set(key, b"kept")
        owner = client.get_node_from_key(key)
        victim = next(s for s in cluster.servers if s.port == owner.port)
        replica = cluster.replicas_of(victim)[0]
        client.wait(1, 2000, target_nodes=owner)  # the write reached the replica before the crash
        cluster.kill_primary(victim)
        waited = cluster.wait_for_promotion(victim)
        assert waited > 0
        assert cluster.role_of(replica) == "master"
        assert client.get(key) == b"kept"
    finally:
        client.close()


def test_setup_failure_stops_what_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = local_cluster(primaries=3)
    started: list[int] = []

    def broken_mesh(self: LocalCluster) -> None:
        started.extend(s.pid for s in self.servers if s.pid is not None)
        raise ProvisioningError("mesh failed")

    monkeypatch.setattr(LocalCluster, "_mesh", broken_mesh)
    with pytest.raises(ProvisioningError, match="mesh failed"):
        cluster.start()
    assert len(started) == 3
    assert not any(_alive(pid) for pid in started)


def test_an_existing_cluster_url_is_used_as_it_is(
    redis_cluster: ClusterEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REDIS_CLUSTER_URL_ENV, redis_cluster.url)
    with provision_redis_cluster() as endpoint:
        assert endpoint.method == "url"
        assert endpoint.cluster is None
        assert set(endpoint.nodes) >= {f"127.0.0.1:{redis_cluster.port}"}


def test_an_unreachable_cluster_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_CLUSTER_URL_ENV, "redis://127.0.0.1:1/0")
    with pytest.raises(ProvisioningError, match=REDIS_CLUSTER_URL_ENV), provision_redis_cluster():
        pass


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ConfigError):
        local_cluster(primaries=0)
    with pytest.raises(ConfigError):
        local_cluster(node_timeout_ms=10)


def test_a_plain_server_given_as_the_cluster_url_is_refused(
    redis_endpoint: RedisEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REDIS_CLUSTER_URL_ENV, redis_endpoint.url)
    with pytest.raises(ProvisioningError, match="no cluster answers"), provision_redis_cluster():
        pass
