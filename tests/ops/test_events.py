"""Event-driven invalidation: handlers as actions, failures isolated, events carried by a Redis Stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import redis

from qcache import AsyncQueryCache, CacheConfig, QueryCache
from qcache.config.sections import CacheTypeConfig
from qcache.ops.event_stream import (
    AsyncEventStream,
    AsyncEventSubscriber,
    EventStream,
    EventSubscriber,
    decode_entry,
    encode_event,
    is_gap,
    start_position,
    stream_key,
)
from qcache.ops.events import (
    ClearNamespace,
    EventError,
    HandlerRegistry,
    InvalidatePattern,
    market_data_update,
    model_update,
)
from qcache.ops.invalidator import AsyncEventInvalidator, EventInvalidator
from qcache.testing import RedisEndpoint, RedisServerProcess

ML_TYPES = ("features", "prediction", "model")


def _config(url: str, prefix: str) -> CacheConfig:
    config = CacheConfig.from_env(REDIS_URL=url, CACHE_KEY_PREFIX=prefix)
    for name in ML_TYPES:
        config.register_cache_type(name, CacheTypeConfig(ttl=600, max_size=1000))
    return config


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return key_prefix.rstrip(":").replace(":", "-")


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- handlers as data -------------------------------------------------------------------


def test_builtin_handlers_escape_what_events_carry() -> None:
    assert market_data_update({"symbol": "BRK*B"}) == [
        InvalidatePattern("features:*BRK\\*B*"), InvalidatePattern("prediction:*BRK\\*B*")
    ]
    assert model_update({"model_version": "v2", "model_type": "ranker"}) == [
        InvalidatePattern("prediction:*:v2"), InvalidatePattern("model:ranker*")
    ]
    assert model_update({"model_type": "ranker"}) == [InvalidatePattern("model:ranker*")]
    with pytest.raises(EventError, match="symbol"):
        market_data_update({})
    with pytest.raises(EventError, match="model_version' or 'model_type"):
        model_update({"timestamp": 1})
    with pytest.raises(EventError, match="text or an integer"):
        market_data_update({"symbol": ["A"]})


def test_the_registry_adds_and_removes_handlers() -> None:
    registry = HandlerRegistry()
    assert set(registry.handlers) == {"market_data_update", "model_update", "system_maintenance"}
    unregister = registry.register("repo_pushed", lambda data: [ClearNamespace()])
    assert len(registry.for_event("repo_pushed")) == 1
    unregister()
    assert registry.for_event("repo_pushed") == []
    with pytest.raises(EventError, match="event type"):
        registry.register("bad type!", lambda data: [])


# -- applying events to a real cache ----------------------------------------------------


@pytest.fixture
def cache(redis_endpoint: RedisEndpoint, prefix: str) -> Iterator[QueryCache]:
    with QueryCache(_config(redis_endpoint.url, prefix)) as cache:
        yield cache


def test_market_data_drops_only_that_symbols_features_and_predictions(cache: QueryCache) -> None:
    # The seed's keys: "<kind>:<symbol>:..." as the caller gives them, in whichever cache type.
    cache.set("features:AAPL:1d", [1.0])
    cache.set("prediction:AAPL:v3", 0.7, cache_type="prediction")
    cache.set("features:MSFT:1d", [2.0])
    outcome = EventInvalidator(cache).handle("market_data_update", {"symbol": "AAPL"})
    assert outcome.ok and outcome.removed == 2 and outcome.handled_by == ["market_data_update"]
    assert cache.get("features:AAPL:1d") is None
    assert cache.get("prediction:AAPL:v3", cache_type="prediction") is None
    assert cache.get("features:MSFT:1d") == [2.0]


def test_model_update_and_maintenance(cache: QueryCache) -> None:
    cache.set("prediction:q1:v2", 1, cache_type="prediction")
    cache.set("prediction:q1:v3", 2, cache_type="prediction")
    cache.set("model:ranker-large", b"w", cache_type="model")
    invalidator = EventInvalidator(cache)
    assert invalidator.handle("model_update", {"model_version": "v2", "model_type": "ranker"}).removed == 2
    assert cache.get("prediction:q1:v3", cache_type="prediction") == 2
    assert invalidator.handle("system_maintenance").removed == 1
    assert cache.get("prediction:q1:v3", cache_type="prediction") is None


def test_a_failing_handler_is_logged_and_never_stops_the_others(
    cache: QueryCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache.set("features:AAPL:1d", [1.0])
    invalidator = EventInvalidator(cache)

    def broken(data: Mapping[str, Any]) -> list[Any]:
        raise RuntimeError("downstream lookup failed")

    invalidator.register("market_data_update", broken)
    invalidator.register("market_data_update", lambda data: ["not an action"])
    outcome = invalidator.handle("market_data_update", {"symbol": "AAPL"})
    assert outcome.removed == 1 and outcome.handled_by == ["market_data_update"]
    assert set(outcome.failures) == {"test_a_failing_handler_is_logged_and_never_stops_the_others.<locals>.broken",
                                     "test_a_failing_handler_is_logged_and_never_stops_the_others.<locals>.<lambda>"}
    assert "downstream lookup failed" in caplog.text
    assert cache.get("features:AAPL:1d") is None
    bad = invalidator.handle("market_data_update", {})  # the built-in refuses: a failure, not an exception
    assert "market_data_update" in bad.failures and not bad.ok


def test_unknown_events_and_bad_data(cache: QueryCache) -> None:
    invalidator = EventInvalidator(cache)
    assert invalidator.handle("nobody_listens", {"x": 1}).handled_by == []
    with pytest.raises(EventError, match="mapping"):
        invalidator.handle("model_update", ["v2"])  # type: ignore[arg-type]  # the point


# -- between processes, on a Redis Stream -----------------------------------------------


def test_entries_round_trip_and_malformed_ones_are_refused() -> None:
    fields = {k.encode(): v.encode() for k, v in encode_event("model_update", {"model_version": "v2"}, "p1").items()}
    event = decode_entry(b"1-0", fields)
    assert (event.event_type, event.data, event.origin) == ("model_update", {"model_version": "v2"}, "p1")
    with pytest.raises(EventError, match="JSON-serializable"):
        encode_event("x", {"when": object()}, "p")
    with pytest.raises(EventError, match="not JSON"):
        decode_entry("2-0", {b"type": b"x", b"data": b"{nope"})
    with pytest.raises(EventError, match="lacks the 'type'"):
        decode_entry("3-0", {b"data": b"{}"})


def test_an_event_published_in_one_process_empties_the_others_l1(redis_endpoint: RedisEndpoint, prefix: str) -> None:
    publisher_config, reader_config = _config(redis_endpoint.url, prefix), _config(redis_endpoint.url, prefix)
    with QueryCache(publisher_config) as publisher, QueryCache(reader_config) as reader:
        publisher.set("features:AAPL:1d", [1.0])
        assert reader.get("features:AAPL:1d") == [1.0]  # now in the reader's L1 too
        stream = EventStream.from_config(publisher_config)
        reader_stream = EventStream.from_config(reader_config)
        subscriber = EventSubscriber(EventInvalidator(reader), reader_stream).start()
        try:
            EventInvalidator(publisher, stream=stream).publish("market_data_update", {"symbol": "AAPL"})
            assert _wait(lambda: subscriber.stats.applied == 1), subscriber.stats
            assert reader.get("features:AAPL:1d") is None  # no stale L1 copy
            assert subscriber.stats.own_skipped == 0
        finally:
            subscriber.stop()
            stream.client.delete(stream.key)
            stream.close()
            reader_stream.close()
        assert stream.key == stream_key(publisher_config) == f"{prefix}:events"


def test_a_subscriber_skips_its_own_events_and_malformed_entries(redis_endpoint: RedisEndpoint, prefix: str) -> None:
    config = _config(redis_endpoint.url, prefix)
    with QueryCache(config) as cache:
        stream = EventStream.from_config(config)
        invalidator = EventInvalidator(cache, stream=stream)
        subscriber = EventSubscriber(invalidator, stream).start()
        try:
            invalidator.publish("system_maintenance")
            stream.client.xadd(stream.key, {"type": "bad type!", "data": "{}"})
            stream.client.xadd(stream.key, {"type": "model_update", "data": '{"model_type": "ranker"}',
                                            "origin": "another-process"})
            assert _wait(lambda: subscriber.stats.applied == 1)
            assert (subscriber.stats.own_skipped, subscriber.stats.malformed) == (1, 1)
        finally:
            subscriber.stop()
            stream.client.delete(stream.key)
            stream.close()


def test_no_event_is_lost_while_redis_restarts(
    redis_server_factory: Callable[..., RedisServerProcess], prefix: str
) -> None:
    server = redis_server_factory(extra_config=("appendonly yes", "appendfsync always"))
    url = server.endpoint.url
    with QueryCache(_config(url, prefix)) as publisher, QueryCache(_config(url, prefix)) as reader:
        publisher.set("features:AAPL:1d", [1.0])
        assert reader.get("features:AAPL:1d") == [1.0]
        reader_stream = EventStream.from_config(_config(url, prefix))
        publisher_stream = EventStream.from_config(_config(url, prefix))
        subscriber = EventSubscriber(EventInvalidator(reader), reader_stream).start()
        try:
            server.stop()
            assert _wait(lambda: subscriber.stats.errors > 0)  # the subscriber lost its connection
            server.start()
            # Published before the subscriber is back: pub/sub would drop it, the stream keeps it.
            EventInvalidator(publisher, stream=publisher_stream).publish("market_data_update", {"symbol": "AAPL"})
            assert _wait(lambda: subscriber.stats.applied == 1, timeout=15), subscriber.stats
            assert reader.get("features:AAPL:1d") is None
            assert subscriber.stats.gaps == 0
        finally:
            subscriber.stop()
            reader_stream.close()
            publisher_stream.close()


def test_trimmed_or_deleted_events_are_detected_as_a_gap(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}events"
    redis_client.xadd(key, {"n": "0"})
    last, seen = start_position(redis_client.xinfo_stream(key))  # a subscriber starts here
    assert seen == 1
    redis_client.xadd(key, {"n": "1"})
    redis_client.xadd(key, {"n": "2"})
    assert not is_gap(last, seen, redis_client.xinfo_stream(key))  # nothing after us was lost
    redis_client.xtrim(key, maxlen=2, approximate=False)  # only what we had seen goes
    assert not is_gap(last, seen, redis_client.xinfo_stream(key))
    redis_client.xtrim(key, maxlen=1, approximate=False)  # "1" is gone before we read it
    assert is_gap(last, seen, redis_client.xinfo_stream(key))
    other = f"{key_prefix}events2"
    first = redis_client.xadd(other, {"n": "a"}).decode()
    second = redis_client.xadd(other, {"n": "b"})
    redis_client.xdel(other, second)  # deleted after our position
    assert is_gap(first, 1, redis_client.xinfo_stream(other))
    # Without Redis 7's counters, the first entry left after our position is the signal.
    assert is_gap("0-1", None, {"first-entry": (b"5-0", {})}) and not is_gap("6-0", None, {"first-entry": (b"5-0", {})})
    redis_client.delete(key, other)


async def test_the_async_side_applies_the_same_events(redis_endpoint: RedisEndpoint, prefix: str) -> None:
    config = _config(redis_endpoint.url, prefix)
    async with AsyncQueryCache(config) as reader:
        await reader.set("prediction:q1:v2", 1, cache_type="prediction")
        assert await reader.get("prediction:q1:v2", cache_type="prediction") == 1
        stream = AsyncEventStream.from_config(config)
        subscriber = await AsyncEventSubscriber(AsyncEventInvalidator(reader), stream).start()
        publisher_stream = EventStream.from_config(config)
        try:
            with QueryCache(_config(redis_endpoint.url, prefix)) as publisher:
                EventInvalidator(publisher, stream=publisher_stream).publish("model_update", {"model_version": "v2"})
            for _ in range(500):
                if subscriber.stats.applied:
                    break
                await asyncio.sleep(0.02)
            assert subscriber.stats.applied == 1
            assert await reader.get("prediction:q1:v2", cache_type="prediction") is None
            outcome = await AsyncEventInvalidator(reader).handle("system_maintenance")
            assert outcome.ok
        finally:
            await subscriber.stop()
            await stream.client.delete(stream.key)
            await stream.close()
            publisher_stream.close()


def test_the_position_checks_for_a_gap_once_after_each_outage() -> None:
    from qcache.ops.event_stream import _Position

    position = _Position("me", ("5-0", 5))
    assert not position.recovered()  # no outage, no check
    assert position.failed(OSError("down")) == pytest.approx(0.1)
    assert position.failed(OSError("down")) == pytest.approx(0.2)
    assert position.recovered() and not position.recovered()
    reply = [(b"k", [(b"6-0", {b"type": b"model_update", b"data": b'{"model_type": "x"}', b"origin": b"me"}),
                     (b"7-0", {b"type": b"model_update", b"data": b'{"model_type": "x"}', b"origin": b"you"})])]
    events = position.events(reply)
    assert [e.entry_id for e in events] == ["7-0"] and position.seen == 7
    assert position.stats.last_applied == "7-0" and position.stats.own_skipped == 1
