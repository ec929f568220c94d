"""Cache sizes as users write them: entry counts or percentages of a trace's footprint."""

from __future__ import annotations

import math
from collections.abc import Iterable

from qcache.sim.errors import SimulationError


def parse_size(spec: int | str, unique_keys: int) -> int:
    """One size: an entry count (``"1000"``) or a percentage of the distinct keys (``"1%"``).

    Percentages round half up (``round(fraction x unique keys)`` as in the
    reference tables). A size that is or rounds to zero is an error, not a
    silently empty cache.
    """
    if isinstance(spec, bool):
        raise SimulationError(f"invalid cache size {spec!r}")
    if isinstance(spec, int):
        size = spec
        text = str(spec)
    else:
        text = spec.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                raise SimulationError(f"invalid cache size {spec!r}: not a percentage") from None
            if not math.isfinite(percent) or percent <= 0:
                raise SimulationError(f"cache size {spec!r} must be a positive percentage")
            size = math.floor(percent / 100.0 * unique_keys + 0.5)
            if size == 0:
                raise SimulationError(
                    f"cache size {spec!r} of {unique_keys} distinct keys rounds to zero entries"
                )
            return size
        try:
            size = int(text.replace("_", ""))
        except ValueError:
            raise SimulationError(
                f"invalid cache size {spec!r}: expected an entry count or a percentage like 1%"
            ) from None
    if size <= 0:
        raise SimulationError(f"cache size must be positive, got {text!r}")
    return size


def resolve_sizes(specs: Iterable[int | str] | str, unique_keys: int) -> list[int]:
    """Distinct entry counts, ascending, from a list or a comma-separated string."""
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    sizes = sorted({parse_size(item, unique_keys) for item in items if str(item).strip()})
    if not sizes:
        raise SimulationError("no cache size given")
    return sizes


def resolve_default_sizes(specs: str, unique_keys: int) -> tuple[list[int], list[str]]:
    """Like :func:`resolve_sizes`, but percentages that round to zero are skipped, not errors.

    Meant for sizes the user did not choose (the defaults): a small trace of
    a few hundred keys has no 0.1% cache, and that should cost one size of
    the table, not the whole run. Returns the sizes and one note per skipped
    spec; still an error when nothing is left.
    """
    sizes: set[int] = set()
    notes: list[str] = []
    for item in filter(None, (part.strip() for part in specs.split(","))):
        try:
            sizes.add(parse_size(item, unique_keys))
        except SimulationError as exc:
            if "rounds to zero" not in str(exc):
                raise
            notes.append(f"{exc}; skipped")
    if not sizes:
        raise SimulationError(
            f"none of the default sizes {specs} fits a trace of {unique_keys} distinct keys; "
            "pass --sizes"
        )
    return sorted(sizes), notes


def curve_sizes(smallest: int, largest: int, points: int) -> list[int]:
    """About ``points`` sizes spaced geometrically from ``smallest`` to ``largest`` (a miss-ratio curve)."""
    if smallest <= 0 or largest < smallest:
        raise SimulationError(f"invalid curve range {smallest}..{largest}")
    if points < 2 or smallest == largest:
        return [smallest] if smallest == largest else [smallest, largest]
    ratio = (largest / smallest) ** (1.0 / (points - 1))
    sizes = {max(1, round(smallest * ratio**i)) for i in range(points)}
    sizes.update((smallest, largest))
    return sorted(sizes)
