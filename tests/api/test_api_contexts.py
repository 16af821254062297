"""Contexts through the API: create, list, switch, current, delete (and their bad input)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay import api
from assay.bundle import Bundle
from assay.core.errors import ContextNotFound, HasDependents, InvalidName, UnpushedBundles
from helpers import blob_files, catalog_counts, write_files


def test_context_returns_0_when_created_and_1_when_it_exists(assay_home: Path) -> None:
    assert api.context("analysis") == 0
    assert api.context("analysis") == 1
    assert [c.name for c in api.ls_contexts()] == ["analysis"]


def test_ls_contexts_counts_bundles_and_committed(assay_home: Path, tmp_path: Path) -> None:
    api.context("b-ctx")
    api.context("a-ctx")
    source = write_files(tmp_path / "src", {"one.txt": "1", "two.txt": "2"})
    api.add("a-ctx", "one", source / "one.txt")
    api.add("a-ctx", "two", source / "two.txt")
    api.commit("a-ctx", "two")

    infos = {c.name: c for c in api.ls_contexts()}

    assert list(infos) == ["a-ctx", "b-ctx"]  # sorted by name
    assert (infos["a-ctx"].bundle_count, infos["a-ctx"].committed_count) == (2, 1)
    assert (infos["b-ctx"].bundle_count, infos["b-ctx"].committed_count) == (0, 0)
    assert infos["a-ctx"].remote is None
    assert infos["a-ctx"].created > 0


def test_switch_sets_current_context(assay_home: Path) -> None:
    assert api.current_context() is None
    api.context("first")
    api.context("second")

    api.switch("first")
    assert api.current_context() == "first"
    api.switch("second")
    assert api.current_context() == "second"


def test_switch_to_unknown_context_is_refused_and_keeps_current(assay_home: Path) -> None:
    api.context("first")
    api.switch("first")

    with pytest.raises(ContextNotFound, match="no context named 'missing'"):
        api.switch("missing")

    assert api.current_context() == "first"


def test_delete_context_removes_its_bundles_and_views(assay_home: Path, tmp_path: Path) -> None:
    api.context("keep")
    api.context("gone")
    source = write_files(tmp_path / "src", {"f.txt": "data"})
    kept = api.add("keep", "kept", source / "f.txt")
    bundle = api.add("gone", "doomed", source / "f.txt")
    view = Path(bundle.data)
    assert view.exists()
    api.switch("gone")

    api.delete_context("gone")

    assert [c.name for c in api.ls_contexts()] == ["keep"]
    assert api.current_context() is None  # the deleted context was current
    assert not view.exists()
    assert api.get("keep", "kept").uuid == kept.uuid
    with pytest.raises(ContextNotFound):
        api.get("gone", "doomed")


def test_delete_context_with_committed_bundles_is_refused_unless_forced(
    assay_home: Path, tmp_path: Path
) -> None:
    api.context("work")
    source = write_files(tmp_path / "src", {"f.txt": "precious"})
    bundle = api.add("work", "precious", source / "f.txt")
    api.commit("work", "precious")
    before = catalog_counts()
    blobs = set(blob_files(assay_home))

    with pytest.raises(UnpushedBundles) as caught:
        api.delete_context("work")

    message = str(caught.value)
    assert "1 committed bundle(s) not pushed" in message
    assert f"precious@{bundle.uuid[:8]}" in message
    assert "force=True" in message
    assert catalog_counts() == before  # nothing was deleted
    assert set(blob_files(assay_home)) == blobs
    assert api.get("work", "precious").committed

    api.delete_context("work", force=True)
    assert api.ls_contexts() == []
    assert catalog_counts()["bundles"] == 0


def test_delete_unknown_context_is_a_no_op_as_in_disdat(assay_home: Path) -> None:
    api.context("kept")
    api.delete_context("nope")  # Disdat's tests call it before creating a context
    assert [info.name for info in api.ls_contexts()] == ["kept"]
    with pytest.raises(InvalidName):
        api.delete_context("no/pe")  # a name that can never exist is still an error


@pytest.mark.parametrize(
    "bad",
    [
        "a/b",
        "a\\b",
        "..",
        ".",
        "",
        "   ",
        "x" * 129,
        "tab\there",
        "nul\x00",
        "trailing\n",  # "$" also matches before a final newline: fullmatch needed
    ],
)
def test_bad_context_names_are_refused_and_nothing_is_created(assay_home: Path, bad: str) -> None:
    with pytest.raises(InvalidName, match="invalid context name"):
        api.context(bad)
    assert api.ls_contexts() == []


@pytest.mark.parametrize("call", ["add", "get", "search", "cat", "commit", "rm"])
def test_unknown_context_is_named_in_the_error(assay_home: Path, tmp_path: Path, call: str) -> None:
    source = write_files(tmp_path / "src", {"f.txt": "x"})
    calls = {
        "add": lambda: api.add("ghost", "b", source / "f.txt"),
        "get": lambda: api.get("ghost", "b"),
        "search": lambda: api.search("ghost"),
        "cat": lambda: api.cat("ghost", "b"),
        "commit": lambda: api.commit("ghost", "b"),
        "rm": lambda: api.rm("ghost", "b"),
    }
    with pytest.raises(ContextNotFound, match="no context named 'ghost'"):
        calls[call]()
    assert blob_files(assay_home) == {}  # add checked the context before storing anything
    assert catalog_counts()["bundles"] == 0


def test_delete_context_others_depend_on_is_refused_unless_forced(
    assay_home: Path, tmp_path: Path
) -> None:
    api.context("upstream")
    api.context("downstream")
    source = write_files(tmp_path / "src", {"f.txt": "raw"})
    raw = api.add("upstream", "raw", source / "f.txt")
    with Bundle("downstream", "report") as report:
        report.add_dependency(raw)
        report.add_data("made from raw")
    rows = catalog_counts()

    with pytest.raises(HasDependents) as caught:
        api.delete_context("upstream")

    assert f"report@{report.uuid[:8]}" in str(caught.value)
    assert catalog_counts() == rows

    api.delete_context("upstream", force=True)
    nodes = api.lineage("downstream", report.uuid)
    assert [(n.uuid, n.missing) for n in nodes] == [(report.uuid, False), (raw.uuid, True)]
