"""Write-back: sending batches of pending writes to L2, and what a failed flush leaves behind."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from qcache.cache.plans import L2Call, Plan
from qcache.cache.writeback import PendingWrite
from qcache.errors import BackendError, ServerRefusal
from qcache.l2.protocol import L2Op
from qcache.l2.tagging import Membership

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

logger = logging.getLogger("qcache")


class FlushPlans:
    """Batches of the write-back queue sent to L2; a batch is never lost, only put back or refused."""

    __slots__ = ("_core",)

    def __init__(self, core: CacheCore) -> None:
        self._core = core

    def plan_flush_batch(self, limit: int) -> Plan[int]:
        """Send up to ``limit`` pending writes to L2; on failure put them back. Returns how many went.

        While the batch is being sent it stays readable (see :class:`WriteBackQueue`).
        """
        pending = self._core.pending
        batch = pending.take(limit)
        if not batch:
            return 0
        try:
            return (yield from self._send_batch(batch))
        finally:
            pending.complete(batch)

    def gave_up(self, exc: BackendError) -> int:
        """``flush`` ran out of time on a failing L2: raise in strict mode, else count it; writes still pending."""
        core = self._core
        if core.strict:
            raise exc
        core.failures.l2_failed("flush", exc)
        return len(core.pending)

    def _send_batch(self, batch: list[PendingWrite]) -> Plan[int]:
        """The L2 part of :meth:`plan_flush_batch`."""
        core = self._core
        now_ms = int(core.clock() * 1000)
        live = [w for w in batch if w.expires_at_ms > now_ms + 1]
        if not live:
            return 0
        started = time.perf_counter_ns()
        items = [(w.key, w.record, (w.expires_at_ms - now_ms) / 1000.0) for w in live]
        memberships = [Membership(tag_key, w.key, w.expires_at_ms) for w in live for tag_key in w.tags]
        # The L1 copies of these writes must outlive their echoes (see qcache.cache.coherence).
        coherence = core.coherence
        if coherence is not None:
            coherence.writes_begin([w.key for w in live], flushing=True)
        try:
            if memberships:
                yield L2Call(L2Op.SET_TAGGED, (items, memberships, now_ms))
            else:
                yield L2Call(L2Op.SET_MANY, (items,))
        except ServerRefusal:
            # The server refused something in the batch (it answered, so retrying the whole
            # batch would fail again forever): send the writes one by one.
            if coherence is not None:
                coherence.writes_end([(w.key, None) for w in live])
            sent = yield from self._send_one_by_one(live, items)
        except BaseException as exc:
            # A batch that failed, or was cut short by cancellation (the async close() may
            # cancel the flusher), goes back to the queue: a taken batch must never just vanish.
            if coherence is not None:
                coherence.writes_end([(w.key, None) for w in live])
            if isinstance(exc, BackendError) or not isinstance(exc, Exception):
                core.pending.requeue(live)
            raise
        else:
            sent = len(live)
            if coherence is not None:
                coherence.writes_end([(w.key, w.record) for w in live])
        core.metrics.stored("l2", sent)
        core.metrics.timed("writeback_flush", time.perf_counter_ns() - started)
        return sent

    def _send_one_by_one(self, live: list[PendingWrite], items: list[tuple[str, bytes, float]]) -> Plan[int]:
        """Write each entry on its own, dropping (and counting) those the server refuses; how many went."""
        core = self._core
        sent = 0
        for index, item in enumerate(items):
            write = live[index]
            try:
                if write.tags:
                    memberships = [Membership(tag_key, write.key, write.expires_at_ms) for tag_key in write.tags]
                    yield L2Call(L2Op.SET_TAGGED, ([item], memberships, int(core.clock() * 1000)))
                else:
                    yield L2Call(L2Op.SET, item)
            except ServerRefusal as exc:
                core.metrics.error("writeback_rejected")
                logger.warning("qcache: L2 refused a write-back write, dropped: %s", exc)
                continue
            except BaseException as exc:
                if isinstance(exc, BackendError) or not isinstance(exc, Exception):
                    core.pending.requeue(live[index:])
                raise
            sent += 1
        return sent
