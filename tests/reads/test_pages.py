"""Keyset pagination of bundle lists: every bundle once, stable under inserts, bad cursors."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_helpers import make_bundles

from assay.bundles.pages import decode_cursor, encode_cursor, page_bundles
from assay.bundles.workspace import open_workspace
from assay.core.errors import ContextNotFound, InvalidInput


def _all_pages(limit: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = page_bundles(open_workspace(), "lab", limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append([r.uuid for r in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_pages_cover_every_bundle_once_newest_first(assay_home: Path) -> None:
    names = [f"b{i:02d}" for i in range(23)]
    # Ties in `created` are broken by uuid, so equal times never skip or repeat a row.
    created = {name: 1_700_000_000.0 + i // 3 for i, name in enumerate(names)}
    uuids = make_bundles("lab", names, created=created)
    pages = _all_pages(5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [u for page in pages for u in page]
    expected = sorted(uuids.values(), key=lambda u: (created[_name(uuids, u)], u), reverse=True)
    assert flat == expected


def _name(uuids: dict[str, str], uuid: str) -> str:
    return next(name for name, value in uuids.items() if value == uuid)


def test_an_exact_page_has_no_next_cursor(assay_home: Path) -> None:
    make_bundles("lab", ["a", "b", "c", "d"])
    assert [len(p) for p in _all_pages(4)] == [4]
    assert [len(p) for p in _all_pages(2)] == [2, 2]


def test_new_bundles_do_not_shift_the_pages_being_read(assay_home: Path) -> None:
    make_bundles("lab", [f"old{i}" for i in range(6)])
    first = page_bundles(open_workspace(), "lab", limit=3)
    make_bundles("lab", ["newer"], created={"newer": 1_800_000_000.0})
    second = page_bundles(open_workspace(), "lab", limit=3, cursor=first.next_cursor)
    seen = [r.name for r in first.items + second.items]
    assert seen == ["old5", "old4", "old3", "old2", "old1", "old0"]


def test_filters_apply_across_pages(assay_home: Path) -> None:
    names = [f"run{i}" for i in range(10)] + ["other"]
    tags = {name: {"kind": "even" if i % 2 == 0 else "odd"} for i, name in enumerate(names)}
    make_bundles("lab", names, tags=tags)
    pages = _all_pages(2, name="run*", tags={"kind": "even"})
    assert sum(len(p) for p in pages) == 5


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        encode_cursor("j", (1.0, "x")),
        encode_cursor("b", ("x", "y")),
        encode_cursor("b", (1.0,)),
    ],
)
def test_bad_cursors_are_refused(assay_home: Path, cursor: str) -> None:
    make_bundles("lab", ["a"])
    if cursor == "":
        assert len(page_bundles(open_workspace(), "lab", cursor=cursor).items) == 1
        return
    with pytest.raises(InvalidInput, match="cursor") as caught:
        page_bundles(open_workspace(), "lab", cursor=cursor)
    assert caught.value.details == {"field": "cursor"}


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_bad_limits_are_refused(assay_home: Path, limit: int) -> None:
    make_bundles("lab", ["a"])
    with pytest.raises(InvalidInput, match="limit"):
        page_bundles(open_workspace(), "lab", limit=limit)


def test_unknown_context(assay_home: Path) -> None:
    with pytest.raises(ContextNotFound):
        page_bundles(open_workspace(), "nowhere")


def test_cursor_round_trip() -> None:
    assert decode_cursor("b", encode_cursor("b", (1.25, "u")), (float, str)) == (1.25, "u")
