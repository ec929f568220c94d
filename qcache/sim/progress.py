"""A small text progress bar for long simulations (no dependency)."""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    """Callable progress sink: ``bar(n)`` records ``n`` more requests replayed.

    Redraws at most every ``interval`` seconds, on one line (carriage
    return), so it costs nothing measurable against the replay itself.
    """

    def __init__(
        self, total: int, stream: TextIO, *, label: str = "simulating", interval: float = 0.2
    ) -> None:
        self._total = max(1, total)
        self._stream = stream
        self._label = label
        self._interval = interval
        self._done = 0
        self._started = time.monotonic()
        self._last_draw = 0.0

    def __call__(self, advance: int) -> None:
        self._done += advance
        now = time.monotonic()
        if now - self._last_draw >= self._interval or self._done >= self._total:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        """Render the bar with the rate and the remaining time."""
        fraction = min(1.0, self._done / self._total)
        filled = int(fraction * _WIDTH)
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        remaining = (self._total - self._done) / rate if rate > 0 else 0.0
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"{100 * fraction:5.1f}%  {rate / 1e6:5.2f}M req/s  ~{remaining:4.0f}s left "
        )
        self._stream.flush()

    def close(self) -> None:
        """Finish the line (drawing the final state unless it is already shown)."""
        if self._last_draw == 0.0 or self._done < self._total:
            self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()
