"""Hill climbing on the hit rate, to size W-TinyLFU's admission window at run time."""

from __future__ import annotations


class HillClimber:
    """Caffeine's simple hill climber, with fractional steps kept instead of truncated.

    Every ``sample_factor x capacity`` requests (counted only once the cache
    is full, so the warm-up's rising hit rate does not steer it) it compares
    the sample's hit rate with the previous one: if it got worse, it turns
    around; either way it steps the window by ``step`` entries, where the
    step decays by ``step_decay`` each sample so the window settles. A hit
    rate jump of ``restart_threshold`` or more means the workload changed:
    the step goes back to its initial size so the window can move far again.

    Caffeine rounds each step to whole entries, which freezes small caches
    once the decayed step drops below one entry; this climber returns the
    exact fractional step and the policy accumulates it.
    """

    __slots__ = (
        "_increase",
        "_initial_step",
        "_previous",
        "_restart_threshold",
        "_step",
        "_step_decay",
        "_tolerance",
        "sample_size",
    )

    def __init__(
        self,
        capacity: int,
        *,
        sample_factor: float = 10.0,
        step_fraction: float = 0.0625,
        step_decay: float = 0.98,
        restart_threshold: float = 0.05,
        tolerance: float = 0.0,
        start_increasing: bool = False,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        if sample_factor <= 0 or step_fraction <= 0:
            raise ValueError("sample_factor and step_fraction must be positive")
        if not 0.0 < step_decay <= 1.0:
            raise ValueError(f"step_decay must be in (0, 1], got {step_decay!r}")
        #: Requests per sample.
        self.sample_size = max(1, int(sample_factor * capacity))
        self._initial_step = step_fraction * capacity
        self._step = self._initial_step
        self._step_decay = step_decay
        self._restart_threshold = restart_threshold
        self._tolerance = tolerance
        self._previous = 0.0
        # The first sample always improves on 0, so the first step goes this way.
        self._increase = start_increasing

    def adjust(self, hit_rate: float) -> float:
        """The window change (entries, signed) after a sample with ``hit_rate`` in [0, 1]."""
        if hit_rate < self._previous + self._tolerance:
            self._increase = not self._increase
        if abs(hit_rate - self._previous) >= self._restart_threshold:
            self._step = self._initial_step
        amount = self._step if self._increase else -self._step
        self._previous = hit_rate
        self._step *= self._step_decay
        return amount
