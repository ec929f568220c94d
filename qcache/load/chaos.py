"""The chaos profile: fail the run's own Redis on schedule, then read what callers saw.

Only a server that the run itself started (a :class:`RedisServerProcess`) is
ever failed, by its own handle: SIGKILL and a restart on the same port after
``down_s`` (``kill``), or ``CLIENT PAUSE`` for ``down_s`` (``pause``). A
server reached through ``REDIS_URL`` is refused before the load starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import redis

from qcache.errors import ConfigError
from qcache.load.histogram import TIMELINE_DIGITS, SecondStats, Summary, new_histogram
from qcache.testing import RedisEndpoint, RedisServerProcess

ChaosMode = Literal["kill", "pause"]
CHAOS_MODES: tuple[ChaosMode, ...] = ("kill", "pause")


def owned_server(endpoint: RedisEndpoint) -> RedisServerProcess:
    """The server process behind ``endpoint``, or a clear refusal when the run did not start it."""
    if endpoint.process is None:
        how = "REDIS_URL" if endpoint.method == "url" else f"a {endpoint.method} server"
        raise ConfigError(
            f"the chaos profile fails only a Redis this run started itself; this run uses {how} "
            f"({endpoint.redacted_url}), which it must never kill or pause. Unset REDIS_URL to let "
            "the run start its own server."
        )
    return endpoint.process


@dataclass(frozen=True)
class FaultTimes:
    """When the fault began and when Redis was back (wall-clock seconds)."""

    mode: ChaosMode
    fault_at: float
    restored_at: float


def inject_fault(
    endpoint: RedisEndpoint,
    mode: ChaosMode,
    down_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> FaultTimes:
    """Fail the run's own Redis for ``down_s`` seconds and bring it back on the same port."""
    server = owned_server(endpoint)
    if mode not in CHAOS_MODES:
        raise ConfigError(f"unknown chaos mode {mode!r}; choose {' or '.join(CHAOS_MODES)}")
    if not down_s > 0:
        raise ConfigError(f"the fault must last a positive time, got {down_s!r}")
    if mode == "kill":
        fault_at = clock()
        server.kill()
        sleep(down_s)
        server.start()
        return FaultTimes(mode, fault_at, clock())
    client = redis.Redis(**endpoint.client_kwargs(), socket_timeout=5.0)
    try:
        fault_at = clock()
        client.client_pause(max(1, round(down_s * 1000)), all=True)
    finally:
        client.close()
    sleep(down_s)
    return FaultTimes(mode, fault_at, clock())


@dataclass(frozen=True)
class ChaosReport:
    """What the callers saw around the fault."""

    mode: ChaosMode
    fault_at_s: float  # seconds since the run started
    restored_at_s: float
    caller_exceptions: int
    error_ratio: float  # errors over requests from the fault until recovery
    p99_during_fault_us: float
    max_during_fault_us: float  # the longest call: a stall shows here before it moves a p99
    l2_recovery_s: float | None  # from the restore until the first L2 hit; None if none came


def chaos_report(
    times: FaultTimes,
    started_at: float,
    timeline: Sequence[tuple[int, SecondStats]],
    caller_exceptions: int,
) -> ChaosReport:
    """Read the fault window off the per-second timeline (epoch seconds)."""
    fault_second = int(times.fault_at)
    restored = times.restored_at
    first_l2_hit = next(
        (second for second, stats in timeline if second >= int(restored) and stats.l2_hits > 0), None
    )
    window_end = first_l2_hit if first_l2_hit is not None else int(restored)
    merged = new_histogram(TIMELINE_DIGITS)
    count = errors = 0
    for second, stats in timeline:
        if fault_second <= second <= window_end:
            merged.add(stats.histogram)
            count += stats.count
            errors += stats.errors
    return ChaosReport(
        mode=times.mode,
        fault_at_s=times.fault_at - started_at,
        restored_at_s=restored - started_at,
        caller_exceptions=caller_exceptions,
        error_ratio=errors / count if count else math.nan,
        p99_during_fault_us=Summary.of(merged).p99_us,
        max_during_fault_us=Summary.of(merged).max_us,
        # The timeline has one-second resolution: a hit in the restore's own second counts as 0 s.
        l2_recovery_s=max(0.0, first_l2_hit - restored) if first_l2_hit is not None else None,
    )
