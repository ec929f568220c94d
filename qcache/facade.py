"""What the sync and async facades share beyond the plans: views, validation of inputs, stats."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from qcache.config import CacheConfig
from qcache.core import CacheCore
from qcache.keys import GLOBAL_NAMESPACE

S = TypeVar("S")
Self = TypeVar("Self", bound="FacadeBase[Any]")


class FacadeBase(Generic[S]):
    """Configuration, the shared core and the project namespace of one cache view.

    ``S`` is the facade's shared state (tier, locks, flusher), common to all
    views of one cache.
    """

    _shared: S
    _core: CacheCore
    _namespace: str
    _owner: bool

    def _setup(self, config: CacheConfig | None, strict: bool, core: CacheCore | None,
               clock: Callable[[], float]) -> tuple[CacheConfig, CacheCore]:
        config = config if config is not None else CacheConfig.from_env()
        config.check()
        core = core if core is not None else CacheCore(config, strict=strict, clock=clock)
        self._core = core
        self._namespace = GLOBAL_NAMESPACE
        self._owner = True
        return config, core

    @classmethod
    def from_env(cls: type[Self], **kwargs: Any) -> Self:
        """A cache configured from the environment and ``.env`` (see :meth:`CacheConfig.from_env`)."""
        return cls(CacheConfig.from_env(), **kwargs)  # type: ignore[call-arg]

    def for_project(self: Self, project: str) -> Self:
        """A view with the same API whose keys live in ``project``'s own namespace.

        With ``CACHE_PROJECT_ISOLATION=true`` a view can never read, overwrite,
        delete, clear or pattern-invalidate another project's keys: its keys
        all start with ``<prefix>:<project>:`` and patterns are confined to
        that prefix. With isolation off, every view shares the global
        namespace. Closing a view does nothing; close the cache it came from.
        """
        view = object.__new__(type(self))
        view._shared = self._shared
        view._core = self._core
        view._namespace = self._core.namespace_for(project)
        view._owner = False
        return view

    @property
    def config(self) -> CacheConfig:
        """The configuration this cache follows (live updates apply)."""
        return self._core.config

    @property
    def namespace(self) -> str:
        """The key namespace of this view (``_`` for the global one)."""
        return self._namespace

    def _stats(self, tier: Any) -> dict[str, Any]:
        out = self._core.stats()
        if tier is not None:
            out["l2_breaker"] = tier.breaker_stats().state.value
        return out

    @staticmethod
    def _stamp(report: dict[str, Any]) -> dict[str, Any]:
        report["timestamp"] = time.time()
        return report
