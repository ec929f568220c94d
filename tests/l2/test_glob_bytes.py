"""L1 matches non-ASCII globs as Redis does: byte by byte on UTF-8, checked against a real ``SCAN MATCH``."""

from __future__ import annotations

import pytest
import redis

from qcache.l2.glob import compile_glob, escape_glob

KEYS = ("é", "e", "ab", "aé", "日本", "日", "é!", "\u00e9\u0301", "x\ny")
PATTERNS = (
    "?", "??", "???", "[é]", "[é][é]", "[^a]", "[^a][^a]", "*é*", "?é", "a?", "a??", "[a-é]", "[a-é]?",
    "日?", "日???", "[日]*", "*", "[\\]]", "\\é", "x?y",
)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_l1_matches_exactly_what_redis_scan_matches(
    redis_client: redis.Redis, key_prefix: str, pattern: str
) -> None:
    for key in KEYS:
        redis_client.set(key_prefix + key, b"1", px=60_000)
    base = escape_glob(key_prefix)
    found = {k.decode("utf-8")[len(key_prefix):] for k in redis_client.scan_iter(match=base + pattern, count=1000)}
    glob = compile_glob(pattern)
    assert {key for key in KEYS if glob.fullmatch(key)} == found, pattern
