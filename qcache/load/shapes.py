"""The load shapes as plain schedules: seconds since the start in, the stage to run out.

Locust's ``LoadTestShape`` classes in ``loadtests/shapes.py`` only call
:meth:`Schedule.tick`; keeping the schedule here, free of Locust, lets the
tests check every shape without starting a load. A stage names the user
count, the spawn rate and, for the comparison shape, the user classes that
run in it; ``None`` ends the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from qcache.errors import ConfigError

#: The names ``--shape`` accepts, each a schedule below.
SHAPES = ("steady", "ramp", "spike", "soak", "chaos", "compare")
#: The longest soak a run accepts: a soak is bounded by design.
MAX_SOAK_S = 4 * 3600.0
#: The shortest compare phase: its first second stops the previous class.
MIN_PHASE_S = 2.0


@dataclass(frozen=True)
class Stage:
    """What should be running now."""

    users: int
    spawn_rate: float
    label: str
    user_classes: tuple[str, ...] | None = None  # None: every selected class


class Schedule(Protocol):
    """A load shape: the stage at ``t`` seconds, or ``None`` when the run is over."""

    def tick(self, t: float) -> Stage | None: ...

    @property
    def duration_s(self) -> float: ...


def _positive(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Steady:
    """``users`` users for ``duration_s`` seconds (``math.inf``: until stopped, as from the web UI)."""

    users: int
    spawn_rate: float
    duration_s: float

    def __post_init__(self) -> None:
        _positive("users", self.users)
        _positive("spawn rate", self.spawn_rate)
        if self.duration_s != math.inf:
            _positive("duration", self.duration_s)

    def tick(self, t: float) -> Stage | None:
        return Stage(self.users, self.spawn_rate, "steady") if t < self.duration_s else None


@dataclass(frozen=True)
class Ramp:
    """Load stepped up: ``start_users``, then ``step_users`` more every ``step_s`` seconds, ``steps`` steps.

    Each step holds long enough for its throughput and p99 to be read; the
    knee (:mod:`qcache.load.knee`) is the last step that stayed healthy.
    """

    start_users: int
    step_users: int
    steps: int
    step_s: float

    def __post_init__(self) -> None:
        for name, value in (("start users", self.start_users), ("step users", self.step_users),
                            ("steps", self.steps), ("step seconds", self.step_s)):
            _positive(name, value)

    @property
    def duration_s(self) -> float:
        return self.steps * self.step_s

    def users_at_step(self, step: int) -> int:
        return self.start_users + step * self.step_users

    def step_at(self, t: float) -> int | None:
        """The 0-based step running at ``t``, or None after the last one."""
        step = int(t // self.step_s)
        return step if 0 <= step < self.steps else None

    def tick(self, t: float) -> Stage | None:
        step = self.step_at(t)
        if step is None:
            return None
        users = self.users_at_step(step)
        # Spawn a whole step within its first second, so the step is measured at full load.
        return Stage(users, float(max(users, 1)), f"ramp step {step + 1}/{self.steps}")


@dataclass(frozen=True)
class Spike:
    """A base load, a burst of ``spike_users`` for ``spike_s`` seconds in the middle, then the base again."""

    base_users: int
    spike_users: int
    base_s: float
    spike_s: float

    def __post_init__(self) -> None:
        for name, value in (("base users", self.base_users), ("spike users", self.spike_users),
                            ("base seconds", self.base_s), ("spike seconds", self.spike_s)):
            _positive(name, value)
        if self.spike_users <= self.base_users:
            raise ConfigError(
                f"a spike needs more users than the base: {self.spike_users} <= {self.base_users}"
            )

    @property
    def duration_s(self) -> float:
        return 2 * self.base_s + self.spike_s

    def tick(self, t: float) -> Stage | None:
        if t < self.base_s:
            return Stage(self.base_users, float(self.base_users), "before spike")
        if t < self.base_s + self.spike_s:
            return Stage(self.spike_users, float(self.spike_users), "spike")
        if t < self.duration_s:
            return Stage(self.base_users, float(self.spike_users), "after spike")
        return None


@dataclass(frozen=True)
class Soak:
    """A steady load held for a long, bounded time (at most :data:`MAX_SOAK_S`)."""

    users: int
    spawn_rate: float
    duration_s: float

    def __post_init__(self) -> None:
        _positive("users", self.users)
        _positive("spawn rate", self.spawn_rate)
        _positive("duration", self.duration_s)
        if self.duration_s > MAX_SOAK_S:
            raise ConfigError(f"a soak is bounded to {MAX_SOAK_S:.0f} s, got {self.duration_s:.0f} s")

    def tick(self, t: float) -> Stage | None:
        return Stage(self.users, self.spawn_rate, "soak") if t < self.duration_s else None


@dataclass(frozen=True)
class Compare:
    """Two user classes in alternating phases, so each is measured on the same machine state.

    Running both at once in one gevent process would not compare them: the
    scheduler hands each greenlet one turn per cycle, so every class would
    complete about as many requests as the others. Alternating phases, as the
    benchmarks alternate rounds, gives each class the whole process in turn.

    Locust does not replace running users when only the class list changes,
    so every phase after the first opens with a stage of zero users (one
    tick, about a second) that stops the previous class.
    """

    first: str
    second: str
    users: int
    phase_s: float
    rounds: int

    def __post_init__(self) -> None:
        if not self.first or not self.second or self.first == self.second:
            raise ConfigError(f"compare needs two different user classes, got {self.first!r} and {self.second!r}")
        _positive("users", self.users)
        _positive("rounds", self.rounds)
        if not self.phase_s >= MIN_PHASE_S:
            raise ConfigError(f"a compare phase lasts at least {MIN_PHASE_S:g} s (one second switches classes), "
                              f"got {self.phase_s!r}")

    @property
    def duration_s(self) -> float:
        return 2 * self.rounds * self.phase_s

    def tick(self, t: float) -> Stage | None:
        if t >= self.duration_s:
            return None
        phase = int(t // self.phase_s)
        if phase > 0 and t - phase * self.phase_s < 1.0:
            return Stage(0, float(self.users), "switching classes")
        name = self.first if phase % 2 == 0 else self.second
        return Stage(self.users, float(self.users), f"{name} (round {phase // 2 + 1})", (name,))


@dataclass(frozen=True)
class Chaos:
    """A steady load during which the run's own Redis fails at ``fault_at_s``.

    The fault itself (a SIGKILL and restart after ``down_s``, or
    ``CLIENT PAUSE`` for ``down_s``) is carried out by the harness; this
    schedule only keeps the load on for ``fault_at_s + down_s + after_s``.
    """

    users: int
    spawn_rate: float
    fault_at_s: float
    down_s: float
    after_s: float

    def __post_init__(self) -> None:
        _positive("users", self.users)
        _positive("spawn rate", self.spawn_rate)
        _positive("fault time", self.fault_at_s)
        _positive("down time", self.down_s)
        _positive("time after the fault", self.after_s)

    @property
    def duration_s(self) -> float:
        return self.fault_at_s + self.down_s + self.after_s

    def tick(self, t: float) -> Stage | None:
        if t >= self.duration_s:
            return None
        label = "before fault" if t < self.fault_at_s else "fault" if t < self.fault_at_s + self.down_s else "recovery"
        return Stage(self.users, self.spawn_rate, label)
