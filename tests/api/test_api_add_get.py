"""add / get / cat / commit through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.core.errors import (
    AmbiguousReference,
    BundleNotFound,
    InvalidInput,
    InvalidName,
    InvalidTag,
    PathNotFound,
)
from helpers import catalog_counts, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def test_add_file_presents_as_one_path(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = write_files(tmp_path / "src", {"table.csv": "a,b\n1,2\n"})

    bundle = api.add(ctx, "table", source / "table.csv", tags={"stage": "raw"})

    data = bundle.data
    assert isinstance(data, str)
    assert Path(data).name == "table.csv"
    assert Path(data).read_text() == "a,b\n1,2\n"
    assert Path(data).is_relative_to(assay_home / "views")
    assert bundle.presentation == "file"
    assert bundle.name == "table"
    assert bundle.tags == {"stage": "raw"}
    assert bundle.closed and not bundle.committed
    assert [(f.path, f.size) for f in bundle.files] == [("table.csv", 8)]
    assert api.cat(ctx, "table") == data


def test_add_directory_presents_as_list_keeping_relative_names(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    files = {
        "a.txt": "A",
        "sub/b.txt": "B",
        "sub/deeper/c.bin": b"\x00\x01",
        "sub/deeper/deepest/d.txt": "D",
    }
    source = write_files(tmp_path / "dataset", files)

    bundle = api.add(ctx, "dataset", source)

    data = api.cat(ctx, "dataset")
    assert isinstance(data, list)
    view_root = assay_home / "views" / bundle.uuid
    assert sorted(Path(p).relative_to(view_root).as_posix() for p in data) == sorted(files)
    for path in data:
        relative = Path(path).relative_to(view_root).as_posix()
        expected = files[relative]
        assert Path(path).read_bytes() == (
            expected.encode() if isinstance(expected, str) else expected
        )
    assert bundle.presentation == "files"
    assert sorted(f.path for f in bundle.files) == sorted(files)


def test_add_empty_directory_gives_empty_bundle(ctx: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    bundle = api.add(ctx, "nothing", empty)

    assert bundle.files == []
    assert api.cat(ctx, "nothing") in ([], None)


def test_re_add_unchanged_returns_same_bundle(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path / "d", {"x.txt": "x", "y/z.txt": "z"})
    first = api.add(ctx, "d", source)
    rows = catalog_counts()

    again = api.add(ctx, "d", source)

    assert again.uuid == first.uuid
    assert catalog_counts() == rows
    assert [b.uuid for b in api.search(ctx, "d")] == [first.uuid]


def test_re_add_with_changed_file_makes_new_version(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path / "d", {"x.txt": "x", "y/z.txt": "z"})
    first = api.add(ctx, "d", source)
    (source / "y" / "z.txt").write_text("changed")

    second = api.add(ctx, "d", source)

    assert second.uuid != first.uuid
    assert second.content_hash != first.content_hash
    assert [b.uuid for b in api.search(ctx, "d")] == [second.uuid, first.uuid]
    assert api.get(ctx, "d").uuid == second.uuid
    contents = {Path(p).name: Path(p).read_text() for p in api.cat(ctx, "d")}
    assert contents == {"x.txt": "x", "z.txt": "changed"}
    # The old version still reads back its own bytes.
    old = {Path(p).name: Path(p).read_text() for p in api.get(ctx, uuid=first.uuid).data}
    assert old == {"x.txt": "x", "z.txt": "z"}


def test_re_add_with_different_tags_makes_new_version(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path / "d", {"x.txt": "x"})
    first = api.add(ctx, "d", source, tags={"run": "1"})

    second = api.add(ctx, "d", source, tags={"run": "2"})

    assert second.uuid != first.uuid
    assert second.content_hash == first.content_hash


def test_add_records_progress(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path / "d", {f"f{i}.txt": "x" * (i + 1) for i in range(5)})
    seen: list[tuple[int, int]] = []

    api.add(ctx, "d", source, progress=lambda done, total: seen.append((done, total)))

    assert seen, "progress was never reported"
    assert seen[-1] == (15, 15)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_get_latest_by_name_by_uuid_and_by_tags(ctx: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("1")
    old = api.add(ctx, "model", source, tags={"quality": "good"})
    source.write_text("2")
    new = api.add(ctx, "model", source, tags={"quality": "bad"})

    assert api.get(ctx, "model").uuid == new.uuid
    assert api.get(ctx, "model", tags={"quality": "good"}).uuid == old.uuid
    assert api.get(ctx, "model", tags={"quality": "ugly"}) is None
    assert api.get(ctx, uuid=old.uuid).uuid == old.uuid
    assert api.get(ctx, uuid=old.uuid[:8]).uuid == old.uuid  # a unique prefix
    assert api.get(ctx, "whatever", uuid=old.uuid).uuid == old.uuid  # uuid trumps name
    assert api.get(ctx, "absent") is None
    assert api.get(ctx, uuid="00000000-0000-4000-8000-000000000000") is None


def test_get_by_uuid_does_not_reach_into_other_contexts(ctx: str, tmp_path: Path) -> None:
    api.context("other")
    source = write_files(tmp_path, {"f.txt": "x"})
    elsewhere = api.add("other", "b", source / "f.txt")

    assert api.get(ctx, uuid=elsewhere.uuid) is None


def test_cat_unknown_bundle(ctx: str) -> None:
    with pytest.raises(BundleNotFound, match="no bundle with name 'absent' in context 'work'"):
        api.cat(ctx, "absent")


def test_ambiguous_uuid_prefix_is_refused(ctx: str, assay_home: Path) -> None:
    workspace = open_workspace()
    first = operations.create_bundle(
        workspace, ctx, "one", 1, bundle_uuid="abcd0000-0000-4000-8000-000000000001"
    )
    second = operations.create_bundle(
        workspace, ctx, "two", 2, bundle_uuid="abcd1111-0000-4000-8000-000000000002"
    )
    rows = catalog_counts()

    with pytest.raises(AmbiguousReference) as caught:
        api.get(ctx, uuid="abcd")
    message = str(caught.value)
    assert "uuid prefix 'abcd' matches several bundles" in message
    assert first.uuid in message and second.uuid in message
    with pytest.raises(AmbiguousReference):
        api.rm(ctx, uuid="abcd")
    assert catalog_counts() == rows  # nothing removed

    assert api.get(ctx, uuid="abcd0").uuid == first.uuid
    assert api.cat(ctx, uuid="abcd1") == 2


def test_commit_by_name_and_by_uuid(ctx: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("1")
    old = api.add(ctx, "m", source)
    source.write_text("2")
    new = api.add(ctx, "m", source)

    api.commit(ctx, "m")
    assert api.get(ctx, uuid=new.uuid).committed
    assert not api.get(ctx, uuid=old.uuid).committed

    api.commit(ctx, uuid=old.uuid)
    assert api.get(ctx, uuid=old.uuid).committed
    with pytest.raises(BundleNotFound):
        api.commit(ctx, "absent")


def test_bundle_commit_shortcut(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path, {"f.txt": "x"})
    bundle = api.add(ctx, "m", source / "f.txt")

    assert bundle.commit() is bundle
    assert bundle.committed
    assert api.search(ctx, is_committed=True)[0].uuid == bundle.uuid


@pytest.mark.parametrize("bad_key", ["Bad", "a_", "-x", "with space", "_lead", "", "dash-key"])
def test_bad_tag_keys_are_refused_and_nothing_is_written(
    ctx: str, tmp_path: Path, assay_home: Path, bad_key: str
) -> None:
    source = write_files(tmp_path, {"f.txt": "x"})
    rows = catalog_counts()

    with pytest.raises(InvalidTag, match="invalid tag key"):
        api.add(ctx, "b", source / "f.txt", tags={bad_key: "v"})

    assert catalog_counts() == rows
    assert not (assay_home / "store" / "objects").exists() or not any(
        (assay_home / "store" / "objects").rglob("*")
    )
    with pytest.raises(InvalidTag):
        api.search(ctx, search_tags={bad_key: "v"})


def test_path_that_does_not_exist(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    missing = tmp_path / "no" / "such" / "file.txt"
    rows = catalog_counts()

    with pytest.raises(PathNotFound) as caught:
        api.add(ctx, "b", missing)

    assert str(caught.value) == f"path does not exist: {missing}"
    assert catalog_counts() == rows
    assert not (assay_home / "store" / "objects").exists()


@pytest.mark.parametrize("bad", ["a/b", "..", "", "a@b", "line\nbreak"])
def test_bad_bundle_names_are_refused_and_nothing_is_written(
    ctx: str, tmp_path: Path, assay_home: Path, bad: str
) -> None:
    source = write_files(tmp_path, {"f.txt": "x"})
    rows = catalog_counts()

    with pytest.raises(InvalidName, match="invalid bundle name"):
        api.add(ctx, bad, source / "f.txt")

    assert catalog_counts() == rows
    assert not (assay_home / "store" / "objects").exists()


def test_get_needs_a_name_or_a_uuid(ctx: str) -> None:
    with pytest.raises(InvalidInput, match="give a bundle name or a uuid"):
        api.get(ctx)
