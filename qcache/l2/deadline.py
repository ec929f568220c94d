"""A deadline per L2 round trip (``CACHE_L2_TIMEOUT_MS``) that holds across redis-py's retries.

A cache must never be the outage: with redis-py alone, a hung server keeps a
caller waiting up to ``(1 + REDIS_MAX_RETRIES) x REDIS_SOCKET_TIMEOUT``
(20 s with the defaults), and since the call may then succeed, the circuit
breaker never hears of it. Here every round trip gets a budget:

* the tier arms it when an operation (or one step of a SCAN, or one chunk of a
  batch) starts; it lives in a context variable, so each thread and each task
  has its own;
* the synchronous connections read it before every reply and shorten their
  socket timeout to what is left, and :class:`DeadlineRetry` starts no retry
  (nor backs off past the deadline) once it has passed, raising
  :class:`DeadlineExceeded`, which the tier counts as a connectivity failure
  for the breaker;
* the asyncio tier wraps each call in ``asyncio.timeout`` instead, which
  covers the pool wait, the connect, the retries and their back-off at once.

Nothing here does I/O; a healthy call pays a context-variable read and a clock
read per reply, and no ``settimeout`` while the budget barely moved.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from functools import cache
from typing import Any

from redis.backoff import AbstractBackoff
from redis.retry import Retry

_DEADLINE: ContextVar[float | None] = ContextVar("qcache_l2_deadline", default=None)
#: A socket timeout within this much of the wanted one is left as it is (saves a syscall per command).
_SLACK = 0.005
#: The shortest socket timeout set: zero would make the socket non-blocking.
_MIN_TIMEOUT = 0.001

_monotonic = time.monotonic


class DeadlineExceeded(OSError):
    """The L2 deadline passed before another attempt could start.

    An ``OSError`` so the tier's guard counts it as a connectivity failure,
    and not one of redis-py's retryable errors, so no retry follows it.
    """


def arm(budget: float | None) -> None:
    """Start a deadline of ``budget`` seconds for this thread's or task's next round trip (None: none)."""
    _DEADLINE.set(None if budget is None else _monotonic() + budget)


def remaining() -> float | None:
    """Seconds left before the armed deadline (negative once passed), or None without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - _monotonic()


def being_cancelled() -> bool:
    """Whether the current asyncio task is being cancelled (by the tier's ``asyncio.timeout``, or its
    caller): no fallback or retry may start then. False outside a task."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        return False
    return task is not None and task.cancelling() > 0


def read_timeout(configured: float | None, current: float | None) -> float | None:
    """The socket timeout a read must have now to end by the deadline, or None to leave ``current`` as it is.

    That is the time left (never more than the ``configured`` socket timeout),
    or None without a deadline or when ``current`` is within a few ms of it:
    changing it costs two syscalls per read.
    """
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    left = deadline - _monotonic()
    wanted = max(_MIN_TIMEOUT, left if configured is None or left < configured else configured)
    if current is not None and abs(current - wanted) <= _SLACK:
        return None
    return wanted


class DeadlineBackoff(AbstractBackoff):
    """Another back-off that ends the retries once the deadline has passed, and never sleeps past it.

    redis-py asks the back-off for a pause only after a failed attempt (and
    after cleaning the connection up), so this is where a retry is refused:
    raising here costs a successful call nothing.
    """

    def __init__(self, inner: AbstractBackoff) -> None:
        self.inner = inner

    def reset(self) -> None:
        self.inner.reset()  # type: ignore[no-untyped-call]

    def compute(self, failures: int) -> float:
        pause = float(self.inner.compute(failures))
        left = remaining()
        if left is None:
            return pause
        if left <= _MIN_TIMEOUT:
            raise DeadlineExceeded("the L2 deadline (CACHE_L2_TIMEOUT_MS) passed while retrying")
        return min(pause, left)


class DeadlineRetry(Retry):
    """redis-py's ``Retry`` whose back-off (see :class:`DeadlineBackoff`) stops at the deadline."""

    def __init__(self, backoff: AbstractBackoff, retries: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(DeadlineBackoff(backoff), retries, *args, **kwargs)


class DeadlineSocket:
    """Mixed in front of a redis-py sync connection class: a reply is awaited at most until the deadline.

    Sends keep the socket timeout as it is, at most the budget itself (see
    ``ConnectionSettings.for_cache_tier``): a send only blocks once the
    server has stopped reading and the kernel's buffers are full.
    """

    _sock: Any
    socket_timeout: float | None

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        sock = self._sock
        if sock is not None:
            wanted = read_timeout(self.socket_timeout, sock.gettimeout())
            if wanted is not None:
                # Never raise here: a reply may be on its way, and only redis-py's own timeout
                # handling (which drops the connection) keeps it from reaching the next caller.
                sock.settimeout(wanted)
                try:
                    return super().read_response(*args, **kwargs)  # type: ignore[misc]
                finally:
                    # Back to the configured timeout, or the next send would inherit a sliver of one.
                    if self._sock is sock:
                        sock.settimeout(self.socket_timeout)
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


@cache
def bounded_connection_class(connection_cls: type[Any]) -> type[Any]:
    """``connection_cls`` (TCP, TLS or unix socket) with :class:`DeadlineSocket` in front."""
    if issubclass(connection_cls, DeadlineSocket):
        return connection_cls
    return type(f"Deadline{connection_cls.__name__}", (DeadlineSocket, connection_cls), {})
