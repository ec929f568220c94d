"""Typed measurements read out of a run's benchmarks, one record type per decision.

The decision modules take these records, not a run, so that tests can hand
them synthetic measurements with a known answer and ``qcache tune`` can hand
them its own short measurements. Times are per operation, in microseconds,
from the benchmark's median round.
"""

from __future__ import annotations

from dataclasses import dataclass

from qcache.bench import Benchmark, Run
from qcache.bench.figures import per_op

US = 1e6


@dataclass(frozen=True)
class OpTime:
    """One cache operation under one write strategy and level (write-strategy benchmarks)."""

    strategy: str
    level: str
    op: str  # "get", "set" or "mixed"
    us: float


@dataclass(frozen=True)
class CodecSample:
    """One value kind and size through one compression algorithm: bytes stored and the time of a round trip."""

    algorithm: str  # "none", "lz4", "zstd"
    kind: str
    size: str  # the benchmark's label: "1KB", "16KB"...
    serialized_bytes: int
    stored_bytes: int
    us: float


@dataclass(frozen=True)
class EncryptionSample:
    """Encode and decode of a value of one size, with or without AES-GCM."""

    encryption: str  # "none" or "aes-gcm"
    size: str
    stored_bytes: int
    us: float


@dataclass(frozen=True)
class BatchSample:
    """One ``get_many``/``set_many`` call of ``keys`` keys."""

    op: str
    keys: int
    us: float

    @property
    def us_per_key(self) -> float:
        return self.us / self.keys


@dataclass(frozen=True)
class PoolSample:
    """Concurrent L2 gets: pool size against thread count."""

    pool: int
    threads: int
    throughput_ops: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Evidence:
    """Everything the decisions need from one run (empty tuples where the run lacks a suite)."""

    op_times: tuple[OpTime, ...]
    codec: tuple[CodecSample, ...]
    encryption: tuple[EncryptionSample, ...]
    batches: tuple[BatchSample, ...]
    pools: tuple[PoolSample, ...]
    policy_get_ns: dict[str, float]
    l1_overhead_bytes: float | None
    l2_get_us: float | None
    l1_get_us: float | None


def _us(bench: Benchmark) -> float:
    return per_op(bench, "median") * US


def _base(bench: Benchmark) -> str:
    return bench.name.split("[", 1)[0]


def op_times(run: Run) -> list[OpTime]:
    """The write-strategy suite: set, get and mixed per strategy and level."""
    found = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if {"strategy", "level", "cache_op"} <= extra.keys():
            found.append(OpTime(str(extra["strategy"]), str(extra["level"]), str(extra["cache_op"]), _us(bench)))
    return found


def codec_samples(run: Run) -> list[CodecSample]:
    """The compression suite's codec round trips (``none``, ``lz4``, ``zstd`` per kind and size)."""
    found = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if _base(bench) == "test_codec_round_trip" and {"algorithm", "kind", "size", "stored_bytes"} <= extra.keys():
            found.append(
                CodecSample(
                    str(extra["algorithm"]),
                    str(extra["kind"]),
                    str(extra["size"]),
                    int(bench.number("serialized_bytes")),
                    int(bench.number("stored_bytes")),
                    _us(bench),
                )
            )
    return found


def encryption_samples(run: Run) -> list[EncryptionSample]:
    """The encryption suite's codec round trips, with and without AES-GCM."""
    found = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if _base(bench) == "test_codec_round_trip" and {"encryption", "size", "stored_bytes"} <= extra.keys():
            found.append(
                EncryptionSample(
                    str(extra["encryption"]), str(extra["size"]), int(bench.number("stored_bytes")), _us(bench)
                )
            )
    return found


def batch_samples(run: Run) -> list[BatchSample]:
    """``QueryCache.get_many``/``set_many`` per batch size on the standalone server.

    The raw MGET/pipeline baselines are left out, and so are the same
    benchmarks on a Redis Cluster (``extra_info["topology"]``): one sample
    per size and operation.
    """
    found = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if extra.get("topology", "standalone") != "standalone":
            continue
        if extra.get("cache_op") in ("get_many", "set_many") and "keys" in extra:
            found.append(BatchSample(str(extra["cache_op"]), int(bench.number("keys")), _us(bench)))
    return sorted(found, key=lambda s: (s.op, s.keys))


def pool_samples(run: Run) -> list[PoolSample]:
    """The pool suite: throughput and latency percentiles per pool size and thread count."""
    found = []
    for bench in run.benchmarks.values():
        extra = bench.extra_info
        if {"pool", "threads", "throughput_ops", "p99_ms"} <= extra.keys():
            found.append(
                PoolSample(
                    int(bench.number("pool")),
                    int(bench.number("threads")),
                    bench.number("throughput_ops"),
                    bench.number("p50_ms"),
                    bench.number("p99_ms"),
                )
            )
    return sorted(found, key=lambda s: (s.threads, s.pool))


def policy_get_ns(run: Run) -> dict[str, float]:
    """Nanoseconds per L1 hit for each eviction policy (the per-policy get benchmark)."""
    found: dict[str, float] = {}
    for bench in run.benchmarks.values():
        if _base(bench) == "test_get_hit" and bench.name.endswith("]"):
            found[bench.name[len("test_get_hit[") : -1]] = per_op(bench, "median") * 1e9
    return found


def _named(run: Run, name: str) -> Benchmark | None:
    return next((b for b in run.benchmarks.values() if b.name == name), None)


def gather(run: Run) -> Evidence:
    """Every record type from one run."""
    footprint = _named(run, "test_l1_footprint")
    # On the standalone server; the plain name is that of runs made before the suite also ran on a cluster.
    l2_get = _named(run, "test_l2_get_querycache_l2_only[standalone]") or _named(run, "test_l2_get_querycache_l2_only")
    l1_get = _named(run, "test_l1_hit_querycache[both-metrics]")
    return Evidence(
        op_times=tuple(op_times(run)),
        codec=tuple(codec_samples(run)),
        encryption=tuple(encryption_samples(run)),
        batches=tuple(batch_samples(run)),
        pools=tuple(pool_samples(run)),
        policy_get_ns=policy_get_ns(run),
        l1_overhead_bytes=footprint.number("overhead_bytes_per_entry") if footprint else None,
        l2_get_us=_us(l2_get) if l2_get else None,
        l1_get_us=_us(l1_get) if l1_get else None,
    )
