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
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qcache.sim.credits import credit_for
from qcache.sim.errors import TraceError
from qcache.sim.sources import Key, Trace, as_keys

#: Fixed-width binary keys: a stream of signed integers, by width and byte order.
BINARY_FORMATS = {"int32-be": ">i4", "int32-le": "<i4", "int64-be": ">i8", "int64-le": "<i8"}

#: Formats accepted by ``--format`` (``auto`` guesses from the file name and content).
#: ``cache2k`` is ``int32-be`` under the name of the project whose traces use it.
FORMATS = ("auto", "text", "csv", "twitter", "arc", "oracle", *BINARY_FORMATS, "cache2k")

#: Twitter's cache-trace CSV (twitter/cache-trace): the columns and the operations a row may hold.
TWITTER_COLUMNS = ("timestamp", "key", "key_size", "value_size", "client_id", "operation", "ttl")
TWITTER_OPERATIONS = frozenset(
    ("get", "gets", "set", "add", "replace", "cas", "append", "prepend", "delete", "incr", "decr")
)

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
    """The trace format implied by the file name and the content; refuse when in doubt.

    ``.lis``, ``oracleGeneral`` and ``.txt`` names decide on their own;
    ``.csv``/``.tsv`` mean CSV unless the rows are Twitter's cache-trace
    records. Any other name (``.trace`` included) is decided by the content
    (decompressed): text is one key per line, unless every line is four
    integers (an ARC ``.lis`` trace) or Twitter records; a line that splits
    into columns is refused (which column holds the key is the user's
    call); binary is fixed-width integer keys when exactly one width and
    byte order fits, see :func:`guess_binary`. Without ``data`` such names
    are assumed to be text.
    """
    by_name = format_from_name(path)
    if by_name == "csv" and data is not None and _looks_like_twitter(data):
        return "twitter"
    if by_name is not None:
        return by_name
    if data is None:
        return "text"
    if not looks_like_text(data):
        return guess_binary(data, path.name)
    if _looks_like_twitter(data):
        return "twitter"
    lines = _sample_lines(data)
    if lines and all(_ARC_LINE.fullmatch(line) for line in lines):
        return "arc"
    for delimiter in (",", "\t", ";"):
        if lines and all(delimiter in line for line in lines):
            raise TraceError(
                f"trace {path.name!r} looks like a table (every line holds {delimiter!r}): pass "
                f"--format csv with --column (and --delimiter); formats: {', '.join(FORMATS)}"
            )
    return "text"


_ARC_LINE = re.compile(r"-?\d+\s+\d+\s+-?\d+\s+-?\d+")


def _sample_lines(data: bytes, limit: int = 200) -> list[str]:
    """The first non-blank lines of a text trace, stripped (a possibly cut last line dropped)."""
    text = data[:_SNIFF_BYTES].decode("utf-8", "replace")
    lines = text.splitlines()
    if len(data) > _SNIFF_BYTES and lines:
        lines.pop()
    return [line.strip() for line in lines if line.strip()][:limit]


def _looks_like_twitter(data: bytes) -> bool:
    """Whether the first lines are Twitter cache-trace records (7 fields, an operation in the 6th)."""
    if not looks_like_text(data):
        return False
    lines = _sample_lines(data)
    if not lines:
        return False
    for line in lines:
        fields = line.split(",")
        if len(fields) != len(TWITTER_COLUMNS) or fields[5].strip() not in TWITTER_OPERATIONS:
            return False
    return True


