"""FilterSet: lookups, missing-value rules, AND whatever the order, one(), order_by()."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.datafile import Datafile
from assay.core.errors import FileNotInFilterSet, InvalidInput, MultipleFilesFound
from assay.core.filterset import FilterSet


def _file(
    name: str, tags: dict[str, Any] | None = None, labels: list[str] | None = None
) -> Datafile:
    # Remote paths: filtering never touches the disk.
    return Datafile(path=f"s3://bucket/{name}", tags=tags, labels=labels)


@pytest.fixture
def files() -> FilterSet[Datafile]:
    return FilterSet(
        [
            _file("a.csv", {"year": 2019, "kind": "raw", "sequence": 0}, ["raw", "wind"]),
            _file("b.csv", {"year": 2021, "kind": "clean", "sequence": 1}, ["clean", "wind"]),
            _file("c.txt", {"year": 2023, "sequence": 2, "note": None}, ["clean"]),
            _file("D.TXT", {"year": "unknown", "sequence": 3, "meta": {"source": "lidar"}}),
        ]
    )


def names(items: FilterSet[Datafile] | list[Datafile]) -> list[str]:
    return sorted(item.name for item in items)


# -- the set itself ----------------------------------------------------------------------------


def test_repr_matches_octue_shape() -> None:
    assert repr(FilterSet([_file("a.csv")])) == "<FilterSet({<Datafile('a.csv')>})>"
    assert repr(FilterSet()) == "<FilterSet()>"


def test_set_behaviour(files: FilterSet[Datafile]) -> None:
    first = next(iter(files))
    assert len(files) == 4
    assert first in files
    assert _file("zzz.csv") not in files
    assert [] not in files  # unhashable: simply not a member
    assert FilterSet(reversed(list(files))) == files
    assert len(FilterSet([first, first])) == 1
    both = files & FilterSet([first])
    assert isinstance(both, FilterSet) and list(both) == [first]
    assert hash(FilterSet(list(files))) == hash(FilterSet(reversed(list(files))))


def test_filterset_cannot_be_changed(files: FilterSet[Datafile]) -> None:
    with pytest.raises(AttributeError):
        files.add(_file("x.csv"))  # type: ignore[attr-defined]


def test_filter_returns_new_set_and_leaves_original(files: FilterSet[Datafile]) -> None:
    before = list(files)
    result = files.filter(name__ends_with=".csv")
    assert isinstance(result, FilterSet)
    assert list(files) == before


# -- lookups -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "a.csv"}, ["a.csv"]),
        ({"name__equals": "a.csv"}, ["a.csv"]),
        ({"name__not_equals": "a.csv"}, ["D.TXT", "b.csv", "c.txt"]),
        ({"name__iequals": "d.txt"}, ["D.TXT"]),
        ({"name__ends_with": ".csv"}, ["a.csv", "b.csv"]),
        ({"name__not_ends_with": ".csv"}, ["D.TXT", "c.txt"]),
        ({"name__starts_with": "c"}, ["c.txt"]),
        ({"name__contains": "txt"}, ["c.txt"]),
        ({"name__icontains": "TXT"}, ["D.TXT", "c.txt"]),
        ({"name__in": ["a.csv", "c.txt", "zzz"]}, ["a.csv", "c.txt"]),
        ({"name__not_in": ("a.csv", "c.txt")}, ["D.TXT", "b.csv"]),
        ({"extension": "csv"}, ["a.csv", "b.csv"]),
        ({"tags__year__gt": 2020}, ["b.csv", "c.txt"]),
        ({"tags__year__gte": 2021}, ["b.csv", "c.txt"]),
        ({"tags__year__lt": 2021}, ["a.csv"]),
        ({"tags__year__lte": 2021}, ["a.csv", "b.csv"]),
        ({"tags__year__in_range": (2020, 2023)}, ["b.csv", "c.txt"]),
        ({"tags__kind": "raw"}, ["a.csv"]),
        ({"tags__kind__exists": True}, ["a.csv", "b.csv"]),
        ({"tags__kind__exists": False}, ["D.TXT", "c.txt"]),
        ({"tags__note__is": None}, ["c.txt"]),
        ({"tags__note__exists": True}, ["c.txt"]),
        ({"tags__meta__source": "lidar"}, ["D.TXT"]),
        ({"tags__contains": "note"}, ["c.txt"]),
        ({"labels__contains": "wind"}, ["a.csv", "b.csv"]),
        ({"labels__not_contains": "wind"}, ["D.TXT", "c.txt"]),
        ({"labels__icontains": "WIND"}, ["a.csv", "b.csv"]),
        ({"labels__any": ["raw", "clean"]}, ["a.csv", "b.csv", "c.txt"]),
        ({"labels__all": ["clean", "wind"]}, ["b.csv"]),
        ({"labels__all": []}, ["D.TXT", "a.csv", "b.csv", "c.txt"]),
        ({"labels__any": []}, []),
        ({"labels__equals": {"clean"}}, ["c.txt"]),
        ({"timestamp__is": None}, ["D.TXT", "a.csv", "b.csv", "c.txt"]),
        ({"timestamp__is_not": None}, []),
    ],
)
def test_lookups(files: FilterSet[Datafile], kwargs: dict[str, Any], expected: list[str]) -> None:
    assert names(files.filter(**kwargs)) == expected


def test_missing_values_never_match_even_negated(files: FilterSet[Datafile]) -> None:
    # c.txt and D.TXT have no "kind": they match neither the lookup nor its negation ...
    assert names(files.filter(tags__kind__not_equals="raw")) == ["b.csv"]
    assert names(files.filter(tags__kind__not_in=["raw"])) == ["b.csv"]
    # ... so equals, not_equals and exists=False split the set in three.
    parts = [
        files.filter(tags__kind="raw"),
        files.filter(tags__kind__not_equals="raw"),
        files.filter(tags__kind__exists=False),
    ]
    assert sorted(name for part in parts for name in names(part)) == names(files)
    # A missing tag is not a tag whose value is null.
    assert names(files.filter(tags__kind__is=None)) == []
    assert names(files.filter(nonexistent_attribute="x")) == []


def test_incomparable_values_do_not_match(files: FilterSet[Datafile]) -> None:
    # D.TXT's year is "unknown": neither > 2020 nor <= 2020, and no TypeError escapes.
    assert "D.TXT" not in names(files.filter(tags__year__gt=2020))
    assert "D.TXT" not in names(files.filter(tags__year__lte=2020))
    assert names(files.filter(tags__sequence__starts_with="1")) == []
    assert names(files.filter(tags__sequence__not_starts_with="1")) == []


def test_ignore_items_without_attribute_false_raises(files: FilterSet[Datafile]) -> None:
    with pytest.raises(InvalidInput, match=r"filter 'tags__kind': <Datafile\('c.txt'\)> has no"):
        files.filter(ignore_items_without_attribute=False, tags__kind="raw")
    assert len(files.filter(ignore_items_without_attribute=False, tags__year__exists=True)) == 4


# -- bad filters -------------------------------------------------------------------------------


def test_unknown_lookup_is_named(files: FilterSet[Datafile]) -> None:
    with pytest.raises(InvalidInput, match=r"unknown filter lookup 'endswith' in 'name__endswith'"):
        files.filter(name__endswith=".csv")
    with pytest.raises(
        InvalidInput, match=r"unknown filter lookup 'bigger' in 'tags__year__bigger'"
    ):
        files.filter(tags__year__bigger=3)


def test_unknown_lookup_raises_whatever_the_filter_order(files: FilterSet[Datafile]) -> None:
    # name="nothing" rejects every item first; the bad lookup must still be reported.
    orders: list[dict[str, Any]] = [
        {"name": "nothing", "name__endswith": "x"},
        {"name__endswith": "x", "name": "nothing"},
    ]
    for kwargs in orders:
        with pytest.raises(InvalidInput, match="endswith"):
            files.filter(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name__in": 5}, r"invalid filter name__in=5: 'in' expects a list, tuple or set"),
        ({"name__in": "abc"}, r"'in' expects a list, tuple or set"),
        ({"labels__any": "raw"}, r"'any' expects a list, tuple or set"),
        ({"tags__kind__exists": "yes"}, r"'exists' expects True or False"),
        ({"name__starts_with": 3}, r"'starts_with' expects a string"),
        ({"tags__year__in_range": (1,)}, r"'in_range' expects a \(low, high\) pair"),
        ({"equals": 3}, r"invalid filter 'equals': write filters as"),
        ({"tags____x": 3}, r"invalid filter 'tags____x'"),
        ({"_tags__kind": "raw"}, r"private attribute '_tags'"),
    ],
)
def test_bad_filters(files: FilterSet[Datafile], kwargs: dict[str, Any], message: str) -> None:
    before = list(files)
    with pytest.raises(InvalidInput, match=message):
        files.filter(**kwargs)
    assert list(files) == before


def test_methods_are_not_filterable(files: FilterSet[Datafile]) -> None:
    assert len(files.filter(open__exists=True)) == 0
    assert len(files.filter(replace="x")) == 0


# -- AND, whatever the order -------------------------------------------------------------------


def test_several_filters_and_chained_filters_agree(files: FilterSet[Datafile]) -> None:
    combined = files.filter(labels__contains="wind", tags__year__gt=2020)
    assert names(combined) == ["b.csv"]
    assert files.filter(tags__year__gt=2020, labels__contains="wind") == combined
    assert files.filter(tags__year__gt=2020).filter(labels__contains="wind") == combined
    assert files.filter(labels__contains="wind").filter(tags__year__gt=2020) == combined


_POOL_NAMES = ["a.csv", "b.csv", "c.txt", "d.json", "e.csv", "f.txt"]
_FILTER_POOL: list[tuple[str, Any]] = [
    ("name__ends_with", ".csv"),
    ("name__not_starts_with", "b"),
    ("name__in", ["a.csv", "c.txt", "e.csv"]),
    ("tags__year__gt", 2020),
    ("tags__year__lte", 2022),
    ("tags__kind", "raw"),
    ("tags__kind__exists", False),
    ("tags__kind__not_equals", "clean"),
    ("labels__contains", "wind"),
    ("labels__any", ["raw", "final"]),
    ("labels__all", ["wind", "raw"]),
    ("labels__not_contains", "final"),
]

_datafiles = st.lists(
    st.builds(
        _file,
        st.sampled_from(_POOL_NAMES),
        st.fixed_dictionaries(
            {},
            optional={
                "year": st.one_of(st.integers(2015, 2025), st.just("unknown"), st.none()),
                "kind": st.sampled_from(["raw", "clean"]),
            },
        ),
        st.lists(st.sampled_from(["wind", "raw", "final", "clean"]), unique=True),
    ),
    max_size=8,
).map(lambda items: FilterSet({item.path: item for item in items}.values()))


@settings(max_examples=200, deadline=None)
@given(
    items=_datafiles,
    chosen=st.lists(
        st.sampled_from(_FILTER_POOL), unique_by=lambda f: f[0], min_size=1, max_size=5
    ),
    data=st.data(),
)
def test_filter_order_never_matters(
    items: FilterSet[Datafile], chosen: list[tuple[str, Any]], data: st.DataObject
) -> None:
    permuted = data.draw(st.permutations(chosen))
    expected = FilterSet(
        item for item in items if all(item in items.filter(**{key: value}) for key, value in chosen)
    )
    assert items.filter(**dict(chosen)) == expected
    assert items.filter(**dict(permuted)) == expected
    chained = functools.reduce(lambda acc, kv: acc.filter(**{kv[0]: kv[1]}), permuted, items)
    assert chained == expected


# -- one ---------------------------------------------------------------------------------------


def test_one(files: FilterSet[Datafile]) -> None:
    assert files.one(tags__kind="raw").name == "a.csv"
    assert FilterSet([_file("x.csv")]).one().name == "x.csv"


def test_one_with_no_match(files: FilterSet[Datafile]) -> None:
    with pytest.raises(FileNotInFilterSet) as caught:
        files.one(name__ends_with=".parquet")
    assert str(caught.value) == "no item matches name__ends_with='.parquet' among 4 item(s)"


def test_one_with_several_matches(files: FilterSet[Datafile]) -> None:
    with pytest.raises(MultipleFilesFound) as caught:
        files.one(labels__contains="wind")
    message = str(caught.value)
    assert message.startswith("2 items match labels__contains='wind': ")
    assert "<Datafile('a.csv')>" in message and "<Datafile('b.csv')>" in message
    assert message.endswith("add a filter to pick one")


# -- order_by ----------------------------------------------------------------------------------


def test_order_by_returns_a_list(files: FilterSet[Datafile]) -> None:
    ordered = files.order_by("name")
    assert isinstance(ordered, list)
    assert [f.name for f in ordered] == ["D.TXT", "a.csv", "b.csv", "c.txt"]
    assert [f.name for f in files.order_by("name", reverse=True)] == [
        "c.txt",
        "b.csv",
        "a.csv",
        "D.TXT",
    ]


def test_order_by_tag_and_checks(files: FilterSet[Datafile]) -> None:
    by_sequence = files.order_by("tags__sequence", check_start_value=0, check_constant_increment=1)
    assert [f.tags["sequence"] for f in by_sequence] == [0, 1, 2, 3]
    assert files.order_by("tags.sequence") == by_sequence  # Octue's dotted form
    reverse = files.order_by(
        "tags__sequence", reverse=True, check_start_value=3, check_constant_increment=-1
    )
    assert reverse == by_sequence[::-1]


def test_order_by_float_increment() -> None:
    frames = FilterSet(_file(f"{i}.dat", {"t": round(i * 0.1, 10)}) for i in range(5))
    ordered = frames.order_by("tags__t", check_start_value=0.0, check_constant_increment=0.1)
    assert len(ordered) == 5


def test_order_by_broken_sequence(files: FilterSet[Datafile]) -> None:
    with pytest.raises(InvalidInput) as caught:
        files.order_by("tags__sequence", check_start_value=1)
    assert str(caught.value) == (
        "ordering by 'tags__sequence': expected the first value to be 1, got 0"
    )
    gapped = files.filter(tags__sequence__not_equals=1)
    with pytest.raises(InvalidInput) as caught:
        gapped.order_by("tags__sequence", check_constant_increment=1)
    assert str(caught.value) == (
        "ordering by 'tags__sequence': expected a constant increment of 1, but 0 is followed by 2"
    )
    with pytest.raises(InvalidInput, match="got no items"):
        FilterSet().order_by("name", check_start_value=0)
    with pytest.raises(InvalidInput, match="cannot check an increment between"):
        files.order_by("name", check_constant_increment=1)


def test_order_by_missing_or_incomparable(files: FilterSet[Datafile]) -> None:
    with pytest.raises(InvalidInput) as caught:
        files.order_by("tags__kind")
    assert "cannot order by 'tags__kind': <Datafile(" in str(caught.value)
    assert "has no value for it" in str(caught.value)
    with pytest.raises(
        InvalidInput, match="cannot order by 'tags__year': the values are not comparable"
    ):
        files.order_by("tags__year")
    for bad in ("", "tags__", "_tags"):
        with pytest.raises(InvalidInput, match="invalid attribute path"):
            files.order_by(bad)
