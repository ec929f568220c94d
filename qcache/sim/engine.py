"""The simulation core: replay a trace through policies at several sizes and count hits.

Each request is "get, insert on miss": a hit calls ``on_access``; a miss
calls ``on_miss`` then ``on_insert`` and, when the cache is over its bound,
``victim()`` -- exactly what the L1 store does, so what the simulator
predicts is what L1 will see. Cold misses count. Computing is kept apart
from reporting (:mod:`qcache.sim.report`) and from the command line.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qcache.memory.policies import EvictionPolicy, create_policy, resolve_policy_name
from qcache.memory.policies.classic import LRUPolicy
from qcache.sim.belady import belady_hits, unbounded_hits
from qcache.sim.errors import SimulationError
from qcache.sim.reference import REFERENCE_POLICIES, create_reference_policy, reference_name
from qcache.sim.sizes import resolve_sizes
from qcache.sim.sources import Key, Trace, TraceSource, materialize

#: Pseudo-policies that are bounds rather than eviction policies.
BELADY = "BELADY"
UNBOUNDED = "UNBOUNDED"
_BOUND_ALIASES = {"BELADY": BELADY, "OPT": BELADY, "UNBOUNDED": UNBOUNDED, "INFINITE": UNBOUNDED}

#: Requests replayed between two progress callbacks.
PROGRESS_CHUNK = 1 << 16

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SimResult:
    """Hits of one policy at one cache size on one trace."""

    trace: str
    policy: str
    capacity: int
    requests: int
    hits: int
    seconds: float

    @property
    def misses(self) -> int:
        """Requests that were not hits (cold misses included)."""
        return self.requests - self.hits

    @property
    def hit_ratio(self) -> float:
        """Hits as a percentage of requests."""
        return 100.0 * self.hits / self.requests if self.requests else 0.0

    @property
    def miss_ratio(self) -> float:
        """Misses as a percentage of requests."""
        return 100.0 - self.hit_ratio

    @property
    def requests_per_second(self) -> float:
        """Replay throughput (0 when too fast to time)."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain fields plus the derived ratios, for CSV and JSON."""
        row = asdict(self)
        row["misses"] = self.misses
        row["hit_ratio"] = round(self.hit_ratio, 4)
        row["miss_ratio"] = round(self.miss_ratio, 4)
        row["requests_per_second"] = round(self.requests_per_second)
        return row


def resolve_policies(names: Iterable[str]) -> list[str]:
    """Canonical names for registry policies and the bounds, de-duplicated, in order.

    ``default`` becomes whatever :data:`DEFAULT_POLICY` is; ``belady``/``opt``
    and ``unbounded``/``infinite`` select the two bounds; ``arc``, ``lirs`` and
    ``2q`` the reference policies (:mod:`qcache.sim.reference`).
    """
    resolved: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        bound = _BOUND_ALIASES.get(name.upper()) or reference_name(name)
        if bound is None:
            try:
                bound = resolve_policy_name(name)
            except ValueError as exc:
                raise SimulationError(
                    f"{exc}; reference policies: {', '.join(REFERENCE_POLICIES)}; "
                    "bounds: belady (opt), unbounded (infinite)"
                ) from exc
        if bound not in resolved:
            resolved.append(bound)
    if not resolved:
        raise SimulationError("no policy given")
    return resolved


def _overrides_on_miss(policy: EvictionPolicy) -> bool:
    """Whether ``on_miss`` does anything (skipping a no-op call saves time per miss)."""
    return type(policy).on_miss is not EvictionPolicy.on_miss


def run_policy(
    policy: EvictionPolicy, keys: Sequence[Key], progress: Progress | None = None
) -> int:
    """Replay ``keys`` through ``policy`` (bounded by its capacity); return the hit count.

    The generic driver: one set for membership and bound methods for the
    hooks, so the loop is as tight as Python allows for any policy.
    """
    capacity = policy.capacity
    present: set[Key] = set()
    contains, add, discard = present.__contains__, present.add, present.discard
    access, insert, evict = policy.on_access, policy.on_insert, policy.victim
    miss = policy.on_miss if _overrides_on_miss(policy) else None
    hits = 0
    size = 0
    for start in range(0, len(keys), PROGRESS_CHUNK):
        chunk = keys[start : start + PROGRESS_CHUNK]
        if miss is None:
            for key in chunk:
                if contains(key):
                    hits += 1
                    access(key)
                else:
                    insert(key)
                    add(key)
                    if size >= capacity:
                        discard(evict())
                    else:
                        size += 1
        else:
            for key in chunk:
                if contains(key):
                    hits += 1
                    access(key)
                else:
                    miss(key)
                    insert(key)
                    add(key)
                    if size >= capacity:
                        discard(evict())
                    else:
                        size += 1
        if progress is not None:
            progress(len(chunk))
    return hits


