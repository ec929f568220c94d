"""Trace readers: every format, every compression, and clear errors for bad files."""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import numpy as np
import pytest
import zstandard

from qcache.sim import TraceError, TraceFile, materialize, shared_traces_dir
from qcache.sim.credits import ARC_CITATION, CACHE2K_CREDIT
from qcache.sim.readers import TRACES_DIR_ENV, CsvLayout, guess_format, libcachesim_csv

COMPRESSORS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_text_one_key_per_line_in_any_compression(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"keys.txt{suffix}"
    path.write_bytes(COMPRESSORS[suffix](b"a\nb\r\n\n  a  \nc\n"))
    trace = TraceFile(path).load()
    assert list(trace.keys) == ["a", "b", "a", "c"]
    assert trace.unique_keys == 3
    assert trace.name == path.name


def test_compression_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    path.write_bytes(gzip.compress(b"x\ny\n"))
    assert list(TraceFile(path).load().keys) == ["x", "y"]


def test_a_compression_suffix_without_the_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt.xz"
    path.write_bytes(b"plain\n")
    with pytest.raises(TraceError, match="compression suffix"):
        TraceFile(path).load()


def test_corrupt_compressed_data_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt.gz"
    path.write_bytes(gzip.compress(b"a\nb\n")[:12])
    with pytest.raises(TraceError):
        TraceFile(path).load()


def test_csv_by_index_and_by_header_name(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("time,key,size\n1,k1,10\n2,k2,20\n3,k1,10\n")
    by_name = TraceFile(path, column="key").load()
    assert list(by_name.keys) == ["k1", "k2", "k1"]
    by_index = TraceFile(path, column=1, header=True).load()
    assert list(by_index.keys) == ["k1", "k2", "k1"]
    headerless = TraceFile(path, column=1).load()
    assert list(headerless.keys) == ["key", "k1", "k2", "k1"]


def test_csv_with_another_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "requests.tsv"
    path.write_text("a\t1\nb\t2\n")
    assert list(TraceFile(path, column=1, delimiter="\t").load().keys) == ["1", "2"]


def test_csv_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("time,key\n1,k1\n2\n")
    with pytest.raises(TraceError, match="no column 'missing'"):
        TraceFile(path, column="missing").load()
    with pytest.raises(TraceError, match="line 3"):
        TraceFile(path, column="key").load()


def test_csv_delimiter_and_malformed_rows_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("a,b\n")
    with pytest.raises(TraceError, match="one character"):
        TraceFile(path, delimiter="::").load()
    path.write_text("k" * 200_000 + "\n")  # longer than the csv module's field limit
    with pytest.raises(TraceError, match="malformed"):
        TraceFile(path).load()


def test_cache2k_big_endian_int32(tmp_path: Path) -> None:
    path = tmp_path / "web.trace.xz"
    path.write_bytes(lzma.compress(np.array([5, -1, 5, 70000], dtype=">i4").tobytes()))
    trace = TraceFile(path).load()
    assert list(trace.keys) == [5, -1, 5, 70000]
    assert TraceFile(path).resolved_format == "int32-be"
    assert list(TraceFile(path, "cache2k").load().keys) == [5, -1, 5, 70000]


def test_cache2k_with_a_truncated_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "web.trace"
    path.write_bytes(b"\x00\x00\x00\x01\x00\x00")
    with pytest.raises(TraceError, match="int32"):
        TraceFile(path).load()


def test_arc_lines_expand_block_runs(tmp_path: Path) -> None:
    path = tmp_path / "P1.lis"
    path.write_text("100 3 0 0\n7 1 0 1\n101 2 0 2\n")
    trace = TraceFile(path).load()
    assert list(trace.keys) == [100, 101, 102, 7, 101, 102]
    assert trace.credit == ARC_CITATION


def test_arc_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "gaps.lis"
    path.write_text("1 1 0 0\n\n2 1 0 1\n   \n3 1 0 2")
    assert list(TraceFile(path).load().keys) == [1, 2, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [("1 2 0\n", "exactly 4"), ("1 x 0 0\n", "other than integers"), ("5 0 0 0\n", ">= 1")],
)
def test_malformed_arc_lines_are_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.lis"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        TraceFile(path).load()


def test_oracle_general_records(tmp_path: Path) -> None:
    records = [(0, 42, 100, 2), (1, 7, 50, -1), (2, 42, 100, -1)]
    path = tmp_path / "w.oracleGeneral.bin.zst"
    raw = b"".join(struct.pack("<IQIq", *record) for record in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw))
    assert list(TraceFile(path).load().keys) == [42, 7, 42]
    truncated = tmp_path / "w.oracleGeneral.bin"
    truncated.write_bytes(raw[:-3])
    with pytest.raises(TraceError, match="24-byte"):
        TraceFile(truncated).load()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.lis.zst", "arc"),
        ("x.csv.gz", "csv"),
        ("t.oracleGeneral.bin", "oracle"),
        ("keys.txt", "text"),
    ],
)
def test_format_is_guessed_from_the_name(name: str, expected: str) -> None:
    assert guess_format(Path(name)) == expected
    # A decisive name wins over the content.
    assert guess_format(Path(name), np.arange(8, dtype=">i4").tobytes()) == expected


