"""``CACHE_ACCESS_SAMPLE_RATE``: a spatially sampled record of which keys are read, for sizing L1.

A key is in the sample if its hash falls in the first ``rate`` of the hash
space, so every access to a sampled key is kept and no access to any other:
the sampled trace is a small cache workload of its own. A cache of ``C``
entries over the full workload hits about as often as a cache of ``C x rate``
entries over the sample (spatial sampling, as in SHARDS, Waldspurger et al.,
FAST 2015), which lets :mod:`qcache.ops.maintenance` run the simulator on it.

The sample is a ring of the last ``capacity`` sampled reads (int64 hashes,
8 bytes each). Like the operation log it is installed as wrappers of the read
methods only when the rate is above 0: off, the read paths are untouched.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

#: Reads kept at most (the ring's length): 8 MB.
DEFAULT_CAPACITY = 1_000_000
_SPACE = 1 << 24
_READS = ("get", "get_many", "get_or_set")


class AccessSample:
    """The ring of sampled reads of one cache (every project view adds to it). Thread-safe."""

    def __init__(self, rate: float, capacity: int = DEFAULT_CAPACITY) -> None:
        if not 0 < rate <= 1:
            raise ValueError(f"the sample rate must be in (0, 1], got {rate!r}")
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        self.rate = rate
        self._threshold = max(1, round(rate * _SPACE))
        self._ring = np.zeros(capacity, dtype=np.int64)
        self._next = 0
        self._total = 0
        self._seen = 0
        self._lock = threading.Lock()

    def record(self, namespace: str, cache_type: str | None, keys: Iterable[object]) -> None:
        """Add the reads of ``keys`` whose hash is in the sampled part of the space."""
        threshold = self._threshold
        hashes = [hash((namespace, cache_type, key)) for key in keys]
        kept = [h for h in hashes if h % _SPACE < threshold]
        self._seen += len(hashes)  # a racy count is off by a read or two: it only scales the estimate
        if not kept:
            return
        with self._lock:
            ring = self._ring
            for value in kept:
                ring[self._next] = value
                self._next = (self._next + 1) % len(ring)
            self._total += len(kept)

    def trace(self) -> np.ndarray:
        """The sampled reads, oldest first (at most the ring's length)."""
        with self._lock:
            if self._total < len(self._ring):
                return self._ring[: self._total].copy()
            return np.concatenate((self._ring[self._next :], self._ring[: self._next]))

    def expected(self) -> float:
        """How many reads the ring would hold if exactly ``rate`` of all reads had been sampled.

        The gap to :meth:`__len__` is what spatial sampling got wrong by
        chance (a very hot key sampled, or not); SHARDS' adjustment adds it to
        the hits (see :func:`qcache.ops.maintenance.advise_from_sample`).
        """
        if not self._total:
            return 0.0
        return len(self) * (self._seen * self.rate) / self._total

    def __len__(self) -> int:
        return min(self._total, len(self._ring))


def _wrap(facade: Any, operation: str, method: Callable[..., Any], sample: AccessSample) -> Callable[..., Any]:
    def note(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """Record the call's keys; the arguments to call with (a batch read once, if it was an iterator)."""
        if not args:
            return args
        if operation == "get_many":
            keys = args[0]
            if not isinstance(keys, (list, tuple, str, bytes)):
                keys = list(keys)
                args = (keys, *args[1:])
        else:
            keys = (args[0],)
        if not isinstance(keys, (str, bytes)):  # a lone string is the operation's error to report
            try:
                sample.record(facade.namespace, kwargs.get("cache_type"), keys)
            except TypeError:  # an unhashable key: the operation itself reports it
                pass
        return args

    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def sampled_async(*args: Any, **kwargs: Any) -> Any:
            return await method(*note(args, kwargs), **kwargs)

        return sampled_async

    @functools.wraps(method)
    def sampled(*args: Any, **kwargs: Any) -> Any:
        return method(*note(args, kwargs), **kwargs)

    return sampled


def install_access_sample(facade: Any, sample: AccessSample) -> None:
    """Wrap ``facade``'s read methods so their keys go to ``sample``."""
    for operation in _READS:
        setattr(facade, operation, _wrap(facade, operation, getattr(facade, operation), sample))
