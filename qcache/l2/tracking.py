"""The invalidation connection: Redis server-assisted client-side caching, in broadcast mode.

One connection per cache, besides the pool, speaking RESP2: it turns on
``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <namespace>`` and
subscribes to ``__redis__:invalidate``. From then on Redis sends it the name of
every key under the namespace that changes, whoever changes it and however
(a write, a delete, an expiry, an eviction). Broadcast mode rather than
per-key tracking: per-key tracking must be switched on for every pooled
connection (and again whenever this connection's id changes), it reports only
keys this process has *read*, so a copy this process wrote itself would never
hear of a later change, and it makes the server remember every key read; see
``benchmarks/test_tracking_bench.py`` for the measurements.

The listener owns that connection: it connects, hands each report to a
:class:`InvalidationSink` (:class:`qcache.cache.coherence.L1Coherence`),
answers the sink's echo checks with one ``MGET`` on the pool, pings while idle
so that a dead peer is noticed, and reconnects after a loss. The sink is told
about a loss before anything else happens and about a restored connection
only once tracking is on again.

A sync listener with ``quiet_writes`` speaks RESP3 instead: its connection
tracks for itself (``CLIENT TRACKING ON BCAST PREFIX <namespace> NOLOOP``, the
reports arrive as push frames between replies) and also takes the cache's
single-key writes when it is free (:meth:`TrackingListener.write`): a ``SET``,
or a tagged write's transaction. Redis then
sends no echo of those writes, and nothing has to be checked: it collects the
keys changed in one event-loop turn with the client that changed each *last*,
and leaves a key out of a ``NOLOOP`` connection's report only when that client
is the connection itself (a transaction's commands run as the connection; a
script's, in Redis 7.0, as the script's own client: reported). A change from elsewhere after the write, in the same
turn or later, is reported; one before it, in the same turn, was overwritten
by the write. A write and the reports share the connection under a lock, and
only its holder reads: the writer its reply and any report before it, the
listener the reports after it and those that come while nobody writes.
Outside the lock the listener only waits for the socket to turn readable.
When a RESP3 attempt fails before tracking is on (a server or proxy without
``HELLO``), the next attempt is the RESP2 connection above, whose own writes'
echoes are checked; RESP3 is tried again after the next loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from qcache.l2.replies import read_replies

logger = logging.getLogger("qcache")

CHANNEL = b"__redis__:invalidate"
#: Seconds without traffic before the listener pings; a ping unanswered as long means a dead connection.
PING_INTERVAL = 1.0
#: Seconds before the second attempt to reconnect (the first is immediate), doubling up to ``MAX_RECONNECT_DELAY``.
FIRST_RECONNECT_DELAY = 0.05
MAX_RECONNECT_DELAY = 5.0
#: Seconds the listener lets reports gather after being woken by one (bounds how often it wakes:
#: in a sync cache each wake-up costs the callers' threads the GIL); a change reported in a burst
#: reaches L1 at most this much later.
GATHER_REPORTS = 0.002
#: A read that took longer than this (seconds) waited for its reply rather than finding it buffered.
_BUFFERED = 0.00005
#: Seconds echo checks gather before one MGET runs them (bounds how long a merged report keeps a stale copy).
GATHER_CHECKS = 0.002
#: Keys per MGET of the echo checks.
CHECK_CHUNK = 100
#: Seconds the RESP3 listener waits on its socket at a time (a write may leave a report in the parser's buffer).
WAIT_SLICE = 0.005
#: Seconds a write waits, at most, for the listener to finish reading the connection it shares with writes.
LISTENER_WAIT = 0.002
#: Seconds a cache being built waits, at most, for its invalidation connection's first attempt.
FIRST_CONNECT_WAIT = 0.5


class InvalidationSink(Protocol):
    """What the listener reports to (implemented by :class:`qcache.cache.coherence.L1Coherence`)."""

    wake: Callable[[], None]
    live: bool

    def invalidated(self, skeys: Sequence[str] | None) -> None: ...

    def lost(self) -> None: ...

    def restored(self) -> None: ...

    def take_checks(self) -> dict[str, bytes]: ...

    def checked(self, skeys: Sequence[str], expected: Sequence[bytes], found: Sequence[bytes | None]) -> None: ...


def setup_commands(prefix: str, client_id: int) -> list[tuple[Any, ...]]:
    """The commands that make a connection the tracker of ``prefix``, after ``CLIENT ID`` gave ``client_id``."""
    return [
        ("CLIENT", "SETNAME", "qcache-invalidation"),
        ("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", prefix),
        ("SUBSCRIBE", CHANNEL),
    ]


def quiet_setup_commands(prefix: str) -> list[tuple[Any, ...]]:
    """The commands that make a RESP3 connection the tracker of ``prefix`` that does not hear its own writes."""
    return [
        ("CLIENT", "SETNAME", "qcache-invalidation"),
        ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix, "NOLOOP"),
    ]


def pushed_keys(push: Any) -> list[str] | None | bool:
    """The keys a RESP3 ``invalidate`` push names; None for "every key"; False for another push."""
    if len(push) != 2 or push[0] not in (b"invalidate", "invalidate"):
        return False
    keys = push[1]
    if keys is None:
        return None
    return [k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else str(k) for k in keys]


def _reads_pushes(conn: Any) -> bool:
    """Whether ``conn``'s parser tells push frames from replies and hands invalidations to a handler of ours
    (redis-py's hiredis parser does with hiredis 3.2 or later)."""
    parser = getattr(conn, "_parser", None)
    return (
        getattr(parser, "_hiredis_PushNotificationType", None) is not None
        and hasattr(parser, "set_invalidation_push_handler")
        and hasattr(parser, "can_read")
    )


def _no_reconnect(*args: Any, **kwargs: Any) -> None:
    """In place of a tracking connection's ``connect``: redis-py would reconnect it silently, without tracking."""
    raise redis.ConnectionError("the invalidation connection is gone")


def _wait_readable(sock: Any, timeout: float) -> bool:
    """Whether ``sock`` turns readable or is closed within ``timeout`` seconds, without reading from it.

    ``poll`` where the platform has it (no descriptor limit); ``select``
    otherwise, which is also what gevent's patching leaves, cooperatively.
    """
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():  # TLS bytes already decrypted above the socket
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(timeout * 1000))
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):  # closed meanwhile (by a failed write): the look under the lock finds out
        return True


