"""What the simulator consumes: anything with a name that yields keys.

Trace files and synthetic generators are interchangeable behind the small
:class:`TraceSource` protocol, as in Caffeine's simulator. The simulator
decodes a source once into a list of keys (:func:`materialize`) and replays
that list for every policy and size, so reading or generating is paid once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from qcache.sim.errors import TraceError

if TYPE_CHECKING:
    import numpy as np

Key = Hashable


@runtime_checkable
class TraceSource(Protocol):
    """A named, re-iterable stream of cache keys (``int`` or ``str``)."""

    @property
    def name(self) -> str:
        """Short label used in reports (file name, or generator and parameters)."""
        ...

    def __iter__(self) -> Iterator[Key]:
        """Yield the keys in request order."""
        ...


@dataclass(frozen=True)
class Trace:
    """A decoded trace: the keys in request order, a label, and the attribution it needs."""

    name: str
    keys: Sequence[Key]
    credit: str = ""

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def unique_keys(self) -> int:
        """Number of distinct keys (the footprint), computed once."""
        return len(set(self.keys))


def as_keys(array: np.ndarray) -> list[Key]:
    """An array of key ids as a list of Python ints (numpy types ``tolist()`` as Any)."""
    keys: list[Key] = array.tolist()
    return keys


def materialize(source: TraceSource | Trace) -> Trace:
    """Decode ``source`` once into a :class:`Trace`; refuse an empty one.

    A source that can decode itself faster than key-by-key iteration (trace
    files, scan mixes) offers ``load() -> Trace``, which is used instead.
    """
    if isinstance(source, Trace):
        trace = source
    else:
        loader = getattr(source, "load", None)
        if callable(loader):
            trace = loader()
        else:
            trace = Trace(
                name=source.name,
                keys=list(source),
                credit=getattr(source, "credit", ""),
            )
    if not trace.keys:
        raise TraceError(f"trace {trace.name!r} holds no requests")
    return trace
