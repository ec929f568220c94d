"""Setup shared by the benchmark suites: when they measure, how long, and caches on a real Redis.

* Measuring: ``pytest --benchmark-only`` (or ``--benchmark-enable`` /
  ``--benchmark-json``) measures. Any other run, such as the plain test run,
  switches ``--benchmark-disable`` on: every benchmark body runs once,
  unmeasured, as a smoke check, and tests marked ``timing`` (they assert
  time ratios themselves) are skipped, because timing belongs to benchmark
  runs and the regression gate, never to the test suite.
* Mode: ``--bench-mode quick`` (default, or ``QCACHE_BENCH_MODE``) keeps the
  whole suite around five minutes on a 2-core machine; ``full`` measures
  longer with larger workloads. The mode sets pytest-benchmark's
  ``--benchmark-max-time`` unless that is given explicitly.
* Machine info: each JSON records the mode, CPU count, Python, whether
  hiredis parses replies, and (from the provisioning plugin) the Redis
  version and how it was provisioned.
* Topologies: a benchmark taking ``topology`` runs twice, on the run's
  standalone server and on the shared local Redis Cluster (started on first
  use), each with its caches and raw client; the report pairs the two.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from bench_support import (
    MODE_ENV,
    TOPOLOGIES,
    MakeCache,
    Mode,
    Topology,
    cache_config,
    mode_named,
    unique_prefix,
)

from qcache import QueryCache
from qcache.bench.environment import describe_environment
from qcache.l2 import escape_glob
from qcache.sim import shared_traces_dir
from qcache.testing import ClusterEndpoint, RedisEndpoint

pytest_plugins = ["qcache.testing.pytest_plugin"]

_MODE_KEY = pytest.StashKey[Mode]()
_MEASURING_OPTIONS = (
    "benchmark_only",
    "benchmark_enable",
    "benchmark_json",
    "benchmark_save",
    "benchmark_autosave",
    "benchmark_compare",
)
_SCAN_COUNT = 500


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-mode",
        choices=("quick", "full"),
        default=None,
        help=f"benchmark run length: quick (default, a few minutes) or full (env {MODE_ENV})",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark builds its session from the options
def pytest_configure(config: pytest.Config) -> None:
    """Pick the mode; measure only when asked to, otherwise run benchmark bodies once."""
    mode = mode_named(config.getoption("--bench-mode"))
    config.stash[_MODE_KEY] = mode
    option = config.option
    if not hasattr(option, "benchmark_disable"):
        return  # pytest-benchmark is not installed: the suites cannot be collected anyway
    if not any(getattr(option, name, None) for name in _MEASURING_OPTIONS):
        option.benchmark_disable = True
    elif not any(arg.startswith("--benchmark-max-time") for arg in config.invocation_params.args):
        option.benchmark_max_time = str(mode.max_time)


def measuring(config: pytest.Config) -> bool:
    """Whether this run measures (pytest-benchmark enabled) rather than smoke-runs benchmarks."""
    # pytest-benchmark's own session is the one place that knows: it also disables itself under xdist.
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests that assert time ratios unless this run measures."""
    if measuring(config):
        return
    skip = pytest.mark.skip(reason="asserts time ratios: runs only when benchmarks measure "
                                   "(--benchmark-enable); the gate checks these figures")
    for item in items:
        if item.get_closest_marker("timing") is not None:
            item.add_marker(skip)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Record what the numbers depend on besides the code."""
    machine_info["qcache_bench"] = {
        "mode": config.stash[_MODE_KEY].name,
        "shared_traces": shared_traces_dir() is not None,
        **describe_environment(),
    }


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def bench_mode(pytestconfig: pytest.Config) -> Mode:
    """The run's mode (quick or full)."""
    return pytestconfig.stash[_MODE_KEY]


@pytest.fixture(scope="session")
def smoke(pytestconfig: pytest.Config) -> bool:
    """True when benchmark bodies run once unmeasured: scenarios shrink to stay fast."""
    return not measuring(pytestconfig)


@contextmanager
def _caches(endpoint: RedisEndpoint, client: Any, **overrides: Any) -> Iterator[MakeCache]:
    """A cache factory; on exit every cache is closed and its keys removed through ``client``.

    ``overrides`` point the caches elsewhere than ``endpoint`` (a cluster's
    ``REDIS_URL``). Each cache gets its own key prefix; closing drains
    write-back, then SCAN + UNLINK on that prefix (on a cluster redis-py
    scans every primary and splits the UNLINK by slot), never a flush.
    """
    opened: list[tuple[QueryCache, str]] = []

    def make(level: str = "BOTH", strategy: str = "WRITE_THROUGH", **settings: Any) -> QueryCache:
        prefix = unique_prefix()
        cache = QueryCache(cache_config(endpoint, prefix, level, strategy, **{**settings, **overrides}))
        opened.append((cache, prefix))
        return cache

    try:
        yield make
    finally:
        for cache, prefix in reversed(opened):
            cache.close(timeout=5.0)
            _unlink_prefixed(client, f"{prefix}:")


def _unlink_prefixed(client: Any, prefix: str) -> None:
    """UNLINK the keys under ``prefix`` found by SCAN (on every primary of a cluster)."""
    doomed = list(client.scan_iter(match=escape_glob(prefix) + "*", count=_SCAN_COUNT))
    for start in range(0, len(doomed), _SCAN_COUNT):
        client.unlink(*doomed[start : start + _SCAN_COUNT])


@pytest.fixture
def make_cache(redis_endpoint: RedisEndpoint) -> Iterator[MakeCache]:
    """``make_cache(level="BOTH", strategy="WRITE_THROUGH", **settings)``: a QueryCache on the run's Redis.

    Each cache gets its own key prefix; after the test every cache is closed
    (draining write-back) and its keys are removed with SCAN + UNLINK on that
    prefix, never a flush.
    """
    client = redis.Redis(**redis_endpoint.client_kwargs())
    try:
        with _caches(redis_endpoint, client) as make:
            yield make
    finally:
        client.close()


@pytest.fixture(params=TOPOLOGIES)
def topology(
    request: pytest.FixtureRequest, redis_endpoint: RedisEndpoint, key_prefix: str, benchmark: Any
) -> Iterator[Topology]:
    """The Redis a benchmark runs on: the run's standalone server, then the shared local cluster.

    Caches on the cluster set ``REDIS_CLUSTER_ENABLED`` with the cluster's
    ``REDIS_URL``; the raw baselines use redis-py's ``RedisCluster``. The
    benchmark records ``extra_info["topology"]``, which the report pairs with
    the other topology's run of the same benchmark. The cluster starts on
    first use, so a selection without cluster cases never starts it.
    """
    name = str(request.param)
    overrides: dict[str, Any] = {}
    if name == "cluster":
        cluster: ClusterEndpoint = request.getfixturevalue("redis_cluster")
        client = cluster.client()
        mget = client.mget_nonatomic
        overrides.update(REDIS_URL=cluster.url, REDIS_CLUSTER_ENABLED=True)
    else:
        client = redis.Redis(**redis_endpoint.client_kwargs())
        mget = client.mget
    benchmark.extra_info["topology"] = name
    try:
        with _caches(redis_endpoint, client, **overrides) as make:
            yield Topology(name, make, client, mget, key_prefix)
        _unlink_prefixed(client, key_prefix)
    finally:
        client.close()


@pytest.fixture
def gc_paused() -> Iterator[None]:
    """Keep collector pauses out of microsecond-scale measurements."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
