"""Prometheus exposition of a cache's statistics: a collector, an app to mount, a small server.

The collector reads :meth:`~qcache.QueryCache.stats` at scrape time (nothing
is counted twice, nothing runs between scrapes) and names every series after
Prometheus's conventions: a ``qcache_`` prefix, base units (seconds, bytes),
``_total`` for counters. Latency comes as a summary per operation (count and
sum) with its p50, p95 and p99 as a ``quantile`` label, which the cache
computes from its bounded histograms.

``qcache metrics serve`` runs the same exposition for a cache built from the
configuration, on loopback unless told otherwise, and adds the Redis server's
own gauges (memory, clients, evictions) from ``INFO``, which every process
sharing the server sees alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

StatsSource = Callable[[], Mapping[str, Any]]
_QUANTILES = (("p50_ms", "0.5"), ("p95_ms", "0.95"), ("p99_ms", "0.99"))


class CacheCollector(Collector):
    """Series for one cache (label ``cache``), read from ``stats()`` at each scrape."""

    def __init__(self, stats: StatsSource, *, cache_name: str = "default") -> None:
        self._stats = stats
        self._name = cache_name

    @classmethod
    def of(cls, cache: Any, *, cache_name: str = "default") -> CacheCollector:
        """For a :class:`~qcache.QueryCache` or :class:`~qcache.AsyncQueryCache` (both have a plain ``stats()``)."""
        return cls(cache.stats, cache_name=cache_name)

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        name = self._name
        yield from self._lookups(stats, name)
        yield from self._latency(stats, name)
        yield from self._memory_tier(stats, name)
        pending = GaugeMetricFamily("qcache_writeback_pending", "Write-back writes not yet in Redis", labels=["cache"])
        pending.add_metric([name], float(stats.get("pending_writes", 0)))
        yield pending
        dropped = CounterMetricFamily("qcache_writeback_dropped", "Write-back writes dropped when the queue was full",
                                      labels=["cache"])
        dropped.add_metric([name], float(stats.get("writeback_dropped", 0)))
        yield dropped

    @staticmethod
    def _lookups(stats: Mapping[str, Any], name: str) -> Iterator[Metric]:
        lookups = CounterMetricFamily("qcache_lookups", "Reads of single keys and of keys in batches", labels=["cache"])
        lookups.add_metric([name], float(stats.get("lookups", 0)))
        yield lookups
        for family, doc, source in (
            ("qcache_hits", "Reads answered, by tier", "hits"),
            ("qcache_sets", "Writes, by tier", "sets"),
        ):
            metric = CounterMetricFamily(family, doc, labels=["cache", "tier"])
            for tier, count in sorted(stats.get(source, {}).items()):
                metric.add_metric([name, str(tier)], float(count))
            yield metric
        misses = CounterMetricFamily("qcache_misses", "Reads that found nothing in any tier", labels=["cache"])
        misses.add_metric([name], float(stats.get("misses", {}).get("total", 0)))
        yield misses
        deletes = CounterMetricFamily("qcache_deletes", "Entries removed by delete", labels=["cache"])
        deletes.add_metric([name], float(stats.get("deletes", 0)))
        yield deletes
        errors = CounterMetricFamily("qcache_errors", "Failures absorbed by the cache, by kind",
                                     labels=["cache", "kind"])
        for kind, count in sorted(stats.get("errors", {}).items()):
            errors.add_metric([name, str(kind)], float(count))
        yield errors
        ratio = GaugeMetricFamily("qcache_hit_ratio", "Hits over lookups since the start", labels=["cache"])
        ratio.add_metric([name], float(stats.get("hit_rate", 0.0)))
        yield ratio

    @staticmethod
    def _latency(stats: Mapping[str, Any], name: str) -> Iterator[Metric]:
        summary = SummaryMetricFamily("qcache_operation_duration_seconds", "Time spent per cache operation",
                                      labels=["cache", "operation"])
        quantiles = GaugeMetricFamily("qcache_operation_duration_quantile_seconds",
                                      "Latency quantiles per operation, from the cache's histograms",
                                      labels=["cache", "operation", "quantile"])
        for operation, figures in sorted(stats.get("latency", {}).items()):
            count = int(figures.get("count", 0))
            summary.add_metric([name, operation], count_value=count,
                               sum_value=float(figures.get("mean_ms", 0.0)) * count / 1000.0)
            for field, quantile in _QUANTILES:
                if field in figures:
                    quantiles.add_metric([name, operation, quantile], float(figures[field]) / 1000.0)
        yield summary
        yield quantiles

    @staticmethod
    def _memory_tier(stats: Mapping[str, Any], name: str) -> Iterator[Metric]:
        l1 = stats.get("l1")
        if not l1:
            return
        for field, family, doc in (
            ("entries", "qcache_l1_entries", "Entries in the memory tier"),
            ("bytes", "qcache_l1_bytes", "Estimated bytes held by the memory tier"),
            ("max_entries", "qcache_l1_max_entries", "Entry bound of the memory tier"),
            ("max_bytes", "qcache_l1_max_bytes", "Byte bound of the memory tier"),
        ):
            gauge = GaugeMetricFamily(family, doc, labels=["cache"])
            gauge.add_metric([name], float(l1.get(field, 0)))
            yield gauge
        for field, family, doc in (
            ("evictions", "qcache_l1_evictions", "Entries the memory tier evicted to stay within its bounds"),
            ("expirations", "qcache_l1_expirations", "Entries the memory tier dropped when they expired"),
        ):
            counter = CounterMetricFamily(family, doc, labels=["cache"])
            counter.add_metric([name], float(l1.get(field, 0)))
            yield counter


class RedisInfoCollector(Collector):
    """The Redis server's memory, clients and evictions, from ``INFO`` at scrape time."""

    _GAUGES = (
        ("used_memory", "qcache_redis_used_memory_bytes", "Memory Redis uses"),
        ("maxmemory", "qcache_redis_maxmemory_bytes", "Redis's maxmemory (0: unbounded)"),
        ("connected_clients", "qcache_redis_connected_clients", "Clients connected to Redis"),
    )
    _COUNTERS = (
        ("evicted_keys", "qcache_redis_evicted_keys", "Keys Redis evicted under maxmemory"),
        ("expired_keys", "qcache_redis_expired_keys", "Keys Redis expired"),
    )

    def __init__(self, info: Callable[[], Mapping[str, Any]]) -> None:
        self._info = info

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("qcache_redis_up", "Whether Redis answered INFO at this scrape")
        try:
            info = self._info()
        except Exception:  # noqa: BLE001  # a down Redis is a value of this metric, not a failed scrape
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        for field, family, doc in self._GAUGES:
            if field in info:
                yield GaugeMetricFamily(family, doc, value=float(info[field]))
        for field, family, doc in self._COUNTERS:
            if field in info:
                yield CounterMetricFamily(family, doc, value=float(info[field]))


def registry_for(collectors: Iterable[Collector]) -> CollectorRegistry:
    """A registry of its own holding ``collectors`` (the global one stays untouched)."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    return registry


def metrics_app(cache: Any, *, cache_name: str = "default") -> Callable[..., Any]:
    """A WSGI app serving ``cache``'s metrics, to mount in a service (for example at ``/metrics``)."""
    return make_wsgi_app(registry_for([CacheCollector.of(cache, cache_name=cache_name)]))
