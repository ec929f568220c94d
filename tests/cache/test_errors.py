"""Failure is a miss (unless strict), bad input is a clear error, foreign bytes are never a value."""

from __future__ import annotations

import decimal
import logging
import pickle
import socket
import time
from typing import Any

import pytest
import redis

from qcache import BackendError, CircuitOpenError, SerializationError
from qcache.cache.record import pack_record, unpack_record
from qcache.codec import Codec, SignedPickleSerializer, encode_key, generate_key

from .conftest import MakeCache, build_config
from .support import Handle, forge_record, redis_keys

pytestmark = pytest.mark.redis

FAST_FAIL = {"REDIS_MAX_RETRIES": 0, "REDIS_SOCKET_TIMEOUT": 0.5, "REDIS_CONNECTION_TIMEOUT": 0.5}


@pytest.fixture
def dead_url() -> str:
    """A loopback address where nothing listens: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def dead_cache(make_cache: MakeCache, dead_url: str, prefix: str, level: str, **options: Any) -> Handle:
    return await make_cache(config=build_config(dead_url, prefix, level, "WRITE_THROUGH", **FAST_FAIL), **options)


# -- an L2 failure is a miss --------------------------------------------------------------------


@pytest.mark.parametrize("level", ["BOTH", "L2_REDIS"])
async def test_an_unreachable_l2_is_a_counted_logged_miss(
    make_cache: MakeCache, dead_url: str, prefix: str, level: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = await dead_cache(make_cache, dead_url, prefix, level)
    with caplog.at_level(logging.WARNING, logger="qcache"):
        await cache.set("k", {"v": 1}, ttl=60)
        await cache.set_many({"a": 1}, ttl=60)
        # The writes wait in the queue for L2 (see test_lost_invalidations.py); L1, or the queue, serves them.
        assert await cache.get("k") == {"v": 1}
        assert await cache.get("missing", "dflt") == "dflt"
        assert await cache.get_many(["k", "missing"]) == {"k": {"v": 1}}
        assert await cache.get_or_set("fresh", lambda: "loaded", ttl=60) == "loaded"
        assert await cache.delete("k") is True
        await cache.invalidate_pattern("*")
        await cache.clear()
        assert await cache.flush() == 2  # the delete of "k" and the pattern (the clear is the same one)
        assert await cache.get("k") is None and await cache.get("fresh") is None
    errors = (await cache.stats())["errors"]
    assert errors.get("l2_error", 0) >= 5  # the breaker's threshold...
    assert errors.get("l2_circuit_open", 0) >= 1  # ...after which calls are skipped without a connect
    assert any("L2 set failed, kept for a retry until it lands" in r.getMessage() for r in caplog.records)
    assert (await cache.stats())["l2_breaker"] == "open"


async def test_strict_mode_raises_backend_errors(make_cache: MakeCache, dead_url: str, prefix: str) -> None:
    cache = await dead_cache(make_cache, dead_url, prefix, "BOTH", strict=True)
    for _ in range(5):  # the breaker's failure threshold
        with pytest.raises(BackendError) as caught:
            await cache.get("k")
        assert not isinstance(caught.value, CircuitOpenError)
    with pytest.raises(CircuitOpenError):
        await cache.set("k", 1, ttl=60)  # (raised, and queued for L2 all the same)
    with pytest.raises(CircuitOpenError):
        await cache.get_many(["k2"])
    with pytest.raises(CircuitOpenError):
        await cache.delete("k")
    # health() reports instead of raising, even in strict mode.
    report = await cache.health()
    assert report["status"] == "degraded"
    assert any("L2 unreachable" in reason for reason in report["reasons"])


# -- bad input ------------------------------------------------------------------------------


@pytest.fixture(params=["BOTH", "L1_MEMORY"])
async def cache(request: pytest.FixtureRequest, make_cache: MakeCache) -> Handle:
    return await make_cache(request.param)


@pytest.mark.parametrize("ttl", [0, -1, -0.5, float("nan"), float("inf")])
async def test_a_ttl_that_is_not_a_positive_number_is_refused(cache: Handle, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", 1, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await cache.set_many({"k": 1}, ttl=ttl)
    assert await cache.get("k") is None


@pytest.mark.parametrize("ttl", ["60", True, [60]])
async def test_a_ttl_of_the_wrong_type_is_refused(cache: Handle, ttl: Any) -> None:
    with pytest.raises(TypeError, match="ttl"):
        await cache.set("k", 1, ttl=ttl)


@pytest.mark.parametrize("key", [1, b"k", None, ("k",)])
async def test_a_key_that_is_not_str_is_refused_by_every_method(cache: Handle, key: Any) -> None:
    calls = [
        cache.get(key),
        cache.set(key, 1, ttl=60),
        cache.delete(key),
        cache.get_many(["ok", key]),
        cache.set_many({"ok": 1, key: 2}, ttl=60),
        cache.get_or_set(key, lambda: 1, ttl=60),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="keys must be str"):
            await call
    assert await cache.get("ok") is None  # set_many checked every key before writing


async def test_a_key_that_cannot_be_utf8_is_refused_up_front(cache: Handle) -> None:
    for key in ("\ud800", "ok\udfffok"):
        with pytest.raises(ValueError, match="UTF-8"):
            await cache.set(key, 1, ttl=60)
        with pytest.raises(ValueError, match="UTF-8"):
            await cache.get(key)


async def test_a_bad_key_cannot_poison_the_write_back_queue(
    make_cache: MakeCache, raw_redis: redis.Redis, prefix: str
) -> None:
    cache = await make_cache("BOTH", "WRITE_BACK")
    await cache.set("good", 1, ttl=60)
    with pytest.raises(ValueError):
        await cache.set("bad\ud800", 2, ttl=60)
    await cache.set("also good", 3, ttl=60)
    assert await cache.flush() == 0
    assert redis_keys(raw_redis, prefix) == {cache.storage_key("good"), cache.storage_key("also good")}


@pytest.mark.parametrize("value", [object(), decimal.Decimal("1.5"), lambda: 1, {"nested": {1j}}])
async def test_a_value_the_codec_cannot_take_is_a_serialization_error(cache: Handle, value: Any) -> None:
    with pytest.raises(SerializationError, match="cannot serialize"):
        await cache.set("k", value, ttl=60)
    with pytest.raises(SerializationError):
        await cache.set_many({"fine": 1, "bad": value}, ttl=60)
    assert await cache.get_many(["k", "fine", "bad"]) == {}  # nothing was written
    with pytest.raises(SerializationError):
        await cache.get_or_set("k", lambda: value, ttl=60)
    assert await cache.get("k") is None


async def test_an_unknown_cache_type_is_refused_by_every_method(cache: Handle) -> None:
    calls = [
        cache.get("k", cache_type="nope"),
        cache.set("k", 1, ttl=60, cache_type="nope"),
        cache.delete("k", cache_type="nope"),
        cache.get_many(["k"], cache_type="nope"),
        cache.set_many({"k": 1}, ttl=60, cache_type="nope"),
        cache.get_or_set("k", lambda: 1, ttl=60, cache_type="nope"),
        cache.invalidate_pattern("*", cache_type="nope"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="unknown cache type 'nope'; known: default, embedding, file"):
            await call


@pytest.mark.parametrize("pattern", ["", "[ab", "a[", 5, None])
async def test_a_bad_pattern_is_refused(cache: Handle, pattern: Any) -> None:
    await cache.set("k", 1, ttl=60)
    with pytest.raises(ValueError):
        await cache.invalidate_pattern(pattern)
    assert await cache.get("k") == 1


# -- foreign bytes in Redis ------------------------------------------------------------------


def corruptions(cache: Handle, genuine: bytes) -> dict[str, bytes]:
    """Bytes an attacker, a bug or another program could leave under the key, by expected reason."""
    skey = cache.storage_key("k")
    expires_ms = int((time.time() + 60) * 1000)
    codec: Codec = cache.core.codec
    pickler = Codec(pickle=SignedPickleSerializer(b"s" * 32))
    flipped = bytearray(genuine)
    flipped[-1] ^= 0x01
    return {
        "foreign": b"hello, I am not a qcache record",
        "truncated": genuine[:5],
        "unsupported_version": bytes([0xC7, 99, 0]) + genuine[3:],
        "checksum_mismatch": bytes(flipped),
        "checksum_mismatch ": pack_record(codec.encode("moved", key=skey + "-other"), expires_ms),
        "foreign ": pack_record(pickle.dumps({"rce": "please"}), expires_ms),
        "pickle_disabled": pack_record(pickler.encode(decimal.Decimal(1), key=skey), expires_ms),
    }


@pytest.mark.parametrize("level", ["L2_REDIS", "BOTH"])
async def test_corrupt_or_foreign_bytes_are_a_counted_miss_never_an_error(
    make_cache: MakeCache, raw_redis: redis.Redis, level: str
) -> None:
    writer = await make_cache("L2_REDIS")
    await writer.set("k", {"genuine": True}, ttl=60)
    skey = writer.storage_key("k")
    genuine = raw_redis.get(skey)
    reader = await make_cache(level)
    for label, planted in corruptions(writer, genuine).items():
        reason = label.strip()
        raw_redis.set(skey, planted, px=60_000)
        before = (await reader.stats())["errors"].get(f"integrity_{reason}", 0)
        assert await reader.get("k", "miss") == "miss", label
        assert await reader.get_many(["k"]) == {}, label
        after = (await reader.stats())["errors"].get(f"integrity_{reason}", 0)
        assert after == before + 2, (label, (await reader.stats())["errors"])
        if reader.core.l1 is not None:
            assert reader.core.l1.peek(skey) is None  # nothing bad was copied into L1
    # get_or_set treats it as a miss too, and its fresh value replaces the bad bytes.
    assert await reader.get_or_set("k", lambda: "reloaded", ttl=60) == "reloaded"
    assert await writer.get("k") == "reloaded"


@pytest.mark.parametrize("required", [False, True])
async def test_a_planted_plaintext_entry_for_an_encrypted_type_is_refused_when_encryption_is_required(
    make_cache: MakeCache, raw_redis: redis.Redis, required: bool
) -> None:
    """Anyone who can write to Redis can frame a plaintext entry with a valid checksum; only
    CACHE_ENCRYPTION_REQUIRED stops it (off, entries from before encryption stay readable)."""
    settings = {
        "SEARCH_CACHE_ENCRYPTION": "true",
        "CACHE_ENCRYPTION_KEY": encode_key(generate_key()),
        "ENCRYPTION_KEY_STORE_PATH": "",
        "CACHE_ENCRYPTION_REQUIRED": str(required).lower(),
    }
    cache = await make_cache("L2_REDIS", **settings)
    await cache.set("q", ["genuine"], ttl=60, cache_type="search")
    skey = cache.storage_key("q", "search")
    assert cache.core.codec.inspect(unpack_record(raw_redis.get(skey)).payload).encrypted
    forged = forge_record(Codec(), ["planted"], skey, int((time.time() + 60) * 1000))
    raw_redis.set(skey, forged, px=60_000)
    got = await cache.get("q", "miss", cache_type="search")
    errors = (await cache.stats())["errors"]
    if required:
        assert got == "miss" and errors.get("integrity_plaintext_rejected") == 1
    else:
        assert got == ["planted"] and "integrity_plaintext_rejected" not in errors
