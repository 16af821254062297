"""search: name globs, tags (AND), committed, before/after dates, newest first."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from assay import api
from assay.core.errors import InvalidInput
from helpers import set_created, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _add(ctx: str, tmp_path: Path, name: str, content: str, **tags: str) -> str:
    source = write_files(tmp_path / name / content, {"f.txt": content})
    return api.add(ctx, name, source / "f.txt", tags=tags or None).uuid


def _names(bundles: list[api.Bundle]) -> list[str]:
    return [b.name for b in bundles]


def test_newest_first(ctx: str, tmp_path: Path) -> None:
    uuids = [_add(ctx, tmp_path, f"b{i}", str(i)) for i in range(4)]
    for offset, uuid in enumerate(uuids):
        set_created(uuid, 1_700_000_000 + offset)

    assert [b.uuid for b in api.search(ctx)] == list(reversed(uuids))


def test_name_globs(ctx: str, tmp_path: Path) -> None:
    for name in ["model_a", "model_b", "model_ab", "modelXa", "data.csv", "data1csv"]:
        _add(ctx, tmp_path, name, name)

    assert sorted(_names(api.search(ctx, "model_*"))) == ["model_a", "model_ab", "model_b"]
    assert sorted(_names(api.search(ctx, "model_?"))) == ["model_a", "model_b"]
    assert sorted(_names(api.search(ctx, "model?a"))) == ["modelXa", "model_a"]
    assert _names(api.search(ctx, "model_ab")) == ["model_ab"]  # no wildcard: exact
    assert _names(api.search(ctx, "data.csv")) == ["data.csv"]  # '.' is literal
    assert sorted(_names(api.search(ctx, "data?csv"))) == ["data.csv", "data1csv"]
    assert sorted(_names(api.search(ctx, "*a"))) == ["modelXa", "model_a"]
    assert len(api.search(ctx, "*")) == 6
    assert api.search(ctx, "nothing*") == []


def test_name_globs_are_case_sensitive_on_every_backend(ctx: str, tmp_path: Path) -> None:
    """SQLite's LIKE folds ASCII case by default; globs must behave as on PostgreSQL."""
    _add(ctx, tmp_path, "Model", "upper")
    _add(ctx, tmp_path, "model", "lower")

    assert _names(api.search(ctx, "model")) == ["model"]
    assert _names(api.search(ctx, "mod*")) == ["model"]


def test_tags_are_anded(ctx: str, tmp_path: Path) -> None:
    _add(ctx, tmp_path, "both", "1", team="x", stage="raw")
    _add(ctx, tmp_path, "team", "2", team="x")
    _add(ctx, tmp_path, "stage", "3", stage="raw")
    _add(ctx, tmp_path, "other", "4", team="x", stage="clean")

    found = api.search(ctx, search_tags={"team": "x", "stage": "raw"})
    assert _names(found) == ["both"]
    assert sorted(_names(api.search(ctx, search_tags={"team": "x"}))) == [
        "both",
        "other",
        "team",
    ]
    assert sorted(_names(api.search(ctx, "*t*", search_tags={"team": "x"}))) == [
        "both",
        "other",
        "team",
    ]
    assert api.search(ctx, search_tags={"team": "y"}) == []


def test_tag_values_are_compared_as_text(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path, {"f.txt": "x"})
    api.add(ctx, "n", source / "f.txt", tags={"epoch": 3})

    assert _names(api.search(ctx, search_tags={"epoch": 3})) == ["n"]
    assert _names(api.search(ctx, search_tags={"epoch": "3"})) == ["n"]
    assert api.get(ctx, "n").tags == {"epoch": "3"}


def test_committed_filter(ctx: str, tmp_path: Path) -> None:
    _add(ctx, tmp_path, "kept", "1")
    _add(ctx, tmp_path, "draft", "2")
    api.commit(ctx, "kept")

    assert _names(api.search(ctx, is_committed=True)) == ["kept"]
    assert _names(api.search(ctx, is_committed=False)) == ["draft"]
    assert sorted(_names(api.search(ctx, is_committed=None))) == ["draft", "kept"]


def _local(*parts: int) -> float:
    return datetime(*parts).timestamp()  # naive = local time, as users type dates


@pytest.fixture
def dated(ctx: str, tmp_path: Path) -> dict[str, str]:
    """Three bundles made on 2009-11-30 12:00, 2009-12-01 12:13:42 and 2009-12-02 08:00."""
    uuids = {}
    for name, when in [
        ("nov30", _local(2009, 11, 30, 12, 0, 0)),
        ("dec01", _local(2009, 12, 1, 12, 13, 42)),
        ("dec02", _local(2009, 12, 2, 8, 0, 0)),
    ]:
        uuids[name] = _add(ctx, tmp_path, name, name)
        set_created(uuids[name], when)
    return uuids


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("12-1-2009", None, ["nov30"]),  # Disdat's MM-DD-YYYY
        ("2009-12-01", None, ["nov30"]),  # ISO date
        (None, "12-1-2009", ["dec02", "dec01"]),
        (None, "2009-12-01", ["dec02", "dec01"]),
        (None, "12-1-2009 12:13:42", ["dec02", "dec01"]),  # after is inclusive
        (None, "2009-12-01T12:13:43", ["dec02"]),
        ("12-1-2009 12:13:42", None, ["nov30"]),  # before is exclusive
        ("2009-12-01T12:13:43", None, ["dec01", "nov30"]),
        ("12-2-2009", "12-1-2009", ["dec01"]),
        (datetime(2009, 12, 2), datetime(2009, 11, 1), ["dec01", "nov30"]),
        (None, "01-01-2010", []),
    ],
)
def test_before_and_after(
    ctx: str,
    dated: dict[str, str],
    before: object,
    after: object,
    expected: list[str],
) -> None:
    assert _names(api.search(ctx, before=before, after=after)) == expected


def test_unreadable_date_is_refused(ctx: str) -> None:
    with pytest.raises(InvalidInput, match="cannot read the date '31/12/2009'"):
        api.search(ctx, before="31/12/2009")


def test_all_conditions_together(ctx: str, dated: dict[str, str], tmp_path: Path) -> None:
    api.commit(ctx, uuid=dated["dec01"])
    api.get(ctx, uuid=dated["dec01"]).add_tags({"ok": "yes"})
    api.get(ctx, uuid=dated["dec02"]).add_tags({"ok": "yes"})

    found = api.search(
        ctx,
        "dec*",
        search_tags={"ok": "yes"},
        is_committed=True,
        after="11-30-2009 13:00",
        before="2009-12-03",
    )

    assert _names(found) == ["dec01"]
