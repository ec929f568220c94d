"""The knee of a ramp: the highest throughput at which the cache stayed healthy.

Each ramp step is read from the per-second timeline, leaving out its first
second (users are still being spawned and the cache warms up). A step is
healthy when its p99 stays below the latency limit (10 ms, the seed's healthy
bound) and its errors below 1%; the knee is the healthy step with the most
requests per second, or ``None`` when no step was healthy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qcache.load.histogram import TIMELINE_DIGITS, SecondStats, Summary, new_histogram
from qcache.load.shapes import Ramp

HEALTHY_P99_US = 10_000.0
MAX_ERROR_RATIO = 0.01


@dataclass(frozen=True)
class StepResult:
    """One ramp step as measured."""

    step: int
    users: int
    seconds: int
    rps: float
    p99_us: float
    error_ratio: float

    def healthy(self, p99_limit_us: float = HEALTHY_P99_US, max_error_ratio: float = MAX_ERROR_RATIO) -> bool:
        return self.seconds > 0 and self.p99_us < p99_limit_us and self.error_ratio < max_error_ratio


def ramp_steps(ramp: Ramp, timeline: Sequence[tuple[float, SecondStats]]) -> list[StepResult]:
    """Per-step throughput, p99 and error ratio; ``timeline`` holds (seconds since start, stats)."""
    results = []
    for step in range(ramp.steps):
        begin = step * ramp.step_s + 1.0  # skip the spawn second
        end = (step + 1) * ramp.step_s
        merged = new_histogram(TIMELINE_DIGITS)
        count = errors = seconds = 0
        for t, stats in timeline:
            if begin <= t and t + 1 <= end:  # whole seconds inside the step only
                merged.add(stats.histogram)
                count += stats.count
                errors += stats.errors
                seconds += 1
        summary = Summary.of(merged)
        results.append(
            StepResult(
                step=step,
                users=ramp.users_at_step(step),
                seconds=seconds,
                rps=count / seconds if seconds else 0.0,
                p99_us=summary.p99_us,
                error_ratio=errors / count if count else (1.0 if seconds else math.nan),
            )
        )
    return results


def knee(
    steps: Sequence[StepResult],
    p99_limit_us: float = HEALTHY_P99_US,
    max_error_ratio: float = MAX_ERROR_RATIO,
) -> StepResult | None:
    """The healthy step with the highest throughput, or None when none was healthy."""
    healthy = [s for s in steps if s.healthy(p99_limit_us, max_error_ratio)]
    return max(healthy, key=lambda s: s.rps) if healthy else None
