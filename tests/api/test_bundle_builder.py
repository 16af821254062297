"""The ``Bundle`` builder: life cycle, files, tags, dependencies and attributes."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assay import api
from assay.bundle import Bundle
from assay.core.errors import (
    BundleClosed,
    BundleNotFound,
    ContextNotFound,
    InvalidInput,
    InvalidName,
    InvalidTag,
)
from helpers import blob_files, catalog_counts, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _staging_left(home: Path) -> list[Path]:
    staging = home / "staging"
    return list(staging.iterdir()) if staging.exists() else []


# -- life cycle -----------------------------------------------------------------------------
def test_context_manager_writes_on_success(ctx: str, assay_home: Path) -> None:
    with Bundle(ctx, "result") as bundle:
        assert bundle.is_open and not bundle.closed
        bundle.add_data({"rows": 3})

    assert bundle.closed and not bundle.is_open
    assert api.get(ctx, "result").uuid == bundle.uuid
    assert api.cat(ctx, "result") == {"rows": 3}
    assert _staging_left(assay_home) == []


def test_context_manager_writes_nothing_when_the_block_raises(ctx: str, assay_home: Path) -> None:
    rows = catalog_counts()

    with pytest.raises(RuntimeError, match="boom"), Bundle(ctx, "result") as bundle:
        with bundle.make_file("out.txt").open("w") as handle:
            handle.write("half-made")
        bundle.add_data(bundle.make_file("out.txt"))
        raise RuntimeError("boom")

    assert catalog_counts() == rows
    assert api.get(ctx, "result") is None
    assert _staging_left(assay_home) == []
    assert blob_files(assay_home) == {}
    assert not bundle.closed


def test_open_and_close_explicitly(ctx: str) -> None:
    bundle = Bundle(ctx, "explicit").open()
    bundle.add_data([1, 2])
    assert bundle.close() is bundle
    assert api.cat(ctx, "explicit") == [1, 2]


def test_abandon_writes_nothing(ctx: str, assay_home: Path) -> None:
    bundle = Bundle(ctx, "dropped").open()
    bundle.add_data(1)
    bundle.abandon()
    assert api.get(ctx, "dropped") is None
    assert _staging_left(assay_home) == []


def test_bundle_in_unknown_context_is_refused_before_staging(assay_home: Path) -> None:
    api.context("exists")
    with pytest.raises(ContextNotFound, match="no context named 'ghost'"):
        Bundle("ghost", "b").open()
    assert _staging_left(assay_home) == []


@pytest.mark.parametrize("bad", ["a/b", "..", ""])
def test_bad_names_are_refused(ctx: str, bad: str) -> None:
    with pytest.raises(InvalidName):
        Bundle(ctx, bad)
    with pytest.raises(InvalidName):
        Bundle(bad, "fine")


def test_a_closed_bundle_refuses_changes(ctx: str) -> None:
    with Bundle(ctx, "done") as bundle:
        bundle.add_data(1)

    with pytest.raises(BundleClosed, match="is closed"):
        bundle.add_data(2)
    with pytest.raises(BundleClosed):
        bundle.make_file("late.txt")
    with pytest.raises(BundleClosed):
        bundle.add_dependency(bundle)
    with pytest.raises(BundleClosed):
        bundle.open()
    assert api.cat(ctx, "done") == 1


def test_a_bundle_not_yet_open_refuses_data_and_has_no_record(ctx: str) -> None:
    bundle = Bundle(ctx, "new")
    with pytest.raises(BundleClosed, match="not open"):
        bundle.add_data(1)
    with pytest.raises(BundleClosed, match="not been closed"):
        _ = bundle.creation_date


def test_a_failure_at_close_writes_nothing(ctx: str, assay_home: Path) -> None:
    rows = catalog_counts()

    with (
        pytest.raises(InvalidInput, match="cannot store a value of type set"),
        Bundle(ctx, "bad") as bundle,
    ):
        with bundle.make_file("f.txt").open("w") as handle:
            handle.write("x")
        bundle.add_data({"file": bundle.make_file("f.txt"), "bad": {1, 2}})

    assert catalog_counts() == rows
    assert blob_files(assay_home) == {}
    assert _staging_left(assay_home) == []


# -- files ----------------------------------------------------------------------------------
def test_make_file_make_directory_and_copy_in_file(ctx: str, tmp_path: Path) -> None:
    existing = write_files(tmp_path, {"input.csv": "a\n1\n"}) / "input.csv"

    with Bundle(ctx, "files") as bundle:
        target = bundle.make_file("nested/out.txt")
        with target.open("w") as handle:
            handle.write("out")
        directory = bundle.make_directory("images")
        write_files(Path(directory), {"one.png": b"\x89PNG1", "sub/two.png": b"\x89PNG2"})
        copied = bundle.copy_in_file(existing)
        bundle.add_data({"out": target, "images": directory, "input": copied, "n": 2})

    data = api.cat(ctx, "files")
    assert Path(data["out"]).read_text() == "out"
    assert Path(data["out"]).as_posix().endswith(f"{bundle.uuid}/nested/out.txt")
    assert Path(data["input"]).read_text() == "a\n1\n"
    assert Path(data["input"]).name == "input.csv"
    images = Path(data["images"])
    assert (images / "one.png").read_bytes() == b"\x89PNG1"
    assert (images / "sub" / "two.png").read_bytes() == b"\x89PNG2"
    assert data["n"] == 2
    assert sorted(f.path for f in bundle.files) == [
        "images/one.png",
        "images/sub/two.png",
        "input.csv",
        "nested/out.txt",
    ]
    assert existing.read_text() == "a\n1\n"  # the original is untouched


def test_without_add_data_the_staged_files_are_the_data(ctx: str) -> None:
    with Bundle(ctx, "staged") as bundle:
        for name in ("b.txt", "a.txt"):
            with bundle.make_file(name).open("w") as handle:
                handle.write(name)

    assert [Path(p).read_text() for p in api.cat(ctx, "staged")] == ["a.txt", "b.txt"]


def test_empty_bundle_holds_none(ctx: str) -> None:
    with Bundle(ctx, "empty"):
        pass
    assert api.cat(ctx, "empty") is None


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
def test_make_file_refuses_paths_outside_the_bundle(ctx: str, bad: str) -> None:
    with Bundle(ctx, "b") as bundle, pytest.raises(InvalidInput, match="invalid file name"):
        bundle.make_file(bad)


def test_make_file_never_written_is_refused_at_close(ctx: str) -> None:
    rows = catalog_counts()
    with pytest.raises(InvalidInput, match="never written"), Bundle(ctx, "b") as bundle:
        bundle.add_data(bundle.make_file("forgot.txt"))
    assert catalog_counts() == rows


def test_copy_in_file_refuses_missing_and_duplicate_names(ctx: str, tmp_path: Path) -> None:
    write_files(tmp_path / "one", {"same.txt": "1"})
    write_files(tmp_path / "two", {"same.txt": "2"})
    with Bundle(ctx, "b") as bundle:
        with pytest.raises(InvalidInput, match="not an existing file"):
            bundle.copy_in_file(tmp_path / "absent.txt")
        bundle.copy_in_file(tmp_path / "one" / "same.txt")
        with pytest.raises(InvalidInput, match=r"already has a file named 'same\.txt'"):
            bundle.copy_in_file(tmp_path / "two" / "same.txt")
        bundle.add_data(1)


def test_empty_make_directory_reads_back_as_an_existing_directory(ctx: str) -> None:
    with Bundle(ctx, "b") as bundle:
        bundle.add_data({"out": bundle.make_directory("out")})

    out = Path(api.cat(ctx, "b")["out"])
    assert out.is_dir()
    assert list(out.iterdir()) == []


# -- tags, params, dependencies, attributes -------------------------------------------------
def test_add_tags_on_open_and_closed_bundles(ctx: str) -> None:
    with Bundle(ctx, "tagged") as bundle:
        bundle.add_tags({"stage": "raw", "n": 1})
        bundle.add_tags({"stage": "clean"})
        assert bundle.tags == {"stage": "clean", "n": "1"}
        bundle.add_data(0)
    assert api.get(ctx, "tagged").tags == {"stage": "clean", "n": "1"}

    assert bundle.add_tags({"reviewed": "yes", "n": 2}) is bundle
    assert bundle.tags == {"stage": "clean", "n": "2", "reviewed": "yes"}
    assert api.get(ctx, "tagged").tags == bundle.tags
    assert api.get(ctx, "tagged").uuid == bundle.uuid  # no new version for a tag change
    with pytest.raises(InvalidTag):
        bundle.add_tags({"Bad": "x"})
    assert api.get(ctx, "tagged").tags == bundle.tags


def test_params_and_processing_name(ctx: str) -> None:
    with Bundle(ctx, "p", processing_name="train_v2") as bundle:
        bundle.add_params({"lr": 0.1, "layers": [3, 4]})
        bundle.add_data(0)

    stored = api.get(ctx, "p")
    assert stored.params == {"lr": 0.1, "layers": [3, 4]}
    assert stored.lineage.params == stored.params
    assert stored.processing_name == "train_v2"
    assert stored.lineage.processing_name == "train_v2"


def test_add_dependency_by_bundle_and_by_uuid(ctx: str) -> None:
    with Bundle(ctx, "raw") as raw:
        raw.add_data(1)
    with Bundle(ctx, "lookup") as lookup:
        lookup.add_data(2)

    with Bundle(ctx, "model") as model:
        model.add_dependency(raw)
        model.add_dependency(lookup.uuid[:8], name="table")
        model.add_data(3)

    lineage = api.get(ctx, "model").lineage
    assert lineage.depends_on == {"raw": raw.uuid, "table": lookup.uuid}
    assert lineage.uuid == model.uuid


def test_attributes_of_a_stored_bundle(ctx: str) -> None:
    before = datetime.now(UTC)
    with Bundle(ctx, "attrs", owner="alice") as bundle:
        bundle.add_tags({"k": "v"})
        bundle.add_data({"x": 1})
    after = datetime.now(UTC)

    stored = api.get(ctx, "attrs")
    assert stored.uuid == bundle.uuid and len(stored.uuid) == 36
    assert stored.name == "attrs"
    assert stored.tags == {"k": "v"}
    assert stored.params == {}
    assert stored.data == {"x": 1}
    assert stored.cat() == {"x": 1}
    assert stored.record.owner == "alice"
    assert stored.presentation == "dict"
    assert len(stored.content_hash) == 64
    slack = timedelta(seconds=1)
    assert before - slack <= stored.creation_date <= after + slack
    assert stored.creation_date.tzinfo is not None
    lineage = stored.lineage
    assert lineage.start_time is not None and lineage.stop_time is not None
    assert lineage.start_time <= lineage.stop_time
    assert lineage.depends_on == {}
    assert repr(stored) == f"<Bundle {ctx}/attrs@{stored.uuid[:8]} closed>"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_code_version_records_the_git_commit(
    ctx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "analysis.py").write_text("print(1)\n")
    _git(repo, "add", "analysis.py")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)

    with Bundle(ctx, "clean") as clean:
        clean.add_data(1)
    (repo / "analysis.py").write_text("print(2)\n")
    dirty = api.add(ctx, "dirty", repo / "analysis.py")

    assert clean.lineage.code_version == {
        "git_commit": head,
        "git_branch": "main",
        "git_dirty": False,
    }
    assert dirty.lineage.code_version["git_commit"] == head
    assert dirty.lineage.code_version["git_dirty"] is True


def test_code_version_is_empty_outside_a_repository(
    ctx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Bundle(ctx, "b") as bundle:
        bundle.add_data(1)
    assert bundle.lineage.code_version == {}


def test_add_dependency_on_an_unknown_bundle_is_refused(ctx: str) -> None:
    with Bundle(ctx, "b") as bundle:
        with pytest.raises(BundleNotFound):
            bundle.add_dependency("00000000-0000-4000-8000-00000000abcd")
        bundle.add_data(1)
    assert bundle.lineage.depends_on == {}


def test_paths_in_data_are_copied_into_the_bundle(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    outside = write_files(tmp_path / "in", {"raw.csv": "1,2\n", "dir/x.txt": "x"})

    with Bundle(ctx, "paths") as bundle:
        bundle.add_data({"raw": outside / "raw.csv", "dir": outside / "dir", "text": "raw.csv"})

    data = api.cat(ctx, "paths")
    assert Path(data["raw"]).read_text() == "1,2\n"
    assert Path(data["raw"]).is_relative_to(assay_home / "views" / bundle.uuid)
    assert (Path(data["dir"]) / "x.txt").read_text() == "x"
    assert data["text"] == "raw.csv"  # a plain string stays a string
    assert sorted(f.path for f in bundle.files) == ["dir/x.txt", "raw.csv"]
    assert (outside / "raw.csv").read_text() == "1,2\n"


def test_two_files_with_one_name_are_refused(ctx: str, tmp_path: Path) -> None:
    one = write_files(tmp_path / "one", {"same.txt": "1"}) / "same.txt"
    two = write_files(tmp_path / "two", {"same.txt": "2"}) / "same.txt"
    rows = catalog_counts()

    with (
        pytest.raises(InvalidInput, match=r"two different files would be stored as 'same\.txt'"),
        Bundle(ctx, "clash") as bundle,
    ):
        bundle.add_data([one, two])

    assert catalog_counts() == rows