def guess_binary(data: bytes, name: str) -> str:
    """The one fixed-width integer format that fits binary ``data``, or a :class:`TraceError`.

    Real key ids rarely fill their field: a 64-bit trace's upper halves are
    all zero (or all sign bits), and a 32-bit trace's top bytes mostly are.
    A 64-bit trace is taken as such only when every record's upper half is
    empty in exactly one byte order; a 32-bit one when nine keys in ten have
    an empty top byte in one order and fewer than half in the other.
    Anything else (hashed keys filling their width, a record layout we do
    not know) is refused with the formats to choose from: reading a 64-bit
    trace as 32-bit, or the wrong byte order, would give plausible-looking
    but wrong hit ratios.
    """
    fitting: list[str] = []
    if data and len(data) % 8 == 0:
        for fmt in ("int64-be", "int64-le"):
            upper = np.frombuffer(data, dtype=BINARY_FORMATS[fmt]) >> 32
            if bool(((upper == 0) | (upper == -1)).all()):
                fitting.append(fmt)
        if len(fitting) == 1:
            return fitting[0]
    if not fitting and data and len(data) % 4 == 0:
        share = {
            fmt: float(np.isin(np.frombuffer(data, dtype=BINARY_FORMATS[fmt]) >> 24, (0, -1)).mean())
            for fmt in ("int32-be", "int32-le")
        }
        for fmt, other in (("int32-be", "int32-le"), ("int32-le", "int32-be")):
            if share[fmt] >= 0.9 and share[other] < 0.5:
                return fmt
    raise TraceError(
        f"cannot tell the layout of binary trace {name!r} ({len(data)} bytes): pass --format "
        f"({', '.join(name for name in FORMATS if name != 'auto')})"
    )


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
    data: bytes,
    name: str,
    column: str | int | None = None,
    header: bool = False,
    delimiter: str = ",",
) -> list[Key]:
    """One key per row, from ``column`` (a 0-based index, or a header name which implies a header).

    With no column named, a table of more than one column is refused:
    which column holds the key is the user's call (column 0 of libCacheSim's
    sample CSV is a version number, the same on every row).
    """
    if len(delimiter) != 1:
        raise TraceError(f"CSV delimiter must be one character, got {delimiter!r}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceError(f"CSV trace {name!r} is not UTF-8 text: {exc}") from exc
    try:
        if column is None:
            first = next((row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
                          if row), [])
            if len(first) > 1:
                raise TraceError(
                    f"CSV trace {name!r} has {len(first)} columns ({delimiter.join(first)[:80]!r}...): "
                    "pass --column (a 0-based index or a header name)"
                )
            column = 0
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


@dataclass(frozen=True)
class CsvLayout:
    """Where the keys are in a CSV trace: a 0-based column (or header name), a header row, a delimiter."""

    column: str | int | None = None
    header: bool = False
    delimiter: str = ","


def libcachesim_csv(spec: str) -> CsvLayout:
    """libCacheSim's CSV reader parameters (``obj-id-col=5,has-header=true,delimiter=,``) as a layout.

    ``obj-id-col`` is 1-based there; ``time-col``, ``obj-size-col`` and
    ``obj-id-is-num`` are accepted and ignored (every object counts as size
    1 and a key is a key, numeric or not). ``delimiter`` may be ``\\t`` or
    ``tab``; the value after the last ``delimiter=`` may itself be a comma.
    """
    fields: dict[str, str] = {}
    rest = spec.strip()
    if "delimiter=" in rest:
        rest, _, delimiter = rest.rpartition("delimiter=")
        fields["delimiter"] = delimiter
        rest = rest.rstrip(", ")
    for part in filter(None, (item.strip() for item in rest.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise TraceError(f"invalid libCacheSim parameter {part!r}; expected name=value")
        fields[name.strip().lower().replace("_", "-")] = value.strip()
    unknown = set(fields) - {"obj-id-col", "has-header", "delimiter", "time-col", "obj-size-col",
                             "obj-id-is-num"}
    if unknown:
        raise TraceError(f"unknown libCacheSim CSV parameter(s): {', '.join(sorted(unknown))}")
    if "obj-id-col" not in fields:
        raise TraceError("libCacheSim CSV parameters need obj-id-col (1-based)")
    try:
        column = int(fields["obj-id-col"]) - 1
    except ValueError:
        raise TraceError(f"obj-id-col must be an integer, got {fields['obj-id-col']!r}") from None
    if column < 0:
        raise TraceError("obj-id-col is 1-based: it must be >= 1")
    header_text = fields.get("has-header", "false").lower()
    if header_text not in ("true", "false", "1", "0", "yes", "no"):
        raise TraceError(f"has-header must be true or false, got {fields['has-header']!r}")
    delimiter = fields.get("delimiter", ",")
    delimiter = {"\\t": "\t", "tab": "\t", "": ","}.get(delimiter, delimiter)
    return CsvLayout(column, header_text in ("true", "1", "yes"), delimiter)


def parse_binary(data: bytes, name: str, fmt: str) -> list[Key]:
    """Fixed-width signed integer keys in the byte order ``fmt`` names (see :data:`BINARY_FORMATS`).

    A trace read 32 bits at a time whose every other word is empty is
    64-bit: that is an error naming the right format, not a result.
    """
    dtype = np.dtype(BINARY_FORMATS[fmt])
    if len(data) % dtype.itemsize:
        raise TraceError(
            f"{fmt} trace {name!r} is {len(data)} bytes, not a whole number of "
            f"{8 * dtype.itemsize}-bit keys"
        )
    if dtype.itemsize == 4 and len(data) >= 16 and len(data) % 8 == 0:
        for wide in ("int64-be", "int64-le"):
            upper = np.frombuffer(data, dtype=BINARY_FORMATS[wide]) >> 32
            lower = np.frombuffer(data, dtype=BINARY_FORMATS[wide]) & 0xFFFFFFFF
            if bool(((upper == 0) | (upper == -1)).all()) and bool((lower != 0).any()):
                raise TraceError(
                    f"trace {name!r} holds 64-bit keys (every other 32-bit word is empty): "
                    f"pass --format {wide}"
                )
    return as_keys(np.frombuffer(data, dtype=dtype))


def parse_cache2k(data: bytes, name: str) -> list[Key]:
    """cache2k's binary traces: a stream of big-endian signed 32-bit keys."""
    return parse_binary(data, name, "int32-be")


def parse_twitter(data: bytes, name: str) -> list[Key]:
    """Twitter's cache-trace CSV: the anonymized key of every row (each operation is a request).

    Rows are ``timestamp,key,key_size,value_size,client_id,operation,ttl``;
    a row with another field count or an unknown operation is an error.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"Twitter trace {name!r} is not UTF-8 text: {exc}") from exc
    keys: list[Key] = []
    append = keys.append
    width = len(TWITTER_COLUMNS)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != width or fields[5].strip() not in TWITTER_OPERATIONS:
            raise TraceError(
                f"Twitter trace {name!r}, line {number}: expected "
                f"{','.join(TWITTER_COLUMNS)} with a known operation, got {line[:120]!r}"
            )
        append(fields[1])
    return keys


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
    "twitter": parse_twitter,
    "cache2k": parse_cache2k,
    **{fmt: lambda data, name, fmt=fmt: parse_binary(data, name, fmt) for fmt in BINARY_FORMATS},  # type: ignore[misc]
    "arc": parse_arc,
    "oracle": parse_oracle,
}


@dataclass(frozen=True)
class TraceFile:
    """A trace on disk, decoded on :meth:`load`.

    ``trace_format`` is one of :data:`FORMATS`; ``column``, ``header`` and
    ``delimiter`` only matter for CSV (no column: a one-column file, else
    refused; see :func:`libcachesim_csv` for libCacheSim's parameters).
    """

    path: Path
    trace_format: str = "auto"
    column: str | int | None = None
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
        return guess_format(path, read_bytes(path))

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
