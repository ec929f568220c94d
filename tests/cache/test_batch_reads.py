"""``get_many`` decodes a batch in one loop (EntryCodec.decode_many): mixed batches, bad records among good ones.

The loop checks plain records itself and hands every other record, and any
that fails its checks, to the field-by-field path; these tests plant bad
records in the middle of a batch of good ones and check that exactly the
good ones are served, that each bad one is counted with its reason, and that
none reaches L1.
"""

from __future__ import annotations

import enum
import secrets
import struct
import time
import zlib
from typing import Any

import numpy as np
import pytest
import redis

from .conftest import MakeCache

pytestmark = pytest.mark.redis

EXPIRES_AT = slice(3, 11)  # the record's expires_at_ms field (see qcache.cache.record)


class Color(enum.StrEnum):
    RED = "red"


def flipped_last_byte(record: bytes) -> bytes:
    return record[:-1] + bytes([record[-1] ^ 0x01])


@pytest.mark.parametrize("level", ["L2_REDIS", "BOTH"])
async def test_a_batch_serves_its_intact_records_and_counts_each_bad_one(
    make_cache: MakeCache, raw_redis: redis.Redis, level: str
) -> None:
    writer = await make_cache("L2_REDIS")
    # Up to 110 KB that does not compress: bodies sliced, and the longest read through a view.
    values = {f"k{i}": {"n": i, "blob": secrets.token_bytes(i * 10_000)} for i in range(12)}
    await writer.set_many(values, ttl=60)
    skeys = {key: writer.storage_key(key) for key in values}
    genuine = {key: raw_redis.get(skey) for key, skey in skeys.items()}
    # Body flipped, expiry pushed ten years out, another key's record copied over, cut short.
    raw_redis.set(skeys["k1"], flipped_last_byte(genuine["k1"]), px=60_000)
    forged = genuine["k2"][: EXPIRES_AT.start] + struct.pack(">Q", 2**62) + genuine["k2"][EXPIRES_AT.stop :]
    raw_redis.set(skeys["k2"], forged, px=60_000)
    raw_redis.set(skeys["k3"], genuine["k4"], px=60_000)
    raw_redis.set(skeys["k11"], flipped_last_byte(genuine["k11"]), px=60_000)  # a long body, read through a view
    raw_redis.set(skeys["k5"], genuine["k5"][:20], px=60_000)
    reader = await make_cache(level)
    got = await reader.get_many([*values, "absent"])
    bad = {"k1", "k2", "k3", "k5", "k11"}
    assert got == {key: value for key, value in values.items() if key not in bad}
    errors = (await reader.stats())["errors"]
    assert errors.get("integrity_checksum_mismatch") == 4 and errors.get("integrity_truncated") == 1, errors
    if reader.core.l1 is not None:
        assert all(reader.core.l1.peek(skeys[key]) is None for key in bad)
        assert reader.core.l1.peek(skeys["k0"]) is not None  # the good ones were copied into L1


async def test_an_expired_record_in_a_batch_is_a_miss_not_an_error(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    cache = await make_cache("L2_REDIS")
    await cache.set_many({"old": 1, "new": 2}, ttl=60)
    skey = cache.storage_key("old")
    # A genuine record whose expiry has passed, which Redis still holds.
    core = cache.core
    expired, _ = core.entries.encode(skey, False, "old", core.spec(None), 1, 0.001)
    time.sleep(0.01)
    raw_redis.set(skey, expired, px=60_000)
    assert await cache.get_many(["old", "new"]) == {"new": 2}
    assert not any(kind.startswith("integrity") for kind in (await cache.stats())["errors"])


async def test_batch_keys_are_checked_and_each_looked_up_once(make_cache: MakeCache) -> None:
    cache = await make_cache("L2_REDIS", CACHE_MAX_KEY_LENGTH=64)
    long_key = "L" * 80  # stored under its hash: the batch takes the per-key path
    await cache.set_many({"red": 1, "#mark": 2, long_key: 3, "café": 4}, ttl=60)
    assert await cache.get_many([Color.RED, "red", "#mark", long_key, "café", "red"]) == {
        "red": 1, "#mark": 2, long_key: 3, "café": 4,
    }
    assert (await cache.stats())["hits"]["l2"] == 4  # "red" once, however it was spelled
    with pytest.raises(TypeError, match="cache keys must be str, got list"):
        await cache.get_many(["red", ["not", "hashable"]])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="cache keys must be str, got int"):
        await cache.get_many(["red", 7])  # type: ignore[list-item]


def arrays() -> dict[str, Any]:
    """Embeddings and their neighbours: layouts that share a record length but not a head, and values
    that are not array documents although their payload starts like one."""
    rng = np.random.default_rng(5)
    return {
        "e0": rng.standard_normal(1536).astype(np.float32),
        "e1": rng.standard_normal(1536).astype(np.float32),
        "i32": rng.integers(-9, 9, 1536).astype(np.int32),  # the same length as e0, another dtype
        "f64": rng.standard_normal(768),  # the same number of bytes again
        "be": rng.standard_normal(1536).astype(">f4"),
        "grid": rng.standard_normal((4, 384)).astype(np.float32),
        "e2": rng.standard_normal(1536).astype(np.float32),
        "zeros": np.zeros(1536, dtype=np.float32),  # compresses: read through the decompressor
        "empty": np.zeros(0, dtype=np.float32),
        "scalar": np.array(2.5, dtype=np.float32),
        "pair": (1, "two"),  # a top-level extension record that is not an array
        "dict": {"v": np.arange(3, dtype=np.int16)},
        "e3": rng.standard_normal(1536).astype(np.float32),
    }


