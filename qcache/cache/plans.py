"""The vocabulary between the cache's plans and the facades that run them.

Every operation that may touch L2 is written once, as a *plan*: a generator
that does all the pure work (keys, TTLs, codec, L1, metrics, write-back
bookkeeping) and yields an :class:`L2Call` whenever it needs the L2 backend.
The sync facade runs a plan by calling the sync backend, the async facade by
awaiting the async one; an L2 failure is thrown back into the plan, which
turns it into a miss (or re-raises it in strict mode).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, NamedTuple, TypeVar

from qcache.l2.protocol import L2Op

T = TypeVar("T")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: "No value": distinct from None, which is a value a cache may hold.
MISSING: Final[Any] = _Missing()


class _Gone:
    __slots__ = ()

    def __repr__(self) -> str:
        return "GONE"


#: "Deleted, and the delete has not reached L2 yet": a miss that must not read L2.
GONE: Final[Any] = _Gone()


class L2Call(NamedTuple):
    """A request from a plan to the L2 backend: an operation and its arguments."""

    op: L2Op
    args: tuple[Any, ...]


#: A plan: yields L2 calls, receives their results, returns the operation's result.
Plan = Generator[L2Call, Any, T]

# The generated NamedTuple __new__ is a Python-level call; hot paths build the tuples directly.
new_tuple = tuple.__new__
