"""Optional numba-compiled kernels (the ``sim-fast`` extra), imported on first use only.

numba takes about a second to import, and neither the L1 store nor
``import qcache`` needs it: a kernel module is imported the first time a
job long enough to pay for it asks, and never when numba is missing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Hashable, Sequence
from types import ModuleType
from typing import ClassVar

logger = logging.getLogger(__name__)


class LazyKernel:
    """A kernel module, and which jobs are worth loading it for (the results are the same either way).

    The first load costs numba's import and the kernel's cached machine code
    (about 1 s; several more the first time on a machine, to compile), so
    only a job of ``first_requests`` or more triggers it; once loaded, jobs
    of ``loaded_requests`` or more use it.
    """

    def __init__(self, module: str, *, first_requests: int, loaded_requests: int) -> None:
        self.name = module
        self.first_requests = first_requests
        self.loaded_requests = loaded_requests
        self._module: ModuleType | None = None
        self.state = "unloaded"  # "unloaded", "loaded", or "missing" (numba is not installed)

    def module(self) -> ModuleType | None:
        """The kernel module, imported now if need be; None without numba."""
        if self.state == "unloaded":
            try:
                self._module = importlib.import_module(self.name)
            except ImportError:
                self.state = "missing"
            else:
                self.state = "loaded"
        return self._module

    def failed(self, exc: BaseException) -> None:
        """The kernel raised where the pure loop would not (it could not compile): never use it again here.

        The results are the same without it; the warning says why it is slower.
        """
        self.state = "missing"
        self._module = None
        logger.warning("qcache: the compiled kernel %s failed (%s: %s); the pure-Python loop runs instead",
                       self.name, type(exc).__name__, exc)

    def for_job(self, requests: int) -> ModuleType | None:
        """The kernel module when a job of ``requests`` is worth it, else None."""
        if self.state == "missing":
            return None
        least = self.loaded_requests if self.state == "loaded" else self.first_requests
        return self.module() if requests >= least else None


def compile_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from numba itself (typing, lowering, its cache), not from the replay."""
    return type(exc).__module__.split(".")[0] == "numba"


def chunk_ends(total: int, chunk: int) -> list[int]:
    """Where slices of ``chunk`` requests end, over ``total`` requests (the last may be shorter)."""
    return [*range(chunk, total, chunk), total] if total > 0 else []


class CompiledReplay:
    """The simulator's replay of a policy that has a numba-compiled twin (the ``sim-fast`` extra).

    A policy mixes this in, names its kernel in ``kernel`` (a :class:`LazyKernel`
    whose module has ``replay_segments(policy, keys, ends, progress)``), and
    implements ``_replay_loop(keys, progress, chunk)``, the same decisions in
    pure Python. Both replays start from, and leave, the policy's state.
    """

    kernel: ClassVar[LazyKernel]

    def _replay_loop(self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int) -> int:
        raise NotImplementedError

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
        *,
        compiled: bool | None = None,
        job: int | None = None,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        The simulator's fast path: the policy's hooks inlined into one loop
        (the tests compare the two hit for hit, and the final states);
        ``progress`` gets the number of requests done every ``chunk``
        requests. With numba installed, long replays run compiled with the
        same decisions: ``job`` (default ``len(keys)``) is the length of the
        whole replay this one is part of, which decides whether the kernel is
        worth loading; ``compiled`` forces the kernel (True: ImportError
        without numba) or the pure-Python loop (False).
        """
        ends = chunk_ends(len(keys), chunk)
        return sum(self.replay_segments(keys, ends, progress, compiled=compiled, job=job))

    def replay_segments(
        self,
        keys: Sequence[Hashable],
        ends: Sequence[int],
        progress: Callable[[int], None] | None = None,
        *,
        compiled: bool | None = None,
        job: int | None = None,
    ) -> list[int]:
        """:meth:`replay` cut at ``ends`` (ascending, the last ``len(keys)``): the hits of each segment.

        One replay, so the compiled kernel moves the policy's state into its
        arrays and back once for all segments (ADAPTIVE's shadows score
        period by period). A kernel that cannot compile leaves the state
        untouched (every piece of it compiles before the replay changes
        anything), and the pure loop makes the same decisions; an error of
        the replay itself (a progress callback's) stands. ``progress`` gets
        the length of each segment that holds requests.
        """
        descending = any(end < start for start, end in zip([0, *ends], ends, strict=False))
        if descending or (ends[-1] if ends else 0) != len(keys):
            raise ValueError(f"segment ends must ascend from 0 to len(keys) = {len(keys)}")
        kernel = self.kernel
        size = len(keys) if job is None else job
        module = kernel.for_job(size) if compiled is None else kernel.module() if compiled else None
        if compiled or module is not None:
            if module is None:
                raise ImportError("the compiled replay needs numba (the sim-fast extra)")
            try:
                hits: list[int] = module.replay_segments(self, keys, ends, progress)
            except Exception as exc:
                if compiled or not compile_error(exc):
                    raise
                kernel.failed(exc)
            else:
                return hits
        hits = []
        start = 0
        for end in ends:
            hits.append(self._replay_loop(keys[start:end], progress, max(end - start, 1)))
            start = end
        return hits
