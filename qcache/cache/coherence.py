"""L1 coherence across processes: what Redis's invalidation reports do to this process's L1. No I/O here.

Redis reports every key that changes under the cache's namespace prefix
(server-assisted client-side caching, ``CLIENT TRACKING ... BCAST PREFIX``;
:mod:`qcache.l2.tracking` holds the connection): writes, deletes, expiries and
evictions, made by qcache in any process or by any other client. This module
decides what a report does here:

* A key someone else changed: its L1 copy goes, and its write generation moves
  so that an L2 read already in flight does not put the old value back (see
  :class:`~qcache.cache.generations.WriteGenerations`).
* A key this process has just written: the report is most likely the echo of
  its own write, and dropping the fresh L1 copy would only cost the next read a
  round trip. The copy is kept if Redis still holds exactly the record written
  (records differ per write: each carries its expiry in milliseconds), checked
  with one read off the caller's path, and dropped otherwise. Counting
  echoes would not be safe: Redis merges the reports of a key changed twice in
  one event-loop turn, so one report can stand for our write and a later one
  from elsewhere.
* Own writes of one key that overlap in time (threads): when the last ends,
  the copy goes, whatever reports came: their L1 copies may have landed in
  another order than their writes reached Redis. (Not for a write-back
  flush, whose value L1 already holds as the newest.)
* A key this process wrote on the invalidation connection itself (a sync
  cache's single-key write-through ``set``, when that connection is free): no
  echo comes, and nothing is checked. That connection tracks with ``NOLOOP``,
  and Redis, which merges the reports of one event-loop turn per key, leaves a
  key out only when the *last* change in that turn was made by this very
  connection: a change from elsewhere after the write is reported as usual
  (see :mod:`qcache.l2.tracking`). Own writes of one key that overlap, one of
  them unechoed, are all checked (the unechoed one may have hidden the
  other's echo), and the copy goes when the last ends, as above.
* The report stream broken (the connection lost, or ``FLUSHALL``): reports may
  have been missed, so all of L1 goes, and again once tracking is back, for
  what was filled meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qcache.cache.generations import WriteGenerations
from qcache.memory.store import MemoryStore

if TYPE_CHECKING:
    from qcache.l2.direct import QuietWriter

#: Own writes waiting for their echo, at most; past this the reports are not keeping up: L1 is reset.
MAX_AWAITED_ECHOES = 100_000


@dataclass(frozen=True, slots=True)
class CoherenceStats:
    """Counters of one cache's L1 coherence, for ``stats()``."""

    live: bool  # the invalidation connection is up and tracking
    reports: int  # keys reported changed
    evicted: int  # L1 copies dropped for a report
    echoes_kept: int  # own writes whose copy survived their echo (Redis still held them)
    echoes_dropped: int  # own writes whose copy went: Redis held something else by then
    unechoed: int  # own writes made on the invalidation connection, which Redis does not echo back
    resets: int  # whole-L1 flushes (connection lost or restored, FLUSHALL)


class _OwnWrite:
    """Writes of this process in flight for one key: how many, whether a report arrived meanwhile,
    and whether L1 already holds the value being written (a write-back flush) rather than an older one."""

    __slots__ = ("count", "flushing", "holds_new", "overlapped", "quiet", "reported")

    def __init__(self, holds_new: bool, quiet: bool) -> None:
        self.count = 1
        self.reported = False
        self.holds_new = holds_new
        self.flushing = holds_new  # one of them is a write-back flush
        self.quiet = quiet  # one of them may be written on the invalidation connection (no echo)
        self.overlapped = False  # more than one at a time


