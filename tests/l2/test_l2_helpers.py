"""The pure helpers behind both tiers: TTL conversion, item checks, chunking, globs, replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qcache.errors import BackendError
from qcache.l2 import NO_EXPIRY, escape_glob
from qcache.l2.batching import chunked, first_error, flatten, key_list, normalize_items, ttl_to_px
from qcache.l2.patterns import UnlinkBatcher, check_namespace, check_pattern
from qcache.l2.responses import pttl_from, server_info_from


@pytest.mark.parametrize(
    ("ttl", "px"),
    [
        (1, 1000),
        (0.29, 290),  # 290.00000000000006 in binary: float noise must not round up
        (0.0011, 2),  # 1.1 ms rounds up
        (0.0001, 1),  # below a millisecond: at least 1 ms
        (1e-9, 1),
        (2.5, 2500),
        (86400, 86_400_000),
    ],
)
def test_ttl_to_px_rounds_up_to_whole_milliseconds(ttl: float, px: int) -> None:
    assert ttl_to_px(ttl) == px


@given(st.floats(min_value=1e-6, max_value=1e7, allow_nan=False))
def test_ttl_to_px_never_shortens_an_entry_by_more_than_float_noise(ttl: float) -> None:
    px = ttl_to_px(ttl)
    assert px >= 1
    assert px / 1000 >= ttl - 1e-9
    assert px - 1 < ttl * 1000 + 1e-6 or px == 1


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan"), -0.0])
def test_ttl_to_px_rejects_non_positive_or_infinite(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        ttl_to_px(ttl)


@pytest.mark.parametrize("ttl", [None, "10", True, b"1"])
def test_ttl_to_px_rejects_non_numbers(ttl: object) -> None:
    with pytest.raises(TypeError, match="ttl"):
        ttl_to_px(ttl)  # type: ignore[arg-type]


def test_normalize_items_accepts_mappings_pairs_and_triples() -> None:
    assert normalize_items({"a": b"1", "b": b"2"}, 1) == [("a", b"1", 1000), ("b", b"2", 1000)]
    assert normalize_items([("a", b"1"), ("b", b"2", 0.5)], 2) == [
        ("a", b"1", 2000),
        ("b", b"2", 500),
    ]
    assert normalize_items(iter([("a", b"", 3)]), None) == [("a", b"", 3000)]
    assert normalize_items({}, None) == []


def test_normalize_items_needs_a_ttl_for_pairs() -> None:
    with pytest.raises(ValueError, match="no ttl"):
        normalize_items([("a", b"1", 1), ("b", b"2")], None)


@pytest.mark.parametrize(
    "items",
    [
        {"a": "text"},
        {"a": bytearray(b"x")},
        {"a": None},
        [(1, b"x")],
        [("a",)],
        [["a", b"x"]],
        [("a", b"x", 1, 2)],
    ],
)
def test_normalize_items_refuses_anything_but_str_keys_and_bytes(items: object) -> None:
    with pytest.raises(TypeError):
        normalize_items(items, 1)  # type: ignore[arg-type]


def test_chunked_and_flatten_preserve_order() -> None:
    items = list(range(10))
    parts = chunked(items, 3)
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert flatten(parts) == items
    assert chunked([], 3) == []
    assert chunked((1, 2), 5) == [(1, 2)]


def test_first_error_finds_the_first_exception() -> None:
    boom, bang = RuntimeError("boom"), ValueError("bang")
    assert first_error([1, boom, bang]) is boom
    assert first_error([1, 2]) is None


# -- globs ---------------------------------------------------------------------------------


def test_escape_glob_escapes_exactly_the_redis_metacharacters() -> None:
    assert escape_glob("plain:key-1_ü") == "plain:key-1_ü"
    assert escape_glob("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f"
    assert escape_glob("^-!") == "^-!"


def _redis_glob_literal(pattern: str) -> str:
    """Undo redis-style escapes (the model of what an escaped pattern matches)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            i += 1
        out.append(pattern[i])
        i += 1
    return "".join(out)


@given(st.text(alphabet=st.sampled_from("ab:*?[]\\^-!"), max_size=20))
def test_escape_glob_round_trips_to_the_literal_text(text: str) -> None:
    escaped = escape_glob(text)
    assert _redis_glob_literal(escaped) == text
    # No unescaped metacharacter survives.
    stripped = escaped.replace("\\\\", "").replace("\\*", "").replace("\\?", "")
    stripped = stripped.replace("\\[", "").replace("\\]", "")
    assert not any(ch in stripped for ch in "*?[]\\")


def test_check_namespace_refuses_empty_or_non_str() -> None:
    assert check_namespace("app:") == "app:"
    with pytest.raises(ValueError):
        check_namespace("")
    with pytest.raises(TypeError):
        check_namespace(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("namespace", "pattern", "allowed"),
    [
        ("app:", "app:*", True),
        ("app:", "app:user:?", True),
        ("app:", "*", False),
        ("app:", "ap*", False),
        ("app:", "other:*", False),
        ("a*b:", "a\\*b:*", True),
        ("a*b:", "a*b:*", False),  # unescaped: would also match "aXXb:..."
        ("a[1]:", "a\\[1\\]:*", True),
        ("a[1]:", "a[1]:*", False),
        ("a\\:", "a\\\\:*", True),
        ("a\\:", "a\\:*", False),
    ],
)
def test_check_pattern_requires_the_escaped_namespace_prefix(
    namespace: str, pattern: str, allowed: bool
) -> None:
    if allowed:
        check_pattern(pattern, escape_glob(namespace))
    else:
        with pytest.raises(ValueError, match="outside this cache's namespace"):
            check_pattern(pattern, escape_glob(namespace))


# -- replies -------------------------------------------------------------------------------


def test_pttl_from_maps_redis_sentinels() -> None:
    assert pttl_from(-2) is None
    assert pttl_from(-1) == NO_EXPIRY
    assert pttl_from(1234) == 1234


def test_server_info_from_picks_the_reported_fields() -> None:
    info = server_info_from(
        {
            "redis_version": "7.2.4",
            "used_memory": 1048576,
            "maxmemory": 0,
            "maxmemory_policy": "allkeys-lru",
            "redis_mode": "standalone",
        }
    )
    assert (info.version, info.used_memory, info.maxmemory) == ("7.2.4", 1048576, 0)
    assert (info.maxmemory_policy, info.mode) == ("allkeys-lru", "standalone")


@pytest.mark.parametrize(
    "raw", [{}, {"redis_version": "7"}, {"redis_version": "7", "used_memory": "lots"}]
)
def test_server_info_from_refuses_a_malformed_reply(raw: dict[str, object]) -> None:
    with pytest.raises(BackendError, match="INFO"):
        server_info_from(raw)


def test_unlink_batcher_holds_sparse_matches_until_a_batch_or_the_end() -> None:
    batcher = UnlinkBatcher(3)
    assert batcher.take([b"a"], finished=False) == []
    assert batcher.take([], finished=False) == []
    assert batcher.take([b"b", b"c", b"d"], finished=False) == [b"a", b"b", b"c", b"d"]
    assert batcher.take([b"e"], finished=False) == []
    assert batcher.take([], finished=True) == [b"e"]
    assert batcher.take([], finished=True) == []


def test_key_list_refuses_a_lone_string() -> None:
    assert key_list(("a", "b")) == ["a", "b"]
    keys = ["a"]
    assert key_list(keys) is keys  # no copy on the hot path
    for bad in ("abc", b"abc"):
        with pytest.raises(TypeError, match="single string"):
            key_list(bad)  # type: ignore[arg-type]
