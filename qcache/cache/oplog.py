"""``CACHE_LOG_OPERATIONS``: one log line per cache operation, with key hashes, never values or keys.

Each line (logger ``qcache.operations``, level INFO) names the operation,
the project, the cache type, a hash of the key (SHA-256, 16 hex digits: the
same hash as the access audit trail, so the two can be joined), the outcome
(``hit``/``miss``, a count, or the exception's type) and the time taken.

The log is installed on a facade, and on each of its project views, as
instance attributes wrapping the methods, when the cache is built with the
setting on; with it off nothing is installed and the operations run exactly
as they would without this module (the L1 hit path pays nothing). The
setting is read when a cache is built.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("qcache.operations")

#: Operations whose first argument is a key.
_KEYED = ("get", "set", "delete", "get_or_set", "validate")
#: Operations whose first argument is a batch (logged by its size).
_BATCHED = ("get_many", "set_many")
#: The rest: a pattern (hashed like a key), tags (counted), or nothing.
_OTHER = ("invalidate_pattern", "invalidate_tags", "clear", "flush")
OPERATIONS = _KEYED + _BATCHED + _OTHER


def key_hash(key: str) -> str:
    """What the logs and the audit trail show of a key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _subject(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``key=<hash>``, ``keys=<n>``, ``tags=<n>`` or nothing: never the key itself."""
    if operation in _KEYED or operation == "invalidate_pattern":
        key = args[0] if args else kwargs.get("key", kwargs.get("pattern"))
        return f" key={key_hash(key)}" if isinstance(key, str) else ""
    if operation in _BATCHED and args:
        try:
            return f" keys={len(args[0])}"
        except TypeError:
            return ""
    if operation == "invalidate_tags":
        return f" tags={len(args)}"
    return ""


def _outcome(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> str:
    if operation in ("get", "get_or_set"):
        default = args[1] if operation == "get" and len(args) > 1 else kwargs.get("default")
        return "miss" if result is default else "hit"
    if operation == "get_many":
        return f"hits={len(result)}"
    if operation == "validate":
        return "valid" if result else "invalidated"
    if operation in ("delete",):
        return "removed" if result else "absent"
    if isinstance(result, int) and not isinstance(result, bool):
        return f"count={result}"
    return "ok"


def _line(facade: Any, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any], outcome: str,
          started: float) -> None:
    cache_type = kwargs.get("cache_type") or "default"
    logger.info(
        "op=%s project=%s type=%s%s outcome=%s ms=%.3f", operation, facade.namespace, cache_type,
        _subject(operation, args, kwargs), outcome, (time.perf_counter() - started) * 1000.0,
    )


def _logged(facade: Any, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def logged_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                _line(facade, operation, args, kwargs, f"error:{type(exc).__name__}", started)
                raise
            _line(facade, operation, args, kwargs, _outcome(operation, args, kwargs, result), started)
            return result

        return logged_async

    @functools.wraps(method)
    def logged(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        except BaseException as exc:
            _line(facade, operation, args, kwargs, f"error:{type(exc).__name__}", started)
            raise
        _line(facade, operation, args, kwargs, _outcome(operation, args, kwargs, result), started)
        return result

    return logged


def install_operation_log(facade: Any) -> None:
    """Wrap ``facade``'s operations so each one logs a line (see the module docstring)."""
    for operation in OPERATIONS:
        method = getattr(type(facade), operation, None)
        if method is not None:
            setattr(facade, operation, _logged(facade, operation, getattr(facade, operation)))
