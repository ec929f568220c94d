"""Pure helpers shared by the sync and async tiers: TTL conversion, item checks, chunking."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias, TypeVar

T = TypeVar("T")

#: What ``set_many`` accepts: a mapping key -> data, or (key, data) / (key, data, ttl) tuples.
SetManyItems: TypeAlias = (
    Mapping[str, bytes] | Iterable[tuple[str, bytes] | tuple[str, bytes, float]]
)

#: One write of a batch, as :func:`normalize_items` makes it: key, data, PX milliseconds.
Entry: TypeAlias = tuple[str, bytes, int]


def ttl_to_px(ttl: object) -> int:
    """Seconds -> whole milliseconds for ``SET ... PX``, rounded up: never shorter than asked.

    Rounding happens after trimming float noise at the microsecond level,
    otherwise 0.29 s (290.00000000000006 ms in binary) would become 291 ms.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    return max(1, math.ceil(round(ttl * 1000.0, 6)))


def check_key(key: object) -> str:
    """Refuse a key that is not a str."""
    if not isinstance(key, str):
        raise TypeError(f"L2 keys must be str, got {type(key).__name__}")
    return key


def check_data(key: object, data: object) -> bytes:
    """Refuse anything but bytes: the tier stores what the codec produced, nothing else."""
    check_key(key)
    if not isinstance(data, bytes):
        raise TypeError(
            f"L2 values must be bytes (encoded by the codec), got {type(data).__name__}"
        )
    return data


_UNSET = object()


def normalize_items(items: SetManyItems, ttl: float | None) -> list[Entry]:
    """Turn any accepted ``set_many`` input into ``(key, data, px)`` triples, validating everything first.

    Validation is done for the whole batch before any I/O so that a bad item
    cannot leave half of a batch written.
    """
    default_px = None if ttl is None else ttl_to_px(ttl)
    pairs: Iterable[tuple[object, ...]] = items.items() if isinstance(items, Mapping) else items
    out: list[Entry] = []
    last_ttl: object = _UNSET  # a batch's items usually share one TTL (object): converted once
    last_px = 0
    for item in pairs:
        if type(item) is tuple and len(item) == 3 and type(item[0]) is str and type(item[1]) is bytes:
            # The facade's shape, (key, data, ttl): checked in one line, as below.
            if item[2] is not last_ttl:
                last_px, last_ttl = ttl_to_px(item[2]), item[2]
            out.append((item[0], item[1], last_px))
            continue
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            raise TypeError("set_many items must be (key, data) or (key, data, ttl) tuples")
        key, data = check_key(item[0]), item[1]
        if len(item) == 3:
            if item[2] is not last_ttl:
                last_px, last_ttl = ttl_to_px(item[2]), item[2]
            px = last_px
        elif default_px is None:
            raise ValueError(f"no ttl for item {key!r}: pass ttl= or (key, data, ttl) tuples")
        else:
            px = default_px
        out.append((key, check_data(key, data), px))
    return out


def key_list(keys: Iterable[str]) -> list[str]:
    """The keys of a batch read as a list; a lone string is refused, not split into characters."""
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of str, not a single string")
    return keys if isinstance(keys, list) else list(keys)


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """Consecutive slices of at most ``size`` items, in order."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def flatten(parts: Iterable[Sequence[T]]) -> list[T]:
    """Concatenate chunk results back into one list, preserving order."""
    out: list[T] = []
    for part in parts:
        out.extend(part)
    return out


def first_error(results: Iterable[object]) -> BaseException | None:
    """The first exception among gathered results (``return_exceptions=True`` style), if any."""
    for result in results:
        if isinstance(result, BaseException):
            return result
    return None


def check_batch_settings(batch_size: int, parallel_operations: int) -> None:
    """Reject chunk sizes and parallelism that cannot work."""
    for name, value in (("batch_size", batch_size), ("parallel_operations", parallel_operations)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
