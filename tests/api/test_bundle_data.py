"""add_data round trips: every value comes back exactly as it was saved."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import api
from assay.bundle import Bundle
from assay.core.errors import InvalidInput, InvalidTag
from helpers import blob_files, catalog_counts

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _round_trip(ctx: str, value: Any, name: str = "v") -> Any:
    with Bundle(ctx, name) as bundle:
        bundle.add_data(value)
    return api.cat(ctx, name)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and types compared exactly (tuple is not list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -(2**70),
        3.25,
        -0.0,
        "text",
        "",
        "ünïcødé ✓ 日本",
        True,
        False,
        None,
        [],
        {},
        (),
        [1, "a", None],
        (1, "a", None),
        {"a": 1, "b": [1, 2], "c": {"d": (3, 4)}},
        [(1, [2, (3, {"x": ()})])],
        float("nan"),
        float("inf"),
        float("-inf"),
        {"scores": [1.0, float("nan"), float("inf"), float("-inf")]},
        {"$assay": 1},
        {"$assay": {"kind": "file", "path": "etc/passwd"}, "other": [1]},
        [{"$assay": {"kind": "tuple", "items": [1]}}],
        {"nested": {"$assay": {"$assay": "deep"}}},
        "/etc/passwd",  # a string that looks like a path stays a string
    ],
    ids=repr,
)
def test_values_round_trip_exactly(ctx: str, value: Any) -> None:
    back = _round_trip(ctx, value)
    assert _same(back, value), f"{value!r} came back as {back!r}"


def test_latest_add_data_wins(ctx: str) -> None:
    with Bundle(ctx, "v") as bundle:
        bundle.add_data(1)
        bundle.add_data({"final": True})
    assert api.cat(ctx, "v") == {"final": True}


def test_presentations(ctx: str) -> None:
    expected = {"s": (5, "scalar"), "d": ({"a": 1}, "dict"), "l": ([1], "list")}
    expected |= {"t": ((1,), "tuple"), "n": (None, "none"), "f": (float("nan"), "scalar")}
    for name, (value, presentation) in expected.items():
        with Bundle(ctx, name) as bundle:
            bundle.add_data(value)
        assert bundle.presentation == presentation, name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "int key"}, "dict keys must be strings"),
        ({"ok": object()}, "cannot store a value of type object"),
        ([b"bytes"], "cannot store a value of type bytes"),
        ({"s": {1, 2}}, "cannot store a value of type set"),
    ],
    ids=["int-key", "object", "bytes", "set"],
)
def test_unstorable_values_are_refused_and_nothing_is_written(
    ctx: str, assay_home: Path, value: Any, message: str
) -> None:
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match=message):
        _round_trip(ctx, value)
    assert catalog_counts() == rows
    assert blob_files(assay_home) == {}


def test_numpy_scalars_are_stored_as_python_values(ctx: str) -> None:
    numpy = pytest.importorskip("numpy")
    back = _round_trip(ctx, {"i": numpy.int64(7), "f": numpy.float32(0.5), "b": numpy.bool_(1)})
    assert back == {"i": 7, "f": 0.5, "b": True}
    assert type(back["i"]) is int


# -- DataFrames -----------------------------------------------------------------------------
def test_dataframe_round_trip(ctx: str, assay_home: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.DataFrame(
        {
            "name": ["a", "b", None],
            "value": [1.5, float("nan"), -3.0],
            "count": pandas.array([1, None, 3], dtype="Int64"),
            "when": pandas.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        },
        index=pandas.Index([10, 20, 30], name="id"),
    )

    with Bundle(ctx, "frame") as bundle:
        bundle.add_data(frame)

    back = api.cat(ctx, "frame")
    pandas.testing.assert_frame_equal(back, frame)
    assert bundle.presentation == "dataframe"
    assert [f.path for f in bundle.files] == ["frame.parquet"]
    assert not any(p.name.startswith("scratch-") for p in assay_home.iterdir())


def test_several_dataframes_with_other_values(ctx: str) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    first = pandas.DataFrame({"a": [1, 2]})
    second = pandas.DataFrame({"b": ["x"]})

    back = _round_trip(ctx, {"first": first, "more": [second, 3], "pair": (first, "t")})

    pandas.testing.assert_frame_equal(back["first"], first)
    pandas.testing.assert_frame_equal(back["more"][0], second)
    assert back["more"][1] == 3
    assert isinstance(back["pair"], tuple)
    pandas.testing.assert_frame_equal(back["pair"][0], first)


# -- a property over arbitrary JSON-like values ---------------------------------------------
_keys = st.one_of(st.sampled_from(["$assay", "kind", "items", "path", "value"]), st.text())
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_keys, children, max_size=4),
    ),
    max_leaves=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=_values)
def test_any_json_like_value_round_trips(sqlite_home: Path, value: Any) -> None:
    if not any(c.name == CTX for c in api.ls_contexts()):
        api.context(CTX)
    back = _round_trip(CTX, value)
    assert _same(back, value), f"{value!r} came back as {back!r}"


def test_tag_value_with_a_nul_character_is_refused_on_every_backend(
    ctx: str, assay_home: Path
) -> None:
    """PostgreSQL text cannot hold NUL, so neither backend accepts it (they must agree)."""
    rows = catalog_counts()

    with (
        pytest.raises(InvalidTag, match="cannot contain a NUL character"),
        Bundle(ctx, "b") as bundle,
    ):
        bundle.add_data(1)
        bundle.add_tags({"k": "a\x00b"})
    with pytest.raises(InvalidTag, match="cannot contain a NUL character"):
        api.search(ctx, search_tags={"k": "a\x00b"})

    assert catalog_counts() == rows
    assert blob_files(assay_home) == {}
