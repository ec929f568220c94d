"""Trace files: the formats the simulator reads and the compressions it unwraps.

Every reader decodes the whole file once into a list of keys, using numpy for
the binary and numeric formats so that a million-request trace loads in well
under a second. Anything malformed is a :class:`TraceError` naming the file
and the problem; nothing is skipped silently except blank lines in text.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import lzma
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qcache.sim.credits import credit_for
from qcache.sim.errors import TraceError
from qcache.sim.sources import Key, Trace, as_keys

#: Formats accepted by ``--format`` (``auto`` guesses from the file name and content).
FORMATS = ("auto", "text", "csv", "cache2k", "arc", "oracle")

#: Environment variable naming a folder of shared traces (tests and benchmarks).
TRACES_DIR_ENV = "QCACHE_TRACES_DIR"

_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSION_SUFFIXES = (".xz", ".zst", ".zstd", ".gz")
#: How much of a trace :func:`looks_like_text` inspects.
_SNIFF_BYTES = 1 << 16

# libCacheSim's oracleGeneral record: timestamp, object id, size, next access (packed, little-endian).
_ORACLE_DTYPE = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("size", "<u4"), ("next", "<i8")])


def shared_traces_dir() -> Path | None:
    """Folder holding the shared reference traces, or None when it does not exist.

    ``QCACHE_TRACES_DIR`` wins; otherwise ``../shared/traces`` next to the
    repository root. A fresh clone has neither, and callers skip.
    """
    configured = os.environ.get(TRACES_DIR_ENV)
    candidate = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[2].parent / "shared" / "traces"
    )
    return candidate if candidate.is_dir() else None


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is xz, zstd or gzip (detected by magic)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read trace {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        if raw.startswith(_XZ_MAGIC):
            return lzma.decompress(raw)
        if raw.startswith(_GZIP_MAGIC):
            return gzip.decompress(raw)
        if raw.startswith(_ZSTD_MAGIC):
            return _zstd_decompress(raw)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise TraceError(f"trace {path.name!r} is not a valid compressed file: {exc}") from exc
    if path.name.endswith(_COMPRESSION_SUFFIXES):
        raise TraceError(f"trace {path.name!r} has a compression suffix but no matching header")
    return raw


def _zstd_decompress(raw: bytes) -> bytes:
    """Decompress zstd, which needs the optional ``zstandard`` package."""
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - zstandard ships with the test extras
        raise TraceError("reading .zst traces needs the 'zstandard' package (qcache[zstd])") from exc
    try:
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    except zstandard.ZstdError as exc:
        raise TraceError(f"corrupt zstd data: {exc}") from exc


def guess_format(path: Path, data: bytes | None = None) -> str:
    """The trace format implied by the file name and, where the name is not decisive, the content.

    ``.lis``, ``.csv``/``.tsv``, ``oracleGeneral`` and ``.txt`` names decide
    on their own. Any other name (``.trace`` included: users name text key
    lists that way too) means cache2k's binary int32 format only when ``data``
    (decompressed) is not text, see :func:`looks_like_text`; without ``data``
    such names are assumed to be text.
    """
    by_name = format_from_name(path)
    if by_name is not None:
        return by_name
    return "text" if data is None or looks_like_text(data) else "cache2k"


def format_from_name(path: Path) -> str | None:
    """The format the file name alone decides (compression suffix removed), or None."""
    name = path.name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(".lis"):
        return "arc"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if "oraclegeneral" in name:
        return "oracle"
    if name.endswith(".txt"):
        return "text"
    return None


def looks_like_text(data: bytes) -> bool:
    """Whether the first :data:`_SNIFF_BYTES` bytes are UTF-8 text without control characters.

    Valid UTF-8 alone is not enough: cache2k keys below 2**24 start with a
    zero byte, so a binary trace of small keys is valid (NUL-laden) UTF-8.
    Text traces never hold NUL or other C0 controls besides whitespace.
    """
    try:
        # An incremental decoder tolerates a character cut at the sniffing limit.
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:_SNIFF_BYTES], final=False)
    except UnicodeDecodeError:
        return False
    return not any(ord(char) < 32 and char not in "\t\n\r\f\v" for char in text)


def parse_text(data: bytes, name: str) -> list[Key]:
    """One key per line (UTF-8); surrounding whitespace and blank lines are ignored."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"trace {name!r} is not UTF-8 text (binary trace? pass --format): {exc}"
        ) from exc
    return [line for line in map(str.strip, text.splitlines()) if line]


