"""A real Redis for tests, benchmarks, load tests and notebooks, provisioned one way everywhere.

Typical use::

    from qcache.testing import provision_redis

    with provision_redis() as endpoint:
        client = redis.Redis(**endpoint.client_kwargs())

Pytest users get fixtures from ``qcache.testing.pytest_plugin``.
"""

from __future__ import annotations

from qcache.testing.cluster import ClusterEndpoint, LocalCluster, provision_redis_cluster
from qcache.testing.endpoint import METHODS, Method, RedisEndpoint, TLSFiles
from qcache.testing.process import RedisServerProcess, TLSUnsupportedError, find_server_executable
from qcache.testing.redis_server import provision_redis

__all__ = [
    "ClusterEndpoint",
    "LocalCluster",
    "METHODS",
    "Method",
    "RedisEndpoint",
    "RedisServerProcess",
    "TLSFiles",
    "TLSUnsupportedError",
    "find_server_executable",
    "provision_redis",
    "provision_redis_cluster",
]
