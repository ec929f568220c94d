"""What the benchmark suites share: run modes, payloads, key sets and loops.

Imported by the suites as a plain module (``benchmarks/`` is on ``sys.path``
while pytest collects it); no fixtures here, those live in ``conftest.py``.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcache import CacheConfig, QueryCache
from qcache.errors import ConfigError
from qcache.testing import RedisEndpoint

#: ``make_cache(level="BOTH", strategy="WRITE_THROUGH", **settings)``, the fixture of conftest.py.
MakeCache = Callable[..., QueryCache]

#: The Redis deployments the batch and levels suites run on, side by side in one run (conftest's ``topology``).
TOPOLOGIES = ("standalone", "cluster")

#: Environment variable choosing the mode when ``--bench-mode`` is not given.
MODE_ENV = "QCACHE_BENCH_MODE"
#: Shared trace files (compressed or not) the eviction suite and the main job's simulator pick up.
TRACE_PATTERNS = ("*.trace*", "*.lis*")


@dataclass(frozen=True)
class Mode:
    """How long and how big a benchmark run is.

    ``quick`` keeps the whole suite well inside five minutes (about 75 s measured) on a shared 2-core
    machine (CI, the main job); ``full`` measures longer, with larger
    workloads, for tuning on the user's own hardware.
    """

    name: str
    #: pytest-benchmark's time budget per benchmark (seconds), unless given on the command line.
    max_time: float
    #: Rounds of the benchmarks that time a whole scenario per round (threads, replays).
    scenario_rounds: int
    #: Operations each thread performs per round in the pool suite.
    ops_per_thread: int
    #: Requests of each synthetic workload the eviction suite replays.
    replay_requests: int
    #: Requests of a shared trace the eviction suite replays (None: the whole trace).
    trace_requests: int | None
    #: Entries written by the L1 footprint measurement. The target is stated for 100k;
    #: 25k fills the store's dicts to the same load factor (25k/32Ki ~ 100k/128Ki) in a quarter of the time.
    footprint_entries: int


QUICK = Mode("quick", max_time=0.25, scenario_rounds=3, ops_per_thread=150,
             replay_requests=100_000, trace_requests=100_000, footprint_entries=25_000)
FULL = Mode("full", max_time=1.0, scenario_rounds=10, ops_per_thread=1_000,
            replay_requests=1_000_000, trace_requests=None, footprint_entries=100_000)
MODES = {mode.name: mode for mode in (QUICK, FULL)}


def mode_named(name: str | None) -> Mode:
    """The mode called ``name`` (None: ``QCACHE_BENCH_MODE`` or quick); ConfigError if unknown."""
    chosen = (name or os.environ.get(MODE_ENV) or QUICK.name).strip().lower()
    if chosen not in MODES:
        raise ConfigError(f"unknown benchmark mode {chosen!r}; known: {', '.join(MODES)}")
    return MODES[chosen]


@dataclass(frozen=True)
class Topology:
    """One Redis deployment a benchmark runs on, with the raw client its baselines use.

    A user on a cluster writes the baselines differently, so each topology
    carries its own: ``client`` is ``redis.Redis`` or redis-py's
    ``RedisCluster`` (typed Any: redis-py leaves the cluster's methods
    unannotated), ``mget`` is MGET, or ``mget_nonatomic`` on a cluster (one
    MGET per slot), and ``client.pipeline(transaction=False)`` is a plain
    pipeline or the cluster pipeline, which splits the commands by node.
    ``make_cache`` builds caches there as conftest's ``make_cache`` does;
    ``key_prefix`` prefixes the baselines' own keys, removed after the test.
    """

    name: str
    make_cache: MakeCache
    client: Any
    mget: Callable[[list[str]], list[Any]]
    key_prefix: str


# ------------------------------------------------------------------ keys


def cache_config(endpoint: RedisEndpoint, prefix: str, level: str, strategy: str, **settings: Any) -> CacheConfig:
    """Defaults plus ``settings`` (by environment variable name) on ``endpoint``; no environment read.

    The user's environment and ``.env`` are ignored so every run measures the
    same configuration; only the Redis endpoint comes from provisioning
    (which honours ``REDIS_URL``).
    """
    values: dict[str, Any] = {
        "REDIS_URL": endpoint.url,
        "CACHE_KEY_PREFIX": prefix,
        "CACHE_LEVEL": level,
        "CACHE_WRITE_STRATEGY": strategy,
        "CACHE_LOG_LEVEL": "WARNING",
    }
    if endpoint.tls is not None:
        values.update(
            REDIS_SSL_ENABLED=True,
            REDIS_SSL_CA_CERT_PATH=str(endpoint.tls.ca_certs),
            REDIS_SSL_CERT_PATH=str(endpoint.tls.certfile),
            REDIS_SSL_KEY_PATH=str(endpoint.tls.keyfile),
        )
    values.update(settings)
    return CacheConfig.from_env(env_file=None, environ={}, **values)


def unique_prefix() -> str:
    """A ``CACHE_KEY_PREFIX`` no other run or test uses, so nothing is ever flushed."""
    return f"qcb-{uuid.uuid4().hex[:10]}"


def make_keys(count: int, tag: str = "q") -> list[str]:
    """Query-like keys (``q:000123:...``) of a realistic length, ~30 characters."""
    return [f"{tag}:{i:06d}:repo-acme:lang-python" for i in range(count)]


def run_each(op: Callable[[str], Any], keys: Iterable[str]) -> None:
    """Call ``op`` on every key; every contender in a group pays the same loop."""
    for key in keys:
        op(key)


# -------------------------------------------------------------- payloads

#: Approximate serialized sizes of the compression and encryption payloads.
SIZES = {"1KB": 1 << 10, "16KB": 16 << 10, "128KB": 128 << 10}
#: What RAG services cache: embeddings, search results, source text.
KINDS = ("embedding", "search", "text")
_EMBEDDING_DIMS = 256
_HIT_BYTES = 1300  # one search hit with its code chunk, serialized


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """A round that runs ``fn`` once and returns how long it took, in nanoseconds."""

    def round_ns() -> float:
        started = time.perf_counter_ns()
        fn()
        return float(time.perf_counter_ns() - started)

    return round_ns


def per_op(fn: Callable[[], Any], ops: int) -> Callable[[], float]:
    """A round that runs ``fn`` (``ops`` operations) once and returns its time per operation, in ns."""
    round_ns = timed(fn)
    return lambda: round_ns() / ops


def alternating_rounds(
    candidate: Callable[[], float], baseline: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    """Each side's round durations, measured side by side.

    Every call of ``candidate`` / ``baseline`` runs one round and returns its
    duration. The sides alternate, and which goes first swaps every round, so
    a momentary load on the shared machine falls on both alike; one warm-up
    round each comes first (caches, the specialising interpreter).
    """
    candidate()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(rounds):
        if round_ % 2:
            theirs.append(baseline())
            ours.append(candidate())
        else:
            ours.append(candidate())
            theirs.append(baseline())
    return ours, theirs


def median_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of candidate time / baseline time (a disturbed round is ignored)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


#: Alternating rounds behind a gated ratio (a smoke run, which does not measure, takes 3).
GATE_ROUNDS = 21
SMOKE_ROUNDS = 3


def record_ratio(benchmark: Any, top: Callable[[], float], bottom: Callable[[], float], smoke: bool) -> None:
    """Time ``top`` and ``bottom`` in alternating rounds as one benchmark; store their ratio for the gate.

    ``top`` and ``bottom`` each run one round and return its time per
    operation in nanoseconds. Two separately timed benchmarks see different
    moments of a shared machine, so their ratio swings by a third or more;
    here each round of ``top`` sits next to a round of ``bottom``, the ratio
    of every adjacent pair cancels the drift, and the median over the pairs
    ignores a disturbed round. ``extra_info`` gets ``ratio`` (that median,
    top over bottom), its quartiles ``ratio_q1``/``ratio_q3`` (the spread
    within the run) and both sides' median ns per operation. The
    benchmark's own time is the whole measurement.
    """
    rounds = SMOKE_ROUNDS if smoke else GATE_ROUNDS
    ours, theirs = benchmark.pedantic(alternating_rounds, args=(top, bottom, rounds), rounds=1, iterations=1)
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    benchmark.extra_info.update(
        ratio=median, ratio_q1=q1, ratio_q3=q3, pairs=len(ratios),
        top_ns=statistics.median(ours), bottom_ns=statistics.median(theirs),
    )


def small_value() -> dict[str, Any]:
    """Project metadata of about 200 bytes: the typical small cached value."""
    return {
        "project_id": 42,
        "name": "acme-platform",
        "language": "python",
        "files": 1234,
        "updated": 1700000000.5,
        "owner": "team-search",
        "active": True,
        "description": "Search indexing service for the acme platform",
        "tags": ["search", "index"],
    }


def payload(kind: str, size: str) -> Any:
    """A deterministic value of ``kind`` whose serialized form is about ``SIZES[size]`` bytes.

    * ``embedding``: a float32 matrix of 256-dimensional rows (incompressible, as real ones are);
    * ``search``: search hits with metadata and a code chunk each (JSON-like, compresses well);
    * ``text``: source code as one string.
    """
    target = SIZES[size]
    rng = random.Random(f"{kind}-{size}")
    if kind == "embedding":
        rows = max(1, target // (4 * _EMBEDDING_DIMS))
        generator = np.random.default_rng(rng.randrange(1 << 30))
        return generator.standard_normal((rows, _EMBEDDING_DIMS)).astype(np.float32)
    if kind == "search":
        return [_search_hit(i, rng) for i in range(max(1, target // _HIT_BYTES))]
    if kind == "text":
        lines: list[str] = []
        length = 0
        while length < target:
            line = f"    result_{len(lines)} = self._index.lookup(query, limit={rng.randint(1, 99)})\n"
            lines.append(line)
            length += len(line)
        return "".join(lines)
    raise ValueError(f"unknown payload kind {kind!r}; known: {', '.join(KINDS)}")


def _search_hit(i: int, rng: random.Random) -> dict[str, Any]:
    """One code-search hit of roughly ``_HIT_BYTES`` serialized."""
    content = "".join(
        f"    def method_{i}_{j}(self, value: int) -> int:\n"
        f"        return self._store.get(value, {rng.randint(0, 999)})\n\n"
        for j in range(11)
    )
    return {
        "id": f"chunk-{i:05d}",
        "file_path": f"src/acme/module_{i % 50}/handlers.py",
        "chunk_type": "function",
        "language": "python",
        "line_start": 10 * i,
        "line_end": 10 * i + 33,
        "score": rng.random(),
        "content": content,
        "metadata": {"repo": "acme/platform", "commit": "9f1c2e7", "tokens": 200 + i % 50},
    }
