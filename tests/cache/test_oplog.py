"""``CACHE_LOG_OPERATIONS``: a line per operation with key hashes, never keys, values or secrets."""

from __future__ import annotations

import inspect
import logging

import pytest

from qcache import AsyncQueryCache, QueryCache
from qcache.cache.oplog import key_hash

from .conftest import MakeCache

pytestmark = pytest.mark.redis


async def test_each_operation_logs_its_outcome_and_a_hash_of_its_key(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH", CACHE_LOG_OPERATIONS="true")
    secret_value = "s3cr3t-value-123"
    with caplog.at_level(logging.INFO, logger="qcache.operations"):
        await cache.set("user:alice", secret_value, cache_type="search", tags=("t",))
        assert await cache.get("user:alice", cache_type="search") == secret_value
        assert await cache.get("user:bob") is None
        await cache.get_many(["user:alice", "x"], cache_type="search")
        await cache.for_project("acme").delete("user:alice")
        await cache.invalidate_tags("t")
    lines = [r.getMessage() for r in caplog.records if r.name == "qcache.operations"]
    assert len(lines) == 6, lines
    assert lines[0].startswith(f"op=set project=_ type=search key={key_hash('user:alice')} outcome=ok ms=")
    assert "op=get project=_ type=search" in lines[1] and "outcome=hit" in lines[1]
    assert f"key={key_hash('user:bob')} outcome=miss" in lines[2]
    assert "op=get_many" in lines[3] and "keys=2 outcome=hits=1" in lines[3]
    assert "op=delete project=acme" in lines[4] and "outcome=absent" in lines[4]
    assert "op=invalidate_tags" in lines[5] and "tags=1 outcome=count=1" in lines[5]
    text = "\n".join(lines)
    assert "alice" not in text and "bob" not in text and secret_value not in text


async def test_nothing_is_installed_when_the_setting_is_off(make_cache: MakeCache) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH")
    installed = vars(cache.raw).get("get")
    # The class's own method, or (sync) the L1 hit path handing everything else to it: no log wrapper.
    assert installed is None or installed is cache.raw._shared.fast_gets[cache.raw.namespace]
    logged = await make_cache("BOTH", "WRITE_THROUGH", CACHE_LOG_OPERATIONS="true")
    assert "get" in vars(logged.raw)
    assert inspect.iscoroutinefunction(logged.raw.get) == logged.is_async


async def test_a_failing_operation_logs_the_error_type(make_cache: MakeCache,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    cache = await make_cache("BOTH", "WRITE_THROUGH", CACHE_LOG_OPERATIONS="true")
    with caplog.at_level(logging.INFO, logger="qcache.operations"), pytest.raises(TypeError):
        await cache.set("k", object())
    assert "outcome=error:SerializationError" in caplog.records[-1].getMessage()


def test_io_methods_are_coroutines_on_the_async_facade_and_the_rest_are_not() -> None:
    """AsyncQueryCache keeps one rule: what may wait on Redis is awaited; what reads memory is plain."""
    public = {n for n in dir(QueryCache) if not n.startswith("_")}
    # start_monitoring: the sync cache starts its monitor thread when built, the async one needs a loop.
    assert public | {"start_monitoring"} == {n for n in dir(AsyncQueryCache) if not n.startswith("_")}
    io = {"get", "get_many", "set", "set_many", "delete", "get_or_set", "invalidate_pattern", "invalidate_tags",
          "validate", "clear", "flush", "health", "close"}
    for name in sorted(public):
        member = inspect.getattr_static(AsyncQueryCache, name)
        if not inspect.isfunction(member):
            continue
        assert inspect.iscoroutinefunction(member) == (name in io), name
        assert not inspect.iscoroutinefunction(getattr(QueryCache, name, None)), name
