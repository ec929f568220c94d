"""The role-bound view: the cache's API, limited to what a role may do, for a session's time.

``cache.as_role("client")`` (sync or async cache, global or project view)
returns a :class:`RoleView`. Each operation the role may perform is the
cache's own bound method, set on the view once, so an allowed call costs
what it costs on the cache; an operation the role lacks raises
:class:`~qcache.errors.AccessDenied` (a ``PermissionError``) when called,
is audited and counted. Only auditing every access (``CACHE_ACCESS_LOGGING``)
or a check that depends on the arguments (a namespace-wide
``invalidate_pattern`` needs ``admin``) puts a thin wrapper in between.

A view expires ``CACHE_SESSION_TIMEOUT`` seconds after it was made: from then
on every operation raises :class:`SessionExpired`. The view never hands out
the unrestricted cache.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qcache.access.guard import AccessGuard
from qcache.access.policy import OPERATIONS, Permission, Role, namespace_wide
from qcache.errors import AccessDenied


class SessionExpired(AccessDenied):
    """A role-bound view used after ``CACHE_SESSION_TIMEOUT``: ask the cache for a new one."""


def _key_of(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """What the audit trail hashes: the key or the pattern; the count of a batch."""
    if operation in ("get", "set", "delete", "get_or_set", "invalidate_pattern", "validate"):
        return str(args[0]) if args else kwargs.get("key", kwargs.get("pattern"))
    if operation in ("get_many", "set_many") and args:
        return f"<{len(args[0])} keys>"
    if operation == "invalidate_tags":
        return ",".join(map(str, args))
    return None


class RoleView:
    """The cache as one role sees it (see the module docstring)."""

    def __init__(self, cache: Any, role: Role, guard: AccessGuard, *, expires_at: float) -> None:
        self.role = role.name
        self.project = str(cache.namespace)
        self.expires_at = expires_at
        self._role = role
        self._guard = guard
        self.__cache = cache
        for operation, needs in OPERATIONS.items():
            if operation == "config":
                continue
            target = getattr(cache, operation, None)
            if target is not None:
                setattr(self, operation, self._bind(operation, needs, target))
        _EXPIRY.add(expires_at, self)

    # -- building the view's methods -----------------------------------------------------

    def _bind(self, operation: str, needs: frozenset[Permission], target: Callable[..., Any]) -> Callable[..., Any]:
        if not self._role.allows(needs):
            return self._refusal(operation, f"role {self.role!r} lacks {', '.join(sorted(p.value for p in needs))}")
        per_call = operation == "invalidate_pattern" or self._guard.access_logging
        if not per_call:
            return target  # the cache's own method: no cost at all
        guard, role, project = self._guard, self.role, self.project

        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            key = _key_of(operation, args, kwargs)
            if operation == "invalidate_pattern" and key is not None and namespace_wide(key) \
                    and Permission.ADMIN not in self._role.permissions:
                guard.denied(role, project, operation, key, "a namespace-wide pattern needs admin")
                raise AccessDenied(f"role {role!r}: the pattern {key!r} spans the whole namespace; it needs admin")
            guard.allowed(role, project, operation, key)

        if inspect.iscoroutinefunction(target):
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return await target(*args, **kwargs)

            return guarded_async

        def guarded(*args: Any, **kwargs: Any) -> Any:
            check(args, kwargs)
            return target(*args, **kwargs)

        return guarded

    def _refusal(self, operation: str, why: str, error: type[AccessDenied] = AccessDenied) -> Callable[..., Any]:
        guard, role, project = self._guard, self.role, self.project

        def refuse(*args: Any, **kwargs: Any) -> Any:
            guard.denied(role, project, operation, _key_of(operation, args, kwargs), why)
            raise error(f"{why}: {operation} is not allowed")

        return refuse

    def _expire(self) -> None:
        """Called by the expiry thread: every operation now raises SessionExpired."""
        why = f"the session of role {self.role!r} expired"
        for operation in OPERATIONS:
            if operation != "config" and operation in self.__dict__:
                setattr(self, operation, self._refusal(operation, why, SessionExpired))
        self.expires_at = 0.0

    # -- what is not a plain operation ---------------------------------------------------

    @property
    def expired(self) -> bool:
        return self.expires_at == 0.0 or time.monotonic() >= self.expires_at

    @property
    def config(self) -> Any:
        """The live configuration: admin only, since it can be changed through it."""
        return self._admin_only("config", None)

    @property
    def namespace(self) -> str:
        return self.project

    def backup(self, path: str | os.PathLike[str]) -> Any:
        """Snapshot this view's namespace to ``path`` (admin only; see :mod:`qcache.ops.backup`).

        Blocking, also on an async cache's view: call it from a thread there.
        """
        from qcache.ops.backup import create_backup
        from qcache.ops.redis_client import sync_client

        config = self._admin_only("backup", str(path))
        client = sync_client(config)
        try:
            return create_backup(client, Path(path), prefix=config.core.key_prefix, project=self.project)
        finally:
            client.close()

    def restore(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Any:
        """Restore a backup into this view's namespace (admin only; see :mod:`qcache.ops.backup`)."""
        from qcache.ops.backup import restore_backup
        from qcache.ops.redis_client import sync_client

        config = self._admin_only("restore", str(path))
        client = sync_client(config)
        try:
            return restore_backup(client, Path(path), prefix=config.core.key_prefix, project=self.project,
                                  overwrite=overwrite, max_key_length=config.core.max_key_length)
        finally:
            client.close()

    def _admin_only(self, operation: str, target: str | None) -> Any:
        """The cache's configuration for an admin's operation, after the same checks as every other."""
        expired = self.expired
        if Permission.ADMIN not in self._role.permissions or expired:
            why = f"the session of role {self.role!r} expired" if expired else f"role {self.role!r} lacks admin"
            self._guard.denied(self.role, self.project, operation, target, why)
            raise (SessionExpired if expired else AccessDenied)(f"{why}: {operation} is not allowed")
        self._guard.allowed(self.role, self.project, operation, target)
        return self.__cache.config

    def for_project(self, project: str) -> RoleView:
        """The same role in ``project``'s namespace, if the role's grants allow it; same session."""
        if self.expired:
            self._guard.denied(self.role, self.project, "for_project", project, "session expired")
            raise SessionExpired(f"the session of role {self.role!r} expired")
        if not self._role.may_enter(project):
            self._guard.denied(self.role, self.project, "for_project", project, "no grant for the project")
            raise AccessDenied(f"role {self.role!r} has no grant for project {project!r}")
        return RoleView(self.__cache.for_project(project), self._role, self._guard, expires_at=self.expires_at)

    def __repr__(self) -> str:
        return f"RoleView(role={self.role!r}, project={self.project!r}, expired={self.expired})"


class _Expiry:
    """One daemon thread that expires every view at its deadline (views are held weakly)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[RoleView]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, view: RoleView) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), weakref.ref(view)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="qcache-sessions", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, ref = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            view = ref()
            if view is not None:
                view._expire()


_EXPIRY = _Expiry()
