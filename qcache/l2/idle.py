"""The idle connections of the sync tier's blocking pool: a LIFO queue whose uncontended steps take one lock.

redis-py's ``BlockingConnectionPool`` keeps its idle connections in a
``queue.LifoQueue``: taking one and giving it back go through
``threading.Condition`` (enter, notify, ownership checks), about a sixth of
the client's own CPU time per command, and most of what separated an L2 hit
from a raw ``GET`` on a plain pool. :class:`IdleConnections` takes or puts an
item under the queue's mutex alone when it can (an item is there; no caller
waits for one), and otherwise behaves as ``LifoQueue``: an empty pool still
makes callers wait, up to the pool's timeout, and a put still wakes one.
"""

from __future__ import annotations

import queue
from typing import Any

#: Whether ``queue.LifoQueue`` is the standard library's, whose mutex and deque the fast steps use.
#: gevent's monkey-patching (Locust's workers) swaps in a queue of its own with neither; pools
#: then keep redis-py's default queue (see :meth:`qcache.l2.tier.RedisTier._bound_pool`).
AVAILABLE = queue.LifoQueue.__module__ == "queue"


class IdleConnections(queue.LifoQueue[Any]):
    """``LifoQueue`` for a pool that only ever puts without blocking (``put_nowait``), as redis-py's does.

    ``task_done``/``join`` are not kept up to date on the fast steps: the pool uses neither.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._waiting = 0  # callers inside the blocking get(): a put must wake one

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The last item put; waits as ``LifoQueue.get`` when there is none."""
        with self.mutex:
            if self.queue:
                return self.queue.pop()
            self._waiting += 1
        try:
            return super().get(block, timeout)  # looks again under the mutex before waiting
        finally:
            with self.mutex:
                self._waiting -= 1

    def put_nowait(self, item: Any) -> None:
        """Add ``item``; ``queue.Full`` when the queue is full, as ``LifoQueue.put_nowait``."""
        with self.mutex:
            if not self._waiting and (self.maxsize <= 0 or len(self.queue) < self.maxsize):
                self.queue.append(item)
                return
        super().put_nowait(item)  # full, or a caller waits: the queue's own put raises or wakes it
