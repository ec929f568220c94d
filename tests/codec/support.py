"""Helpers shared by the codec tests: exact comparison, value strategies, a manual clock."""

from __future__ import annotations

import datetime as dt
import itertools
import struct
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcache.codec import available_compressors


def assert_identical(expected: Any, actual: Any, path: str = "value") -> None:
    """Assert ``actual`` equals ``expected`` with the same types all the way down, floats bit for bit."""
    assert type(actual) is type(expected), f"{path}: {type(expected).__name__} came back as {type(actual).__name__}"
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.dtype.str == expected.dtype.str, f"{path}: dtype"
        assert actual.shape == expected.shape, f"{path}: shape"
        assert actual.tobytes() == expected.tobytes(), f"{path}: array bytes differ"
        assert not actual.flags.writeable, f"{path}: decoded arrays are read-only views"
    elif isinstance(expected, np.generic):
        assert actual.dtype.str == expected.dtype.str, f"{path}: dtype"
        assert actual.tobytes() == expected.tobytes(), f"{path}: scalar bytes differ"
    elif isinstance(expected, float):
        assert struct.pack(">d", actual) == struct.pack(">d", expected), f"{path}: {expected!r} != {actual!r}"
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_identical(e, a, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys or their order differ"
        for k in expected:
            assert_identical(expected[k], actual[k], f"{path}[{k!r}]")
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected, f"{path}: members differ"
    elif isinstance(expected, dt.datetime):
        assert actual == expected and actual.utcoffset() == expected.utcoffset(), f"{path}: {expected} != {actual}"
        assert actual.replace(tzinfo=None) == expected.replace(tzinfo=None), f"{path}: wall time"
        assert actual.fold == expected.fold, f"{path}: fold"
    else:
        assert actual == expected, f"{path}: {expected!r} != {actual!r}"


# Python strings with lone surrogates cannot be UTF-8 encoded; msgpack refuses them (tested separately).
valid_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)

fixed_offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)),
)

numpy_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(endianness="?", max_len=6),
    hnp.unicode_string_dtypes(endianness="?", max_len=6),
)

numpy_arrays = hnp.arrays(
    dtype=numpy_dtypes,
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)

hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    valid_text,
    st.binary(max_size=40),
    st.datetimes(timezones=st.none() | st.just(dt.UTC) | fixed_offsets),
    st.dates(),
    st.timedeltas(),
)

scalars = st.one_of(
    hashable_scalars,
    st.floats(allow_nan=True, allow_infinity=True),
    numpy_arrays,
    numpy_arrays.filter(lambda a: a.size > 0).map(lambda a: a.reshape(-1)[0]),  # numpy scalars
)

hashable_values = st.recursive(
    hashable_scalars,
    lambda children: st.tuples(children, children) | st.frozensets(children, max_size=4),
    max_leaves=8,
)



def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.lists(children, max_size=5).map(tuple),
            st.dictionaries(hashable_values, children, max_size=5),
            st.sets(hashable_values, max_size=4),
            st.frozensets(hashable_values, max_size=4),
        ),
        max_leaves=20,
    )


#: Everything the msgpack serializer supports, nested.
supported_values = _nested(scalars)
#: The same without numpy: numpy's own pickle support does not keep every dtype
#: bit for bit (e.g. the byte order of empty datetime64 arrays), so the signed
#: pickle fallback is checked on plain Python values.
python_values = _nested(st.one_of(hashable_scalars, st.floats(allow_nan=True, allow_infinity=True)))


class ManualClock:
    """A wall clock that only moves when the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: Every (compression algorithm, encrypt) pair this installation supports.
STAGE_COMBINATIONS = list(itertools.product(available_compressors(), (False, True)))


def stage_id(combo: tuple[str, bool]) -> str:
    """Readable test id for a stage combination."""
    algorithm, encrypt = combo
    return f"{algorithm}-{'aesgcm' if encrypt else 'plain'}"