class L1Coherence:
    """Applies invalidation reports to one cache's L1, keeping its own fresh writes.

    The write path calls :meth:`write_begin` before its L2 write and
    :meth:`write_end` after filling L1; the listener calls :meth:`invalidated`,
    :meth:`lost` and :meth:`restored`, and runs the echo checks that
    :meth:`take_checks` hands out, answering with :meth:`checked`. ``wake`` is
    called (outside the lock) when a check is queued; the listener sets it.
    Thread-safe: writers and the listener may run on different threads.
    """

    def __init__(self, l1: MemoryStore, generations: WriteGenerations) -> None:
        self._l1 = l1
        self._gens = generations
        self._lock = threading.Lock()
        self._writing: dict[str, _OwnWrite] = {}
        self._awaiting: dict[str, bytes] = {}  # skey -> the record written, until its echo
        self._checks: dict[str, bytes] = {}
        self.wake: Callable[[], None] = _nothing
        #: The invalidation connection when it takes single-key writes, which Redis does not echo (sync caches).
        self.writer: QuietWriter | None = None
        self.live = False
        self._reports = self._evicted = self._kept = self._dropped = self._resets = self._unechoed = 0

    # -- the write path ----------------------------------------------------------------------

    def write_begin(self, skey: str, *, quiet: bool = False) -> None:
        """An own write of ``skey`` is about to reach L2: a report meanwhile may be its echo.

        ``quiet``: it may go on the invalidation connection, whose writes are not echoed.
        """
        with self._lock:
            self._begin_locked(skey, False, quiet)

    def writes_begin(self, skeys: Iterable[str], *, flushing: bool = False) -> None:
        """:meth:`write_begin` for a batch; ``flushing``: write-back writes, whose value L1 already holds."""
        with self._lock:
            for skey in skeys:
                self._begin_locked(skey, flushing, False)

    def write_end(self, skey: str, record: bytes | None, *, quiet: bool = False) -> None:
        """The write of ``skey`` is done and L1 holds its copy (``record`` None: the L2 write failed).

        If a report came in while the write was in flight, it may have been
        the echo or a later write from elsewhere: the copy is checked against
        Redis now. Otherwise the copy waits for its echo, unless the write was
        ``quiet`` (made on the invalidation connection: Redis sends no echo,
        and reports any later change from elsewhere).
        """
        with self._lock:
            wake = self._end_locked(skey, record, quiet)
        if wake:
            self.wake()

    def writes_end(self, writes: Iterable[tuple[str, bytes | None]]) -> None:
        """:meth:`write_end` for a batch of ``(skey, record)``."""
        wake = False
        with self._lock:
            for skey, record in writes:
                wake = self._end_locked(skey, record) or wake
        if wake:
            self.wake()

    def _begin_locked(self, skey: str, holds_new: bool, quiet: bool) -> None:
        own = self._writing.get(skey)
        if own is None:
            self._writing[skey] = _OwnWrite(holds_new, quiet)
        else:
            own.count += 1
            own.overlapped = True
            own.holds_new = own.holds_new and holds_new
            own.flushing = own.flushing or holds_new
            if quiet or own.quiet:
                # Overlapping own writes, one unechoed: in one event-loop turn the unechoed one, last,
                # hides the other's echo, and their L1 copies may land in either order. All are checked.
                own.quiet = True
                own.reported = True

    def _end_locked(self, skey: str, record: bytes | None, quiet: bool = False) -> bool:
        """Settle one own write; True when a check was queued."""
        own = self._writing.get(skey)
        if own is None:  # a reset in between forgot it: check the copy
            reported = True
        else:
            reported = own.reported
            own.count -= 1
            if not own.count:
                del self._writing[skey]
                if own.overlapped and not own.flushing:
                    # The last of overlapping own writes: their L1 copies landed in an order no check can
                    # tell (a check compares Redis with one record, L1 may hold another's value). The copy
                    # goes; a read takes the key from Redis (or from a write still queued for it).
                    self._gens.bump(skey)
                    self._l1.delete(skey)
                    return False
        if record is None:
            # Whether the write landed is unknown; if it did, its echo finds nothing awaited and evicts.
            self._awaiting.pop(skey, None)
            return False
        if reported:
            self._checks[skey] = record
            return True
        if quiet:
            self._unechoed += 1
            if skey in self._awaiting:
                # An earlier own write's echo is still to come (a turn of its own: that write was answered
                # before this one was sent): it checks this copy, the newest, when it comes.
                self._awaiting[skey] = record
            return False
        self._awaiting[skey] = record
        if len(self._awaiting) > MAX_AWAITED_ECHOES:
            self._reset_locked()
        return False

    # -- the listener ------------------------------------------------------------------------

    def invalidated(self, skeys: Iterable[str] | None) -> None:
        """Redis reported ``skeys`` changed (``None``: every key, as after ``FLUSHALL``)."""
        if skeys is None:
            self.reset()
            return
        wake = False
        gens = self._gens
        l1 = self._l1
        with self._lock:
            for skey in skeys:
                self._reports += 1
                own = self._writing.get(skey)
                if own is not None:
                    # A write of this key is in flight: it checks the copy it leaves (this report may
                    # stand for its echo merged with a later write from elsewhere).
                    own.reported = True
                awaited = self._awaiting.pop(skey, None)
                if awaited is not None:
                    # Most likely the echo: the check decides (and moves the generation if it drops the copy).
                    self._checks[skey] = awaited
                    wake = True
                    continue
                gens.bump(skey)  # before L1: a read in flight must not refill the old value
                if own is not None and own.holds_new:
                    continue  # L1 holds the value being flushed, this process's newest: write_end checks it
                if l1.delete(skey):
                    self._evicted += 1
        if wake:
            self.wake()

    def take_checks(self) -> dict[str, bytes]:
        """The own writes to compare with Redis now: ``{skey: record written}``."""
        with self._lock:
            checks, self._checks = self._checks, {}
        return checks

    def checked(self, skeys: Sequence[str], expected: Sequence[bytes], found: Sequence[bytes | None]) -> None:
        """Keep each own copy whose record Redis still holds (``found``: what it held); drop the others.

        While Redis holds the record written, whatever L1 holds for the key is
        that write's value or a newer one of this process: a read can only have
        filled it from that very record (an older read's fill is refused by the
        write generation), and a later write elsewhere would have replaced it.
        """
        l1 = self._l1
        gens = self._gens
        with self._lock:
            for skey, record, raw in zip(skeys, expected, found):
                if raw == record:
                    self._kept += 1
                    continue
                if skey in self._writing or self._awaiting.get(skey, record) != record or (
                    self._checks.get(skey, record) != record
                ):
                    continue  # a newer write of this process is tracked: its own echo or check decides
                gens.bump(skey)  # a read in flight may hold the older value
                if l1.delete(skey):
                    self._dropped += 1

    def lost(self) -> None:
        """The invalidation connection is gone: reports may be missed, so nothing in L1 can be trusted."""
        with self._lock:
            self.live = False
            self._reset_locked()

    def restored(self) -> None:
        """Tracking is back: drop what L1 took in while nobody was listening."""
        with self._lock:
            self._reset_locked()
            self.live = True

    def reset(self) -> None:
        """Flush L1 and forget every awaited echo."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._gens.bump_all()  # reads in flight fill nothing
        self._l1.clear()
        self._awaiting.clear()
        self._checks.clear()
        for own in self._writing.values():
            own.reported = True  # their copies are checked once written
        self._resets += 1

    def stats(self) -> CoherenceStats:
        """The counters so far."""
        with self._lock:
            return CoherenceStats(
                self.live, self._reports, self._evicted, self._kept, self._dropped, self._unechoed, self._resets
            )


def _nothing() -> None:
    """The default ``wake``: no listener yet."""
