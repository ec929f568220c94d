"""The record's expiry and TTL are authenticated with the value, and MEMORY_CACHE_TTL caps L1 copies.

Anyone who can write to Redis can replant an old record. Editing its expiry
(to make it live for ten years, in Redis and in every reader's L1) must make
it a counted miss, for plaintext entries (CRC) and encrypted ones (AES-GCM) alike.
"""

from __future__ import annotations

import struct
import time
import zlib

import msgpack
import pytest
import redis

from qcache.cache.record import RECORD_MAGIC, unpack_record
from qcache.codec import encode_key, generate_key

from .conftest import MakeCache
from .support import Clocks

pytestmark = pytest.mark.redis

TEN_YEARS_MS = 10 * 365 * 86_400 * 1000
EXPIRES_AT = slice(3, 11)  # the record's expires_at_ms field (see qcache.cache.record)
TTL_MS = slice(11, 19)


def encrypted(required: bool) -> dict[str, str]:
    return {
        "SEARCH_CACHE_ENCRYPTION": "true",
        "CACHE_ENCRYPTION_KEY": encode_key(generate_key()),
        "ENCRYPTION_KEY_STORE_PATH": "",
        "CACHE_ENCRYPTION_REQUIRED": str(required).lower(),
    }


def edited(record: bytes, field: slice, value: int) -> bytes:
    return record[: field.start] + struct.pack(">Q", value) + record[field.stop :]


@pytest.mark.parametrize(
    ("cache_type", "settings", "reason"),
    [
        (None, {}, "checksum_mismatch"),
        ("search", encrypted(False), "authentication_failed"),
        ("search", encrypted(True), "authentication_failed"),
    ],
    ids=["plaintext", "encrypted", "encryption-required"],
)
async def test_an_old_record_replanted_with_a_forged_expiry_is_a_counted_miss(
    make_cache: MakeCache, raw_redis: redis.Redis, cache_type: str | None, settings: dict[str, str], reason: str
) -> None:
    writer = await make_cache("L2_REDIS", **settings)
    await writer.set("price", "old", ttl=5, cache_type=cache_type)
    skey = writer.storage_key("price", cache_type)
    old = raw_redis.get(skey)
    assert old is not None
    await writer.set("price", "new", ttl=5, cache_type=cache_type)
    reader = await make_cache("BOTH", **settings)
    forged_expiry = int(time.time() * 1000) + TEN_YEARS_MS
    for forged in (
        edited(old, EXPIRES_AT, forged_expiry),
        edited(edited(old, EXPIRES_AT, forged_expiry), TTL_MS, TEN_YEARS_MS),
        edited(old, TTL_MS, TEN_YEARS_MS),
    ):
        raw_redis.set(skey, forged, px=TEN_YEARS_MS)
        before = (await reader.stats())["errors"].get(f"integrity_{reason}", 0)
        assert await reader.get("price", "miss", cache_type=cache_type) == "miss"
        assert await reader.get_many(["price"], cache_type=cache_type) == {}
        assert (await reader.stats())["errors"].get(f"integrity_{reason}", 0) == before + 2
        assert reader.core.l1 is not None and reader.core.l1.peek(skey) is None
    raw_redis.set(skey, old, px=5000)  # the same record unedited is genuine: it is read
    assert await reader.get("price", cache_type=cache_type) == "old"


@pytest.mark.parametrize("version", [1, 2])
async def test_records_of_earlier_versions_are_refused_and_refilled(
    make_cache: MakeCache, raw_redis: redis.Redis, version: int
) -> None:
    cache = await make_cache("BOTH")
    skey = cache.storage_key("old")
    payload = cache.core.codec.encode({"v": 1}, key=skey)  # how versions 1 and 2 bound the value
    expires_ms = int((time.time() + 60) * 1000)
    fields = struct.pack(">BBBQ", RECORD_MAGIC, version, 0, expires_ms)
    if version == 2:
        fields += struct.pack(">Q", 60_000)
    raw_redis.set(skey, fields + payload, px=60_000)
    assert await cache.get("old", "miss") == "miss"
    assert (await cache.stats())["errors"].get("integrity_unsupported_version") == 1
    assert await cache.get_or_set("old", lambda: {"v": 2}, ttl=60) == {"v": 2}
    assert unpack_record(raw_redis.get(skey)).expires_at_ms > expires_ms - 1000


async def test_records_of_version_3_are_refused_by_single_and_batch_reads(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("BOTH")
    skey = cache.storage_key("old")
    expires_ms = int((time.time() + 60) * 1000)
    # What the release before wrote: value format 2 (its CRC in front of the payload, over the codec
    # header, then the record header and the storage key, then the payload) in record format 3.
    header = struct.pack(">BBBQQ", RECORD_MAGIC, 3, 0, expires_ms, 60_000)
    base, body = bytes((0xC1, 2, 1, 0)), msgpack.packb({"v": 1})
    checksum = zlib.crc32(body, zlib.crc32(header + skey.encode(), zlib.crc32(base)))
    raw_redis.set(skey, header + base + struct.pack(">I", checksum) + body, px=60_000)
    assert await cache.get("old", "miss") == "miss"
    assert await cache.get_many(["old"]) == {}
    assert (await cache.stats())["errors"].get("integrity_unsupported_version") == 2
    await cache.set("old", {"v": 2}, ttl=60)
    assert raw_redis.get(skey)[1] == 4 and await cache.get_many(["old"]) == {"old": {"v": 2}}


async def test_memory_cache_ttl_caps_every_l1_copy(make_cache: MakeCache, clocks: Clocks) -> None:
    # Coherence off: a late report of the writer's own writes would drop the reader's copies this test reads.
    writer = await make_cache("BOTH", clocks=clocks, MEMORY_CACHE_TTL=5, MEMORY_CACHE_COHERENCE="false")
    reader = await make_cache("BOTH", clocks=clocks, MEMORY_CACHE_TTL=5, MEMORY_CACHE_COHERENCE="false")
    await writer.set("a", 1, ttl=600)
    await writer.set_many({"b": 2}, ttl=600)
    assert await reader.get("a") == 1 and await reader.get_many(["b"]) == {"b": 2}  # L2 hits fill L1
    for cache in (writer, reader):
        l1 = cache.core.l1
        assert l1 is not None
        for key in ("a", "b"):
            left = l1.remaining_ttl(cache.storage_key(key))
            assert left is not None and 0 < left <= 5
    clocks.advance(5.01)
    for cache in (writer, reader):
        assert cache.core.l1 is not None and cache.core.l1.peek(cache.storage_key("a")) is None
    assert await reader.get("a") == 1  # still in L2, which keeps the entry's own lifetime