def _lru_hits(keys: Sequence[Key], capacity: int, progress: Progress | None) -> int:
    """LRU's own replay (the hooks inlined on its OrderedDict): same hits as the hooks, several times faster."""
    return LRUPolicy(capacity).replay(keys, progress, PROGRESS_CHUNK)


def _fifo_hits(keys: Sequence[Key], capacity: int, progress: Progress | None) -> int:
    """FIFO inlined on an OrderedDict: same hits as the FIFO policy."""
    order: OrderedDict[Key, None] = OrderedDict()
    pop = order.popitem
    hits = 0
    for start in range(0, len(keys), PROGRESS_CHUNK):
        chunk = keys[start : start + PROGRESS_CHUNK]
        for key in chunk:
            if key in order:
                hits += 1
            else:
                order[key] = None
                if len(order) > capacity:
                    pop(False)
        if progress is not None:
            progress(len(chunk))
    return hits


_FAST_PATHS: dict[str, Callable[[Sequence[Key], int, Progress | None], int]] = {
    "LRU": _lru_hits,
    "FIFO": _fifo_hits,
}


def count_hits(
    policy: str,
    keys: Sequence[Key],
    capacity: int,
    *,
    progress: Progress | None = None,
    fast: bool = True,
    options: dict[str, Any] | None = None,
) -> int:
    """Hits of one (canonical) policy name or bound at one capacity.

    ``fast`` allows the inlined LRU/FIFO loops and a policy's own ``replay``
    loop where it has one (identical results, tested);
    ``options`` go to the policy's constructor (e.g. ``seed`` for RANDOM).
    """
    if capacity <= 0:
        raise SimulationError(f"cache size must be positive, got {capacity}")
    if policy == UNBOUNDED:
        hits = unbounded_hits(keys)
        if progress is not None:
            progress(len(keys))
        return hits
    if policy == BELADY:
        hits = belady_hits(keys, capacity)
        if progress is not None:
            progress(len(keys))
        return hits
    fast_path = _FAST_PATHS.get(policy) if fast and not options else None
    if fast_path is not None:
        return fast_path(keys, capacity, progress)
    instance = make_policy(policy, capacity, options)
    replay = getattr(instance, "replay", None) if fast else None
    if callable(replay):
        # A policy's own inlined loop: the same decisions as the hooks, tested hit for hit.
        replayed: int = replay(keys, progress, PROGRESS_CHUNK)
        return replayed
    return run_policy(instance, keys, progress)


def make_policy(policy: str, capacity: int, options: dict[str, Any] | None = None) -> EvictionPolicy:
    """An L1 policy or a reference policy, by canonical name."""
    if policy in REFERENCE_POLICIES:
        return create_reference_policy(policy, capacity, **(options or {}))
    return create_policy(policy, capacity, **(options or {}))


def simulate(
    source: TraceSource | Trace,
    policy_names: Iterable[str],
    sizes: Iterable[int | str] | str,
    *,
    progress: Progress | None = None,
    policy_options: dict[str, dict[str, Any]] | None = None,
) -> list[SimResult]:
    """Replay ``source`` through every policy at every size; one result per pair.

    ``sizes`` holds absolute entry counts or percentages of the trace's
    distinct keys (``"1%"``), or is a comma-separated string of them;
    percentages round half up, as in the reference tables. ``policy_options``
    maps a canonical policy name to constructor options. Results come back
    policy by policy, sizes ascending.
    """
    trace = materialize(source)
    policies = resolve_policies(policy_names)
    capacities = resolve_sizes(sizes, trace.unique_keys)
    options = policy_options or {}
    keys = trace.keys
    results: list[SimResult] = []
    for policy in policies:
        for capacity in capacities:
            started = time.perf_counter()
            hits = count_hits(
                policy, keys, capacity, progress=progress, options=options.get(policy)
            )
            elapsed = time.perf_counter() - started
            results.append(SimResult(trace.name, policy, capacity, len(keys), hits, elapsed))
    return results
