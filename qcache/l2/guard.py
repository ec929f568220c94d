"""One guard per operation: circuit-breaker admission and redis error translation.

It is a plain (non-async) context manager so that the sync and the async tier
share it: entering and leaving it never does I/O, only the body does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from types import TracebackType

from redis import exceptions as redis_errors

from qcache.errors import BackendError, CircuitOpenError, RedisAccessDenied, ServerRefusal
from qcache.l2.breaker import CircuitBreaker
from qcache.l2.deadline import arm

# Errors that say "the server is unreachable or too slow": they count against the breaker.
# OSError covers socket and TLS errors that escape redis-py, and the builtin TimeoutError.
# RedisClusterException (outside RedisError) says no node serves a slot or no seed answers.
CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.RedisClusterException,
    redis_errors.TimeoutError,
    OSError,
)


# redis-py prefixes errors raised inside a pipeline with the failing command, arguments
# included ("Command # 1 (SET key <value...>) of pipeline caused error: OOM ..."): the
# value must not reach messages, logs or the chained traceback.
_PIPELINE_ANNOTATION = re.compile(r"^Command # (\d+) \(.*\) of pipeline caused error: ", re.DOTALL)


def scrub_command_text(exc: BaseException) -> None:
    """Remove the command arguments redis-py put into a pipeline error's message, in place."""
    if exc.args and isinstance(exc.args[0], str):
        scrubbed = _PIPELINE_ANNOTATION.sub(r"Command # \1 of pipeline caused error: ", exc.args[0])
        if scrubbed != exc.args[0]:
            exc.args = (scrubbed, *exc.args[1:])


def describe_error(operation: str, exc: BaseException) -> str:
    """The message of a translated error: names the operation and the cause, never a value."""
    scrub_command_text(exc)
    detail = str(exc).strip()
    cause = type(exc).__name__ + (f": {detail}" if detail else "")
    return f"Redis {operation} failed ({cause})"


class OperationGuard:
    """``with guard:`` around one L2 operation.

    On entry it raises :class:`CircuitOpenError` when the breaker refuses the
    call (so nothing touches the network) and :class:`BackendError` once the
    tier is closed. On exit it reports the outcome to the breaker and
    translates errors: connectivity errors count as failures; other
    ``RedisError`` (a server reply such as WRONGTYPE or OOM) prove the server
    is reachable, so they count as successes but still raise
    :class:`ServerRefusal` (a :class:`BackendError`); a ``DataError`` (redis-py refusing an argument) is
    the caller's bug and becomes ``TypeError``. Anything else (cancellation,
    programming errors) passes through unchanged and only frees the probe slot.

    Guards hold no per-call state, so one instance per operation name is
    shared by all threads and tasks.
    """

    __slots__ = ("_breaker", "closed", "operation", "timeout")

    def __init__(self, operation: str, breaker: CircuitBreaker, timeout: float | None = None) -> None:
        self.operation = operation
        self.closed = False
        self.timeout = timeout
        self._breaker = breaker

    def __enter__(self) -> None:
        if self.closed:
            raise BackendError(f"Redis {self.operation} refused: the L2 tier is closed")
        if not self._breaker.allow():
            raise CircuitOpenError(
                f"Redis {self.operation} skipped: circuit breaker open after repeated failures"
            )
        arm(self.timeout)  # also without one: no deadline of an earlier call may linger in this context

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._breaker.record_success()
            return
        if isinstance(exc, CONNECTIVITY_ERRORS):
            self._breaker.record_failure()
            raise BackendError(describe_error(self.operation, exc)) from exc
        if isinstance(exc, redis_errors.DataError):
            self._breaker.release()
            raise TypeError(describe_error(self.operation, exc)) from exc
        if isinstance(exc, redis_errors.NoPermissionError):
            self._breaker.record_success()  # the server answered: it is up
            raise RedisAccessDenied(describe_error(self.operation, exc)) from exc
        if isinstance(exc, redis_errors.RedisError):
            self._breaker.record_success()
            raise ServerRefusal(describe_error(self.operation, exc)) from exc
        self._breaker.release()  # not ours to judge: let it propagate unchanged


@contextlib.contextmanager
def unjudged(operation: str) -> Iterator[None]:
    """A speculative call (opening connections ahead of traffic): errors translated as a guard
    translates them, but the breaker neither hears of it nor is asked, so a warm-up against a
    server that is down leaves the breaker to the calls that matter.
    """
    try:
        yield
    except CONNECTIVITY_ERRORS as exc:
        raise BackendError(describe_error(operation, exc)) from exc
    except redis_errors.RedisError as exc:
        raise ServerRefusal(describe_error(operation, exc)) from exc
