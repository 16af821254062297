"""Bundle views: verified, read-only copies under ``ASSAY_HOME/views`` that repair themselves."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.core.errors import BlobCorrupted, BlobMissing, InvalidInput
from assay.core.hashing import hash_bytes
from helpers import blob_files, write_files

CTX = "work"
FILES = {"top.txt": "top", "a/b/deep.txt": "deep", "a/sibling.csv": "x,y\n"}


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


@pytest.fixture
def bundle(ctx: str, tmp_path: Path) -> api.Bundle:
    return api.add(ctx, "tree", write_files(tmp_path / "tree", FILES))


def _by_name(paths: list[str], root: Path) -> dict[str, Path]:
    return {Path(p).relative_to(root).as_posix(): Path(p) for p in paths}


def test_cat_gives_read_only_paths_with_original_names(
    ctx: str, bundle: api.Bundle, assay_home: Path
) -> None:
    root = assay_home / "views" / bundle.uuid
    views = _by_name(api.cat(ctx, "tree"), root)

    assert set(views) == set(FILES)
    for relative, path in views.items():
        assert path.read_text() == FILES[relative]
        assert path.stat().st_mode & 0o222 == 0, f"{relative} is writable"
        assert not os.path.samefile(
            path, blob_files(assay_home)[hash_bytes(FILES[relative].encode())]
        )


def test_writing_through_a_view_does_not_touch_the_blob_and_is_repaired(
    ctx: str, bundle: api.Bundle, assay_home: Path
) -> None:
    root = assay_home / "views" / bundle.uuid
    target = _by_name(api.cat(ctx, "tree"), root)["a/b/deep.txt"]
    os.chmod(target, 0o644)  # root could write anyway; a user would have to do this
    target.write_text("scribbled over")

    assert api.verify(ctx, "tree") == []  # the store is unharmed
    repaired = _by_name(api.cat(ctx, "tree"), root)["a/b/deep.txt"]
    assert repaired == target
    assert repaired.read_text() == "deep"
    assert repaired.stat().st_mode & 0o222 == 0


def test_a_deleted_view_file_is_made_again(ctx: str, bundle: api.Bundle, assay_home: Path) -> None:
    root = assay_home / "views" / bundle.uuid
    _by_name(api.cat(ctx, "tree"), root)["top.txt"].unlink()

    assert _by_name(api.cat(ctx, "tree"), root)["top.txt"].read_text() == "top"


def test_a_deleted_view_folder_is_made_again(
    ctx: str, bundle: api.Bundle, assay_home: Path
) -> None:
    root = assay_home / "views" / bundle.uuid
    api.cat(ctx, "tree")
    shutil.rmtree(root)

    views = _by_name(api.cat(ctx, "tree"), root)
    assert {k: v.read_text() for k, v in views.items()} == FILES


def test_an_unchanged_view_is_reused(ctx: str, bundle: api.Bundle, assay_home: Path) -> None:
    root = assay_home / "views" / bundle.uuid
    before = {k: v.stat().st_ino for k, v in _by_name(api.cat(ctx, "tree"), root).items()}
    after = {k: v.stat().st_ino for k, v in _by_name(api.cat(ctx, "tree"), root).items()}
    assert before == after


def test_a_blob_corrupted_before_the_first_cat(
    ctx: str, bundle: api.Bundle, assay_home: Path
) -> None:
    bad_hash = hash_bytes(b"deep")
    blob = blob_files(assay_home)[bad_hash]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"rotten")

    with pytest.raises(BlobCorrupted, match=f"blob {bad_hash} is corrupted"):
        api.cat(ctx, "tree")

    root = assay_home / "views" / bundle.uuid
    assert not (root / "a" / "b" / "deep.txt").exists()  # no wrong file was left in the view
    if root.exists():
        assert not list(root.rglob("*.part"))  # nor a temp file
    [problem] = api.verify()
    assert (problem.bundle_uuid, problem.bundle_name, problem.context) == (
        bundle.uuid,
        "tree",
        ctx,
    )
    assert (problem.path, problem.blob_hash, problem.problem) == (
        "a/b/deep.txt",
        bad_hash,
        "corrupted",
    )


def test_a_blob_missing_before_the_first_cat(
    ctx: str, bundle: api.Bundle, assay_home: Path
) -> None:
    missing = hash_bytes(b"top")
    blob_files(assay_home)[missing].unlink()

    with pytest.raises(BlobMissing, match=f"blob {missing} is missing"):
        api.cat(ctx, "tree")
    assert [(p.path, p.problem) for p in api.verify(ctx)] == [("top.txt", "missing")]


@pytest.mark.parametrize("link_type", ["copy", "reflink,copy", "hardlink", "hardlink,copy"])
def test_every_link_type_gives_the_right_bytes(
    ctx: str,
    tmp_path: Path,
    assay_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    link_type: str,
) -> None:
    monkeypatch.setenv("ASSAY_LINK_TYPE", link_type)
    close_workspaces()
    bundle = api.add(ctx, "tree", write_files(tmp_path / "tree", FILES))

    views = _by_name(api.cat(ctx, "tree"), assay_home / "views" / bundle.uuid)

    assert {k: v.read_text() for k, v in views.items()} == FILES
    shared = os.path.samefile(views["top.txt"], blob_files(assay_home)[hash_bytes(b"top")])
    assert shared == link_type.startswith("hardlink")  # hard links only when asked for


def test_an_unknown_link_type_is_refused(assay_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_LINK_TYPE", "symlink")
    close_workspaces()
    with pytest.raises(InvalidInput, match="ASSAY_LINK_TYPE: unknown link type 'symlink'"):
        api.ls_contexts()


def test_many_readers_of_a_fresh_view_at_once(ctx: str, tmp_path: Path) -> None:
    source = write_files(tmp_path / "many", {f"f{i:03}.txt": str(i) for i in range(60)})
    errors: list[str] = []

    def read(name: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            paths = api.cat(ctx, name)
            assert sorted(Path(p).read_text() for p in paths) == sorted(map(str, range(60)))
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(f"{type(exc).__name__}: {exc}")

    for trial in range(5):
        api.add(ctx, f"many{trial}", source)
        barrier = threading.Barrier(8)
        readers = [threading.Thread(target=read, args=(f"many{trial}", barrier)) for _ in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()

    assert errors == []