@pytest.mark.parametrize("name", ["cache2k_web07.trace.xz", "user_keys.trace", "keys", "w.bin"])
def test_cache2k_is_detected_by_content_not_by_name(name: str) -> None:
    assert guess_format(Path(name), np.array([1, 70000, -1], dtype=">i4").tobytes()) == "int32-be"
    assert guess_format(Path(name), "k1\nk6\nclé\n".encode()) == "text"
    assert guess_format(Path(name), b"\xff\xfe\x81\x80") == "int32-be"


def test_a_text_trace_named_dot_trace_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "user_keys.trace"
    path.write_text("k1\nk6\nk4\nk1\n")
    assert TraceFile(path).resolved_format == "text"
    assert TraceFile(path).load().keys == ["k1", "k6", "k4", "k1"]
    compressed = tmp_path / "user_keys.trace.xz"
    compressed.write_bytes(lzma.compress(b"a\nb\n"))
    assert TraceFile(compressed).load().keys == ["a", "b"]


def test_text_sniffing_tolerates_a_character_cut_at_the_sniffing_limit() -> None:
    from qcache.sim.readers import looks_like_text

    data = b"a" + "é".encode() * 40_000  # the 64 KiB prefix ends in the middle of an "é"
    assert looks_like_text(data)
    assert not looks_like_text(data[2:])  # starting mid-character is not UTF-8


def test_missing_empty_and_binary_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="does not exist"):
        TraceFile(tmp_path / "nope.txt").load()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(TraceError, match="no requests"):
        TraceFile(empty).load()
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(TraceError, match="not UTF-8"):
        TraceFile(binary).load()
    with pytest.raises(TraceError, match="unknown trace format"):
        TraceFile(empty, trace_format="parquet")


def test_a_trace_error_is_a_qcache_error_and_a_value_error(tmp_path: Path) -> None:
    from qcache.errors import QCacheError

    with pytest.raises(QCacheError):
        TraceFile(tmp_path / "nope").load()
    with pytest.raises(ValueError):
        TraceFile(tmp_path / "nope").load()


def test_credits_follow_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "cache2k_x.trace"
    path.write_bytes(np.array([1, 2], dtype=">i4").tobytes())
    assert TraceFile(path).load().credit == CACHE2K_CREDIT
    plain = tmp_path / "mine.txt"
    plain.write_text("a\n")
    assert TraceFile(plain).load().credit == ""


def test_iterating_a_trace_file_yields_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "k.txt"
    path.write_text("1\n2\n")
    assert list(TraceFile(path)) == ["1", "2"]
    assert materialize(TraceFile(path)).keys == ["1", "2"]


def test_the_shared_traces_folder_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRACES_DIR_ENV, str(tmp_path))
    assert shared_traces_dir() == tmp_path
    monkeypatch.setenv(TRACES_DIR_ENV, str(tmp_path / "absent"))
    assert shared_traces_dir() is None


# -- fixed-width binary keys, Twitter's CSV, and detection that refuses when in doubt -----------

KEYS = [3, 70_000, 3, 12, 1 << 20, 70_000, 5, 12]


@pytest.mark.parametrize("fmt", ["int32-be", "int32-le", "int64-be", "int64-le"])
def test_fixed_width_keys_are_read_and_detected(tmp_path: Path, fmt: str) -> None:
    dtype = {"int32-be": ">i4", "int32-le": "<i4", "int64-be": ">i8", "int64-le": "<i8"}[fmt]
    path = tmp_path / "keys.bin.xz"
    path.write_bytes(lzma.compress(np.array(KEYS, dtype=dtype).tobytes()))
    assert list(TraceFile(path, fmt).load().keys) == KEYS
    assert TraceFile(path).resolved_format == fmt
    assert list(TraceFile(path).load().keys) == KEYS


def test_wide_keys_in_64_bits_are_read_when_named(tmp_path: Path) -> None:
    keys = [1 << 40, -(1 << 50), 1 << 40]
    path = tmp_path / "caffeine.trace"
    path.write_bytes(np.array(keys, dtype=">i8").tobytes())
    assert list(TraceFile(path, "int64-be").load().keys) == keys


