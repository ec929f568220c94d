"""Presenting simulation results: a terminal table, CSV and JSON. No computing here."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qcache.config.sections import MemoryConfig
from qcache.sim.engine import BELADY, UNBOUNDED, SimResult

_CSV_FIELDS = (
    "trace",
    "policy",
    "capacity",
    "capacity_percent",
    "requests",
    "hits",
    "misses",
    "hit_ratio",
    "miss_ratio",
    "seconds",
    "requests_per_second",
    "credit",
)


#: ``MEMORY_CACHE_EVICTION_POLICY``'s default, named beside the registry's ``default`` alias so the two
#: are not confused.
CONFIG_DEFAULT_POLICY = MemoryConfig().eviction_policy

def _percent_of(capacity: int, unique_keys: int | None) -> str:
    """Capacity as a share of the footprint, for the table ('' when unknown)."""
    if not unique_keys:
        return ""
    return f"{100.0 * capacity / unique_keys:.3g}%"


def format_table(
    results: Sequence[SimResult],
    *,
    unique_keys: int | None = None,
    default_policy: str | None = None,
    credit: str = "",
) -> str:
    """One row per policy and size, hit ratio in percent to two decimals, credit line last."""
    header = ("policy", "size", "% keys", "hits", "hit ratio %", "requests/s")
    rows: list[tuple[str, ...]] = []
    for result in results:
        label = result.policy
        if default_policy and result.policy == default_policy:
            label += " (*)"
        rows.append(
            (
                label,
                f"{result.capacity:,}",
                _percent_of(result.capacity, unique_keys),
                f"{result.hits:,}",
                f"{result.hit_ratio:.2f}",
                f"{result.requests_per_second:,.0f}" if result.seconds > 0 else "-",
            )
        )
    widths = [max([len(header[i]), *(len(row[i]) for row in rows)]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join((first, *rest))

    lines: list[str] = []
    if results:
        footprint = f", {unique_keys:,} distinct keys" if unique_keys else ""
        lines.append(f"trace {results[0].trace}: {results[0].requests:,} requests{footprint}")
    lines.append(line(header))
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(line(row) for row in rows)
    lines.extend(default_against_the_rest(results, default_policy))
    if default_policy and any(result.policy == default_policy for result in results):
        lines.append(f"(*) {default_policy} is what the policy name 'default' selects (the recommended policy); "
                     f"MEMORY_CACHE_EVICTION_POLICY itself defaults to {CONFIG_DEFAULT_POLICY}")
    if credit:
        lines.append(credit)
    return "\n".join(lines)


def default_against_the_rest(results: Sequence[SimResult], default_policy: str | None) -> list[str]:
    """Per size: the default's hit ratio, its gap to LRU and to the best other online policy, and Belady's.

    Online policies are every simulated policy but the two bounds; the
    lines appear only when the default and at least one other ran.
    """
    if not default_policy:
        return []
    by_size: dict[int, dict[str, float]] = {}
    for result in results:
        by_size.setdefault(result.capacity, {})[result.policy] = result.hit_ratio
    lines: list[str] = []
    for capacity in sorted(by_size):
        ratios = by_size[capacity]
        default = ratios.get(default_policy)
        others = {name: value for name, value in ratios.items()
                  if name not in (default_policy, BELADY, UNBOUNDED)}
        if default is None or not others:
            continue
        best = max(others, key=others.__getitem__)
        parts = [f"size {capacity:,}: {default_policy} {default:.2f}%"]
        if "LRU" in others:
            parts.append(f"{default - others['LRU']:+.2f} vs LRU")
        parts.append(f"{default - others[best]:+.2f} vs the best other, {best} {others[best]:.2f}%")
        if BELADY in ratios:
            parts.append(f"Belady {ratios[BELADY]:.2f}%")
        lines.append(", ".join(parts))
    return lines


def _row(result: SimResult, unique_keys: int | None, credit: str) -> dict[str, Any]:
    """A result as a flat record."""
    row = result.as_dict()
    row["seconds"] = round(result.seconds, 6)
    row["capacity_percent"] = (
        round(100.0 * result.capacity / unique_keys, 4) if unique_keys else None
    )
    row["credit"] = credit
    return row


def write_csv(
    results: Sequence[SimResult], path: Path, *, unique_keys: int | None = None, credit: str = ""
) -> Path:
    """Write one CSV row per result (the attribution goes in a ``credit`` column)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for result in results:
            writer.writerow(_row(result, unique_keys, credit))
    return path


def write_json(
    results: Sequence[SimResult],
    path: Path,
    *,
    unique_keys: int | None = None,
    credit: str = "",
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the results with the trace's metadata and attribution."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "trace": results[0].trace if results else None,
        "requests": results[0].requests if results else 0,
        "unique_keys": unique_keys,
        "credit": credit,
        **(meta or {}),
        "results": [_row(result, unique_keys, credit) for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def report_stem(trace_name: str) -> str:
    """A file-name-safe stem for a trace's reports: ``sim_<trace>``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", trace_name).strip("._") or "trace"
    return f"sim_{cleaned[:80]}"


def write_reports(
    results: Sequence[SimResult],
    output_dir: Path,
    *,
    unique_keys: int | None = None,
    credit: str = "",
    meta: dict[str, Any] | None = None,
) -> list[Path]:
    """Write ``sim_<trace>.csv`` and ``.json`` under ``output_dir``; return their paths."""
    stem = report_stem(results[0].trace if results else "empty")
    return [
        write_csv(results, output_dir / f"{stem}.csv", unique_keys=unique_keys, credit=credit),
        write_json(
            results, output_dir / f"{stem}.json", unique_keys=unique_keys, credit=credit, meta=meta
        ),
    ]