def same(got: Any, expected: Any) -> bool:
    if isinstance(expected, np.ndarray):
        return (
            type(got) is np.ndarray and got.dtype == expected.dtype and got.shape == expected.shape
            and bool((got == expected).all())
        )
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], v) for k, v in expected.items())
    return bool(got == expected) and type(got) is type(expected)


@pytest.mark.parametrize("level", ["L2_REDIS", "BOTH"])
async def test_a_batch_of_arrays_reads_what_the_record_by_record_path_reads(
    make_cache: MakeCache, raw_redis: redis.Redis, level: str
) -> None:
    values = arrays()
    writer = await make_cache("L2_REDIS")
    await writer.set_many(values, ttl=60, cache_type="embedding")
    reader = await make_cache(level)
    got = await reader.get_many(list(values), cache_type="embedding")
    core = reader.core
    spec = core.spec("embedding")
    assert got.keys() == values.keys()
    for key, value in values.items():
        skey = reader.storage_key(key, "embedding")
        record = raw_redis.get(skey)
        general, _ = core.entries.decode_checked(skey, False, key, spec, record)
        assert same(got[key], value) and same(general, value), key
        if isinstance(value, np.ndarray):
            assert not got[key].flags.writeable, key  # read-only, as the record-by-record path gives it
        if key in ("e0", "e1", "e2", "e3"):
            # Read over the reply's own bytes, without a copy of the body.
            assert type(got[key].base) is bytes and got[key].base == record, key
    assert not any(kind.startswith("integrity") for kind in (await reader.stats())["errors"])


def forged_crc(record: bytes, skey: str) -> bytes:
    """``record`` (without its checksum) with the one a codec would have written (see qcache.cache.record)."""
    return record + struct.pack("<I", zlib.crc32(record, zlib.crc32(skey.encode())))


async def test_a_bad_array_among_good_ones_is_refused_and_counted(
    make_cache: MakeCache, raw_redis: redis.Redis
) -> None:
    values = {f"e{i}": vector for i, vector in enumerate(arrays()[key] for key in ("e0", "e1", "e2", "e3"))}
    values["e4"] = values["e0"] + 1
    cache = await make_cache("L2_REDIS")
    await cache.set_many(values, ttl=60, cache_type="embedding")
    skeys = {key: cache.storage_key(key, "embedding") for key in values}
    genuine = {key: raw_redis.get(skey) for key, skey in skeys.items()}
    # A flipped float in the data (after e0 taught the loop the batch's layout); a document one
    # float short, its checksum made to match, so that only its document is wrong.
    raw_redis.set(skeys["e1"], genuine["e1"][:-100] + bytes([genuine["e1"][-100] ^ 0x10]) + genuine["e1"][-99:],
                  px=60_000)
    raw_redis.set(skeys["e3"], forged_crc(genuine["e3"][:-8], skeys["e3"]), px=60_000)
    got = await cache.get_many(list(values), cache_type="embedding")
    assert got.keys() == {"e0", "e2", "e4"}
    assert all(same(got[key], values[key]) for key in got)
    errors = (await cache.stats())["errors"]
    assert errors.get("integrity_checksum_mismatch") == 1 and errors.get("integrity_malformed") == 1, errors


async def test_arrays_are_views_of_immutable_replies_only(make_cache: MakeCache, raw_redis: redis.Redis) -> None:
    cache = await make_cache("L2_REDIS")
    values = {f"e{i}": np.full(1536, i, dtype=np.float32) + np.arange(1536, dtype=np.float32) for i in range(3)}
    await cache.set_many(values, ttl=60, cache_type="embedding")
    keys = list(values)
    skeys = [cache.storage_key(key, "embedding") for key in keys]
    records = [raw_redis.get(skey) for skey in skeys]
    spec = cache.core.spec("embedding")
    # A buffer its owner may still change (not what Redis replies give): every array is a copy,
    # for the first record of a layout and for those after it alike.
    mutable = [bytearray(record) for record in records]
    found: dict[str, Any] = {}
    cache.core.entries.decode_many(spec, keys, skeys, mutable, found, None)
    for buffer in mutable:
        buffer[-200:-4] = bytes(196)
    assert found.keys() == values.keys() and all(same(found[key], values[key]) for key in keys)
    assert all(not found[key].flags.writeable and not isinstance(found[key].base, bytearray) for key in keys)
    # From bytes, the same records read as views of them.
    found = {}
    cache.core.entries.decode_many(spec, keys, skeys, records, found, None)
    assert all(found[key].base is record for key, record in zip(keys, records, strict=True))
