"""The msgpack serializer: what it accepts, what it refuses, and custom types."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from qcache.codec import (
    Codec,
    CodecIntegrityError,
    IntegrityReason,
    MsgpackSerializer,
    Serializer,
    SignedPickleSerializer,
    TypeRegistry,
    register_dataclass,
)
from qcache.errors import IntegrityError, SerializationError
from qcache.types import CacheLevel

from .support import assert_identical


class Color(enum.IntEnum):
    RED = 1


class Opaque:
    pass


@pytest.fixture
def registry() -> TypeRegistry:
    """A private registry, so tests do not leak types into the default one."""
    return TypeRegistry()


@pytest.mark.parametrize(
    ("value", "type_in_message"),
    [
        (Opaque(), "Opaque"),
        (Decimal("1.5"), "decimal.Decimal"),
        (Color.RED, "Color"),
        (CacheLevel.BOTH, "CacheLevel"),
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        ([1, {"nested": [object()]}], "object"),
        (np.ma.masked_array([1, 2], mask=[False, True]), "MaskedArray"),
        (np.array([object()], dtype=object), "dtype object"),
        (np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]), "dtype"),
    ],
    ids=[
        "class", "decimal", "intenum", "str-enum", "dict-subclass", "nested", "masked-array", "object-array",
        "structured",
    ],
)
def test_unsupported_values_raise_serialization_error_naming_the_type(value: Any, type_in_message: str) -> None:
    with pytest.raises(SerializationError, match=type_in_message):
        MsgpackSerializer().dumps(value)


def test_unsupported_value_through_the_codec_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="Opaque"):
        Codec().encode({"x": Opaque()}, key="k")


def test_lone_surrogates_are_refused_clearly() -> None:
    with pytest.raises(SerializationError, match="surrogate|encode"):
        MsgpackSerializer().dumps("\ud800")


def test_bytes_like_values_come_back_as_bytes() -> None:
    serializer = MsgpackSerializer()
    assert serializer.loads(serializer.dumps(bytearray(b"ab"))) == b"ab"
    assert type(serializer.loads(serializer.dumps(memoryview(b"cd")))) is bytes


def test_datetimes_keep_instant_offset_and_fold() -> None:
    serializer = MsgpackSerializer()
    values = [
        dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-7, minutes=-30))),
        dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(microseconds=1))),  # isoformat loses this
        dt.datetime(2021, 11, 7, 1, 30, fold=1),
        dt.datetime.max,
    ]
    for value in values:
        back = serializer.loads(serializer.dumps(value))
        assert back == value and back.utcoffset() == value.utcoffset() and back.fold == value.fold


def test_tzinfo_without_an_offset_is_refused() -> None:
    class Vague(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> None:
            return None

        def dst(self, when: dt.datetime | None) -> None:
            return None

        def tzname(self, when: dt.datetime | None) -> None:
            return None

    with pytest.raises(SerializationError, match="no UTC offset"):
        MsgpackSerializer().dumps(dt.datetime(2020, 1, 1, tzinfo=Vague()))


def test_numpy_scalars_keep_their_dtype() -> None:
    serializer = MsgpackSerializer()
    for value in (np.float32(0.1), np.int8(-3), np.uint64(2**64 - 1), np.datetime64("2020-01-01", "D"), np.str_("")):
        assert_identical(value, serializer.loads(serializer.dumps(value)))


def test_registered_dataclass_round_trips_nested(registry: TypeRegistry) -> None:
    @dataclasses.dataclass(frozen=True)
    class Hit:
        path: str
        score: float
        tags: tuple[str, ...] = ()
        derived: int = dataclasses.field(init=False, default=0)

    @dataclasses.dataclass
    class Page:
        hits: list[Hit]
        total: int

    registry.register_dataclass(Hit, name="test.hit")
    registry.register_dataclass(name="test.page")(Page)
    serializer = MsgpackSerializer(registry)
    page = Page([Hit("a.py", 0.5, ("x",)), Hit("b.py", 0.25)], total=2)
    back = serializer.loads(serializer.dumps(page))
    assert back == page
    assert type(back.hits[0]) is Hit and back.hits[0].tags == ("x",)


def test_register_type_with_functions(registry: TypeRegistry) -> None:
    registry.register(Decimal, name="decimal", to_state=str, from_state=Decimal)
    serializer = MsgpackSerializer(registry)
    assert serializer.loads(serializer.dumps([Decimal("1.10")])) == [Decimal("1.10")]


def test_default_registry_decorator_is_usable() -> None:
    @register_dataclass(name="tests.codec.point")
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    codec = Codec()
    assert codec.decode(codec.encode(Point(1, 2), key="k"), key="k") == Point(1, 2)


def test_registry_refuses_conflicts_and_builtins(registry: TypeRegistry) -> None:
    registry.register(Opaque, name="opaque", to_state=lambda o: None, from_state=lambda s: Opaque())
    registry.register(Opaque, name="opaque", to_state=lambda o: None, from_state=lambda s: Opaque())  # same: fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Decimal, name="opaque", to_state=str, from_state=Decimal)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Opaque, name="other", to_state=lambda o: None, from_state=lambda s: Opaque())
    with pytest.raises(ValueError, match="natively"):
        registry.register(dt.datetime, name="dt", to_state=str, from_state=str)
    with pytest.raises(ValueError, match="not a dataclass"):
        registry.register_dataclass(Opaque)


def test_type_unknown_to_the_reader_is_an_integrity_error(registry: TypeRegistry) -> None:
    registry.register(Opaque, name="only.in.writer", to_state=lambda o: 1, from_state=lambda s: Opaque())
    writer = Codec(registry=registry)
    reader = Codec(registry=TypeRegistry())
    data = writer.encode(Opaque(), key="k")
    with pytest.raises(CodecIntegrityError) as info:
        reader.decode(data, key="k")
    assert info.value.reason is IntegrityReason.UNKNOWN_TYPE
    assert isinstance(info.value, IntegrityError)


def test_custom_type_rejecting_its_state_is_an_integrity_error(registry: TypeRegistry) -> None:
    @dataclasses.dataclass
    class V1:
        a: int
        b: int

    registry.register_dataclass(V1, name="evolving")
    data = Codec(registry=registry).encode(V1(1, 2), key="k")

    @dataclasses.dataclass
    class V2:  # a later release dropped field b
        a: int

    newer = TypeRegistry()
    newer.register_dataclass(V2, name="evolving")
    with pytest.raises(CodecIntegrityError) as info:
        Codec(registry=newer).decode(data, key="k")
    assert info.value.reason is IntegrityReason.MALFORMED


@pytest.fixture(params=["msgpack", "signed-pickle"])
def any_serializer(request: pytest.FixtureRequest) -> Serializer:
    """Each serializer the header can name."""
    if request.param == "msgpack":
        return MsgpackSerializer()
    return SignedPickleSerializer(b"c" * 32)


class TestSerializerContract:
    """What every serializer must do."""

    VALUES: tuple[Any, ...] = (None, True, -(2**70), 0.1, "héllo", b"\x00", [1, (2, 3)], {"a": {1: None}})

    def test_round_trip_keeps_types(self, any_serializer: Serializer) -> None:
        for value in self.VALUES:
            assert_identical(value, any_serializer.loads(any_serializer.dumps(value)))

    def test_accepts_memoryview_input(self, any_serializer: Serializer) -> None:
        data = any_serializer.dumps({"k": [1, 2]})
        assert any_serializer.loads(memoryview(data)) == {"k": [1, 2]}

    def test_ids_fit_the_header_and_differ(self, any_serializer: Serializer) -> None:
        assert 0 < any_serializer.id < 256
        assert {MsgpackSerializer.id, SignedPickleSerializer.id} == {1, 2}