def is_report(reply: Any) -> bool:
    """Whether a reply on the tracking connection is an invalidation message (else a PONG, a confirmation)."""
    return isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message" and reply[1] == CHANNEL


def reported_keys(report: list[Any]) -> list[str] | None:
    """The keys an invalidation message names; None for "every key" (``FLUSHALL``, ``FLUSHDB``)."""
    keys = report[2]
    if keys is None:
        return None
    if isinstance(keys, bytes):
        keys = [keys]
    return [k.decode("utf-8", "surrogateescape") for k in keys]


def connection_options(pool: Any, retry: Any) -> dict[str, Any]:
    """The pool's connection options for the tracker: RESP2, and no retries of its own (it reconnects itself)."""
    options = dict(pool.connection_kwargs)
    options.update(protocol=2, retry=retry)
    return options


class _Batch:
    """The reports read in one go, handed to the sink together (``None`` wins: every key)."""

    __slots__ = ("everything", "keys")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.everything = False

    def add(self, reply: Any) -> None:
        if not is_report(reply):
            return  # a PONG or a confirmation
        keys = reported_keys(reply)
        if keys is None:
            self.everything = True
        else:
            self.keys.extend(keys)

    def deliver(self, sink: InvalidationSink) -> None:
        if self.everything:
            sink.invalidated(None)
        elif self.keys:
            sink.invalidated(self.keys)


class _Backoff:
    """Reconnection delays: none after a blip, growing while the server stays away."""

    def __init__(self) -> None:
        self.delay = 0.0

    def next(self) -> float:
        delay = self.delay
        self.delay = min(max(self.delay * 2, FIRST_RECONNECT_DELAY), MAX_RECONNECT_DELAY)
        return delay

    def reset(self) -> None:
        self.delay = 0.0


class _Reporter:
    """Logs a lost connection each time, and a refusal by the server (an ACL, an old Redis) once."""

    def __init__(self) -> None:
        self.refused = False

    def failed(self, exc: BaseException, was_live: bool) -> None:
        if was_live:
            logger.warning("qcache: invalidation connection lost (%s); L1 flushed, reconnecting", type(exc).__name__)
        elif isinstance(exc, redis.ResponseError) and not self.refused:
            self.refused = True
            logger.warning(
                "qcache: Redis refused client tracking (%s): L1 copies are not coherent across processes "
                "and live up to MEMORY_CACHE_TTL; retrying in the background",
                exc,
            )
        else:
            logger.debug("qcache: invalidation connection not established: %s", exc)