@pytest.mark.parametrize("fmt", ["int32-be", "int32-le", "cache2k"])
def test_a_64_bit_trace_read_as_32_bit_is_an_error(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "keys.bin"
    path.write_bytes(np.array(KEYS, dtype=">i8").tobytes())
    with pytest.raises(TraceError, match="64-bit keys.*int64-be"):
        TraceFile(path, fmt).load()
    path.write_bytes(np.array(KEYS, dtype="<i8").tobytes())
    with pytest.raises(TraceError, match="int64-le"):
        TraceFile(path, fmt).load()


def test_a_truncated_binary_trace_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.bin"
    path.write_bytes(np.array(KEYS, dtype=">i8").tobytes()[:-4])
    with pytest.raises(TraceError, match="64-bit keys"):
        TraceFile(path, "int64-be").load()


@pytest.mark.parametrize("dtype", [">u4", ">u8"])
def test_hashed_keys_filling_their_width_are_refused_under_auto(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "hashed.bin"
    native = np.dtype(dtype).newbyteorder("=")
    path.write_bytes(rng.integers(0, np.iinfo(native).max, 5000, dtype=native).astype(dtype).tobytes())
    with pytest.raises(TraceError, match="cannot tell the layout.*--format.*int64-le"):
        TraceFile(path).load()


TWITTER_ROWS = (
    "0,key-a,10,200,1,get,0\n"
    "0,key-b,10,300,2,set,3600\n"
    "1,key-a,10,200,1,gets,0\n"
    "2,key-c,12,0,3,delete,0\n"
)


@pytest.mark.parametrize("name", ["cluster52.000", "cluster52.csv", "cluster52.000.zst"])
def test_twitter_cache_traces_are_detected_and_read_by_key(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = TWITTER_ROWS.encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if name.endswith(".zst") else data)
    assert TraceFile(path).resolved_format == "twitter"
    assert list(TraceFile(path).load().keys) == ["key-a", "key-b", "key-a", "key-c"]


def test_malformed_twitter_rows_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "cluster1.000"
    path.write_text(TWITTER_ROWS + "3,key-d,10,200,1,frobnicate,0\n")
    with pytest.raises(TraceError, match="line 5"):
        TraceFile(path, "twitter").load()


def test_a_table_without_a_csv_name_is_refused_under_auto(tmp_path: Path) -> None:
    path = tmp_path / "requests.log"
    path.write_text("1,k1,10\n2,k2,20\n")
    with pytest.raises(TraceError, match="looks like a table.*--format csv"):
        TraceFile(path).load()
    assert list(TraceFile(path, "csv", column=1).load().keys) == ["k1", "k2"]


def test_four_integer_lines_are_an_arc_trace_under_auto(tmp_path: Path) -> None:
    path = tmp_path / "P3"
    path.write_text("100 2 0 0\n7 1 0 1\n")
    assert TraceFile(path).resolved_format == "arc"
    assert list(TraceFile(path).load().keys) == [100, 101, 7]


LIBCACHESIM_SAMPLE = "version,time,op,size,lbn\n1,33898,2a,512,42932745\n1,33898,2a,512,7\n1,33899,2a,4096,42932745\n"


def test_a_csv_of_several_columns_needs_its_key_column_named(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(LIBCACHESIM_SAMPLE)
    with pytest.raises(TraceError, match="5 columns.*--column"):
        TraceFile(path).load()
    assert list(TraceFile(path, column="lbn").load().keys) == ["42932745", "7", "42932745"]
    single = tmp_path / "keys.csv"
    single.write_text("a\nb\na\n")
    assert list(TraceFile(single).load().keys) == ["a", "b", "a"]


@pytest.mark.parametrize(
    ("spec", "layout"),
    [
        ("obj-id-col=5,has-header=true,delimiter=,", CsvLayout(4, True, ",")),
        ("time-col=2, obj-id-col=1, obj-size-col=4, obj-id-is-num=1", CsvLayout(0, False, ",")),
        ("obj-id-col=2,delimiter=\\t", CsvLayout(1, False, "\t")),
        ("obj_id_col=3,has_header=false,delimiter=tab", CsvLayout(2, False, "\t")),
    ],
)
def test_libcachesim_csv_parameters(spec: str, layout: CsvLayout) -> None:
    assert libcachesim_csv(spec) == layout


@pytest.mark.parametrize(
    ("spec", "message"),
    [("has-header=true", "obj-id-col"), ("obj-id-col=0", "1-based"), ("obj-id-col=x", "integer"),
     ("obj-id-col=1,sample-ratio=0.1", "unknown"), ("obj-id-col=1,has-header=maybe", "true or false")],
)
def test_bad_libcachesim_csv_parameters_are_errors(spec: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        libcachesim_csv(spec)


def test_libcachesim_text_traces_are_one_key_per_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt"
    path.write_text("42932745\n7\n42932745\n")
    assert list(TraceFile(path).load().keys) == ["42932745", "7", "42932745"]