def parse_csv(
    data: bytes, name: str, column: str | int = 0, header: bool = False, delimiter: str = ","
) -> list[Key]:
    """One key per row, from ``column`` (a 0-based index, or a header name which implies a header)."""
    if len(delimiter) != 1:
        raise TraceError(f"CSV delimiter must be one character, got {delimiter!r}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceError(f"CSV trace {name!r} is not UTF-8 text: {exc}") from exc
    try:
        return _csv_column(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                           name, column, header)
    except csv.Error as exc:
        raise TraceError(f"CSV trace {name!r} is malformed: {exc}") from exc


def _csv_column(rows: Any, name: str, column: str | int, header: bool) -> list[Key]:
    """The keys of one column of parsed CSV rows."""
    if isinstance(column, str) or header:
        try:
            head = next(rows)
        except StopIteration:
            raise TraceError(f"CSV trace {name!r} is empty") from None
        if isinstance(column, str):
            stripped = [cell.strip() for cell in head]
            if column not in stripped:
                raise TraceError(
                    f"CSV trace {name!r} has no column {column!r}; columns: {', '.join(stripped)}"
                )
            column = stripped.index(column)
    if column < 0:
        raise TraceError(f"CSV column index must be >= 0, got {column}")
    keys: list[Key] = []
    append = keys.append
    for row in rows:
        if not row:
            continue
        if column >= len(row):
            raise TraceError(
                f"CSV trace {name!r}, line {rows.line_num}: no column {column} in {row!r}"
            )
        append(row[column].strip())
    return keys


def parse_cache2k(data: bytes, name: str) -> list[Key]:
    """cache2k's binary traces: a stream of big-endian signed 32-bit keys."""
    if len(data) % 4:
        raise TraceError(
            f"cache2k trace {name!r} is {len(data)} bytes, not a whole number of int32 keys"
        )
    return as_keys(np.frombuffer(data, dtype=">i4"))


def parse_arc(data: bytes, name: str) -> list[Key]:
    """ARC ``.lis`` lines ``start count _ request``, each expanding to keys start..start+count-1."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TraceError(f"ARC trace {name!r} is not ASCII text: {exc}") from exc
    with warnings.catch_warnings():
        # numpy warns (instead of raising) when it stops at something that is not a number.
        warnings.simplefilter("error")
        try:
            numbers = np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning) as exc:
            raise TraceError(f"ARC trace {name!r} holds something other than integers") from exc
    # Counting newlines is cheap; only when it disagrees (blank lines, or a
    # line with the wrong number of fields) count the non-blank lines exactly.
    lines = text.count("\n") + (not text.endswith("\n"))
    if numbers.size != 4 * lines:
        lines = sum(1 for line in text.splitlines() if line.strip())
    if numbers.size != 4 * lines:
        raise TraceError(f"ARC trace {name!r}: every line must have exactly 4 integer fields")
    fields = numbers.reshape(-1, 4)
    starts, counts = fields[:, 0], fields[:, 1]
    if (counts < 1).any():
        row = int(np.argmax(counts < 1)) + 1
        raise TraceError(f"ARC trace {name!r}, line {row}: block count must be >= 1")
    if (counts == 1).all():
        return as_keys(starts)
    # Offsets 0..count-1 inside each request, built without a Python loop.
    ends = np.cumsum(counts)
    offsets = np.arange(int(ends[-1]), dtype=np.int64) - np.repeat(ends - counts, counts)
    return as_keys(np.repeat(starts, counts) + offsets)


def parse_oracle(data: bytes, name: str) -> list[Key]:
    """libCacheSim's oracleGeneral binary records (the object ids; sizes are ignored)."""
    if len(data) % _ORACLE_DTYPE.itemsize:
        raise TraceError(
            f"oracleGeneral trace {name!r} is {len(data)} bytes, "
            f"not a whole number of {_ORACLE_DTYPE.itemsize}-byte records"
        )
    return as_keys(np.frombuffer(data, dtype=_ORACLE_DTYPE)["obj_id"])


_PARSERS: dict[str, Callable[[bytes, str], list[Key]]] = {
    "text": parse_text,
    "cache2k": parse_cache2k,
    "arc": parse_arc,
    "oracle": parse_oracle,
}


@dataclass(frozen=True)
class TraceFile:
    """A trace on disk, decoded on :meth:`load`.

    ``trace_format`` is one of :data:`FORMATS`; ``column``, ``header`` and
    ``delimiter`` only matter for CSV.
    """

    path: Path
    trace_format: str = "auto"
    column: str | int = 0
    header: bool = False
    delimiter: str = ","

    def __post_init__(self) -> None:
        if self.trace_format not in FORMATS:
            raise TraceError(
                f"unknown trace format {self.trace_format!r}; known: {', '.join(FORMATS)}"
            )

    @property
    def name(self) -> str:
        """The file name, used as the trace's label."""
        return Path(self.path).name

    @property
    def resolved_format(self) -> str:
        """The format actually used (``auto`` resolved from the file name and content)."""
        if self.trace_format != "auto":
            return self.trace_format
        path = Path(self.path)
        return format_from_name(path) or guess_format(path, read_bytes(path))

    def load(self) -> Trace:
        """Read, decompress and decode the file; raise :class:`TraceError` if unusable."""
        path = Path(self.path)
        if not path.is_file():
            raise TraceError(f"trace file {str(path)!r} does not exist or is not a file")
        data = read_bytes(path)
        fmt = self.trace_format if self.trace_format != "auto" else guess_format(path, data)
        if fmt == "csv":
            keys = parse_csv(data, self.name, self.column, self.header, self.delimiter)
        else:
            keys = _PARSERS[fmt](data, self.name)
        if not keys:
            raise TraceError(f"trace {self.name!r} holds no requests")
        return Trace(name=self.name, keys=keys, credit=credit_for(self.name, fmt))

    def __iter__(self) -> Iterator[Key]:
        return iter(self.load().keys)