class _Wakeable(Protocol):
    def set(self) -> None: ...


class _ListenerBase:
    """What both listeners hold: the data client (for echo checks), the prefix, the sink and its wake-up."""

    def __init__(self, client: Any, prefix: str, sink: InvalidationSink, check_wanted: _Wakeable) -> None:
        self._client = client
        self._prefix = prefix
        self._sink = sink
        sink.wake = check_wanted.set

    def _check_batches(self) -> Iterator[tuple[list[str], list[bytes]]]:
        """The queued echo checks, in MGET-sized chunks: ``(storage keys, records written)``."""
        checks = self._sink.take_checks()
        skeys = list(checks)
        for start in range(0, len(skeys), CHECK_CHUNK):
            chunk = skeys[start : start + CHECK_CHUNK]
            yield chunk, [checks[k] for k in chunk]


class TrackingListener(_ListenerBase):
    """The invalidation connection of a sync cache: one thread reads reports, one runs echo checks.

    With ``quiet_writes`` the connection is RESP3 and takes writes too (see
    the module's docstring and :meth:`write`).
    """

    def __init__(self, client: Any, prefix: str, sink: InvalidationSink, *, quiet_writes: bool = False) -> None:
        self._check_wanted = threading.Event()
        super().__init__(client, prefix, sink, self._check_wanted)
        self._stopping = threading.Event()
        self._first_attempt = threading.Event()
        self._conn: Any = None
        self._threads: list[threading.Thread] = []
        self._quiet = quiet_writes
        self._lock = threading.Lock()  # one exchange at a time on the RESP3 connection
        self._writer: Any = None  # that connection while it tracks: writes may go on it
        self._writes = 0  # moves as each write begins and ends (the listener leaves the reading to them meanwhile)
        self._reading = False  # the listener holds the lock, or waits for it

    def write(self, request: list[bytes], count: int = 1) -> list[Any] | None:
        """The ``count`` replies to ``request`` sent on the tracking connection, or None when it is busy or down.

        Reports read on the way go to the sink. A failure leaves the
        connection unusable: the sink is told at once (L1 flushed), the
        listener reconnects, and the error propagates (whether the write
        landed is unknown).
        """
        if self._writer is None:
            return None
        lock = self._lock
        # Another write holds the connection: the pool takes this one. The listener holds it only to read
        # what is already there (or to ping an idle connection): worth a short wait.
        if not lock.acquire(blocking=False) and not (self._reading and lock.acquire(timeout=LISTENER_WAIT)):
            return None
        try:
            conn = self._writer
            if conn is None:
                return None
            self._writes += 1
            replies: list[Any] = []
            try:
                conn.send_packed_command(request, check_health=False)
                read_replies(conn, count, replies)
                self._writes += 1  # again: the listener, woken by this reply, finds the count moved
            except BaseException:
                self._writer = None
                self._sink.lost()
                with contextlib.suppress(Exception):
                    conn.disconnect()  # wakes the listener, which reconnects
                raise
            return replies
        finally:
            self._lock.release()

    def _on_push(self, push: Any) -> None:
        """A push frame on the RESP3 connection (under its lock): an invalidation goes to the sink."""
        keys = pushed_keys(push)
        if keys is not False:
            self._sink.invalidated(keys if isinstance(keys, list) else None)

    def start(self, wait: float = 0.0, *, checks: bool = True) -> TrackingListener:
        """Start both threads (daemons), waiting up to ``wait`` seconds for the first connection attempt.

        Waiting spares the copies written right after start-up: a connection
        that comes up later flushes L1, since nobody listened before.
        ``checks=False`` starts no echo-check thread (a cluster's per-node
        listeners share their supervisor's: :mod:`qcache.l2.cluster_tracking`).
        """
        loops = [(self._listen_loop, "qcache-invalidation")]
        if checks:
            loops.append((self._check_loop, "qcache-echo-check"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if wait > 0:
            self._first_attempt.wait(wait)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and wait for both threads."""
        self._stopping.set()
        self._check_wanted.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()  # wakes the reader
        for thread in self._threads:
            thread.join(timeout)

    def _listen_loop(self) -> None:
        backoff = _Backoff()
        reporter = _Reporter()
        retry = Retry(NoBackoff(), 0)
        resp2_next = False  # after a RESP3 attempt failed before tracking: one RESP2 attempt in between
        while not self._stopping.is_set():
            pool = self._client.connection_pool
            quiet = self._quiet and not resp2_next
            options = connection_options(pool, retry)
            if quiet:
                options["protocol"] = 3
            conn: Any = pool.connection_class(**options)
            live = False
            try:
                conn.connect()
                self._conn = conn
                if quiet and not _reads_pushes(conn):
                    self._quiet = False  # a parser that cannot tell push frames from replies: RESP2 instead
                    continue
                if quiet:
                    conn.connect = conn.connect_check_health = _no_reconnect
                    conn._parser.set_invalidation_push_handler(self._on_push)
                    for command in quiet_setup_commands(self._prefix):
                        conn.send_command(*command)
                        conn.read_response()
                else:
                    conn.send_command("CLIENT", "ID")
                    client_id = conn.read_response()
                    for command in setup_commands(self._prefix, int(client_id)):
                        conn.send_command(*command)
                        conn.read_response()
                self._sink.restored()
                live = True
                self._first_attempt.set()
                backoff.reset()
                if quiet:
                    self._writer = conn  # after restored(): a write now is on a connection that tracks
                    self._read_quiet(conn)
                else:
                    self._read(conn)
            except Exception as exc:  # a lost or refused connection: flush, then try again
                # RESP3 refused (HELLO unknown or denied, a proxy): the next attempt is RESP2 (echoes checked);
                # after that, and after any loss, RESP3 again. A server out of reach says nothing of RESP3.
                unreachable = isinstance(exc, redis.TimeoutError) or isinstance(exc.__cause__, OSError)
                resp2_next = quiet and not live and not unreachable
                if resp2_next:
                    continue
                self._first_attempt.set()
                with self._lock:
                    self._writer = None
                if self._stopping.is_set():
                    break
                if live:  # while it stays down, the copies written meanwhile are the newest this process knows
                    self._sink.lost()
                reporter.failed(exc, live)
                self._stopping.wait(backoff.next())
            finally:
                self._writer = None
                self._conn = None
                with contextlib.suppress(Exception):
                    conn.disconnect()
        self._sink.lost()

    def _read_quiet(self, conn: Any) -> None:
        """Read the RESP3 connection's reports under the writes' lock; ping it while idle.

        Outside the lock this thread only waits for the socket to turn
        readable (:func:`_wait_readable`, which reads nothing): a read there
        could take a write's reply, and under gevent two greenlets may not
        wait on one socket's reads. A write can take a report that follows its
        reply off the socket into the parser's buffer, where the socket shows
        nothing; so after any write the next slice looks under the lock too.
        """
        parser = conn._parser
        sock = conn._sock
        idle = 0.0
        looked = self._writes  # the write count at the last look under the lock
        while not self._stopping.is_set():
            if self._writer is not conn:
                raise redis.ConnectionError("a write on the invalidation connection failed")
            readable = _wait_readable(sock, WAIT_SLICE)
            if not readable and self._writes == looked:
                idle += WAIT_SLICE
                if idle < PING_INTERVAL:
                    continue
                idle = 0.0
                with self._held():
                    conn.send_command("PING", check_health=False)
                    conn.read_response(timeout=PING_INTERVAL)  # reports on the way go to _on_push
                continue
            idle = 0.0
            with self._held():
                if self._writer is not conn:
                    continue
                looked = self._writes
                self._read_reports(parser, conn)
            # The next reports gather meanwhile, and this thread wakes at most once per interval.
            self._stopping.wait(GATHER_REPORTS)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        """The writes' lock, for the listener: a write that finds it taken meanwhile waits briefly for it."""
        self._reading = True  # before the lock, so that a write arriving now waits rather than goes to the pool
        try:
            with self._lock:
                yield
        finally:
            self._reading = False

    def _read(self, conn: Any) -> None:
        pinged = False
        while not self._stopping.is_set():
            if not conn.can_read(timeout=PING_INTERVAL):
                if pinged:
                    raise redis.TimeoutError("the invalidation connection did not answer a PING")
                conn.send_command("PING")
                pinged = True
                continue
            pinged = False
            batch = _Batch()
            batch.add(conn.read_response())
            while conn.can_read(timeout=0):  # whatever else has arrived: one pass for the burst
                batch.add(conn.read_response())
            batch.deliver(self._sink)
            # Let the next reports gather: each wake-up of this thread costs the callers' threads the GIL.
            self._stopping.wait(GATHER_REPORTS)

    @staticmethod
    def _read_reports(parser: Any, conn: Any) -> None:
        """Read the push frames already there (under the lock); a reply here belongs to nobody: a broken stream."""
        while parser.can_read(0):
            reply = conn.read_response(push_request=True, timeout=PING_INTERVAL)
            if reply is not None:  # a push returns its handler's None
                raise redis.ConnectionError(f"unexpected reply on the invalidation connection: {reply!r}")

    def _check_loop(self) -> None:
        while True:
            self._check_wanted.wait()
            if self._stopping.wait(GATHER_CHECKS):  # one MGET for a burst of writes
                return
            self._check_wanted.clear()
            for chunk, expected in self._check_batches():
                try:
                    found: list[bytes | None] = self._client.mget(chunk)
                except Exception:  # cannot tell: the copies go
                    found = [None] * len(chunk)
                self._sink.checked(chunk, expected, found)


class AsyncTrackingListener(_ListenerBase):
    """The invalidation connection of an asyncio cache: one task reads reports, one runs echo checks."""

    def __init__(self, client: Any, prefix: str, sink: InvalidationSink) -> None:
        self._check_wanted = asyncio.Event()
        super().__init__(client, prefix, sink, self._check_wanted)
        self._first_attempt = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has been called."""
        return bool(self._tasks)

    def start(self, *, checks: bool = True) -> AsyncTrackingListener:
        """Start both tasks on the running loop (no echo-check task with ``checks=False``); returns self."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen_loop(), name="qcache-invalidation")]
        if checks:
            self._tasks.append(loop.create_task(self._check_loop(), name="qcache-echo-check"))
        return self

    async def first_attempt(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the first connection attempt to end (see ``TrackingListener.start``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), timeout)

    async def stop(self, timeout: float = 1.0) -> None:
        """Cancel both tasks (closing the connection) and wait up to ``timeout`` seconds for them."""
        # redis-py may swallow a cancellation that lands as a reply arrives: the flag ends the loops then.
        self._stopping = True
        self._check_wanted.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        self._sink.lost()

    async def _listen_loop(self) -> None:
        backoff = _Backoff()
        reporter = _Reporter()
        retry = AsyncRetry(NoBackoff(), 0)
        pool = self._client.connection_pool
        while not self._stopping:
            conn: Any = pool.connection_class(**connection_options(pool, retry))
            live = False
            try:
                await conn.connect()
                await conn.send_command("CLIENT", "ID")
                client_id = await conn.read_response()
                for command in setup_commands(self._prefix, int(client_id)):
                    await conn.send_command(*command)
                    await conn.read_response()
                self._sink.restored()
                live = True
                self._first_attempt.set()
                backoff.reset()
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._first_attempt.set()
                if live:
                    self._sink.lost()
                reporter.failed(exc, live)
                await asyncio.sleep(backoff.next())
            finally:
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)  # waiting for the close could outlast a cancelled stop

    async def _read(self, conn: Any) -> None:
        pinged = False
        while not self._stopping:
            started = time.perf_counter()
            reply = await conn.read_response(timeout=PING_INTERVAL)
            woken = time.perf_counter() - started > _BUFFERED
            if reply is None:  # nothing within the interval
                if pinged:
                    raise aredis.TimeoutError("the invalidation connection did not answer a PING")
                await conn.send_command("PING")
                pinged = True
                continue
            pinged = False
            batch = _Batch()
            batch.add(reply)
            batch.deliver(self._sink)
            if woken:
                # The task was woken for this report: let the next ones gather in the buffer, to be read
                # back to back (a read of a buffered reply returns without waking the loop again).
                await asyncio.sleep(GATHER_REPORTS)

    async def _check_loop(self) -> None:
        while not self._stopping:
            await self._check_wanted.wait()
            await asyncio.sleep(GATHER_CHECKS)  # one MGET for a burst of writes
            self._check_wanted.clear()
            for chunk, expected in self._check_batches():
                try:
                    found: list[bytes | None] = await self._client.mget(chunk)
                except Exception:  # cannot tell: the copies go
                    found = [None] * len(chunk)
                self._sink.checked(chunk, expected, found)
