"""Manifest.download through the resources face: fsspec memory:// and file://, local paths,
Dataset objects; refusals happen before anything is written."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import assay.resources as resources
from assay.core.errors import (
    DatasetNotInManifest,
    InvalidInput,
    LocalFilesNotAllowed,
    PathNotFound,
)
from assay.resources import Datafile, Dataset, FilterSet, Manifest


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*"))


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)).replace("\\", "/"): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile at a private directory so leftover temp dirs can be seen."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def bucket() -> Iterator[str]:
    """A memory:// dataset with two files, removed afterwards."""
    fs = fsspec.filesystem("memory")
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    fs.pipe(f"/{name}/wind/a.csv", b"1,2\n")
    fs.pipe(f"/{name}/wind/sub/b.csv", b"3,4\n")
    yield f"memory://{name}"
    fs.rm(f"/{name}", recursive=True)


@pytest.fixture
def local_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "local-ds"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("A")
    (root / "sub" / "b.csv").write_text("B")
    return root


def test_face_reexports_core_classes() -> None:
    from assay.core import datafile, dataset, filterset, manifest

    assert resources.Datafile is datafile.Datafile
    assert resources.Dataset is dataset.Dataset
    assert resources.FilterSet is filterset.FilterSet
    assert resources.Manifest is manifest.Manifest
    assert resources.parse_reference is manifest.parse_reference


def test_memory_url_to_a_temp_dir(bucket: str, temp_root: Path) -> None:
    manifest = Manifest({"wind": f"{bucket}/wind"})
    before = manifest.serialise()
    result = manifest.download()
    assert list(result) == ["wind"]
    target = Path(result["wind"])
    assert target.parent == temp_root and target.name.startswith("assay-manifest-")
    assert _files(target) == {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"}
    assert manifest.serialise() == before


def test_memory_url_to_given_paths(bucket: str, tmp_path: Path, temp_root: Path) -> None:
    manifest = Manifest({"wind": f"{bucket}/wind", "single": f"{bucket}/wind/a.csv"})
    destination = tmp_path / "out" / "wind"
    result = manifest.download(paths={"wind": destination})
    assert result["wind"] == str(destination)
    assert _files(destination) == {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"}
    assert _files(Path(result["single"])) == {"a.csv": b"1,2\n"}
    assert _listing(tmp_path / "out") == ["wind", "wind/a.csv", "wind/sub", "wind/sub/b.csv"]


def test_download_into_an_existing_directory_merges(bucket: str, tmp_path: Path) -> None:
    destination = tmp_path / "existing"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")
    (destination / "a.csv").write_text("old")
    Manifest({"wind": f"{bucket}/wind"}).download(paths={"wind": str(destination)})
    assert _files(destination) == {"a.csv": b"1,2\n", "keep.txt": b"mine", "sub/b.csv": b"3,4\n"}
    assert _listing(tmp_path) == [
        "existing",
        "existing/a.csv",
        "existing/keep.txt",
        "existing/sub",
        "existing/sub/b.csv",
    ]


def test_file_url(local_dataset: Path, tmp_path: Path) -> None:
    manifest = Manifest({"d": local_dataset.as_uri()})
    # file:// is an object-store URL read through fsspec: no allow_local_files needed.
    result = manifest.download(paths={"d": tmp_path / "copy"})
    assert _files(Path(result["d"])) == {"a.csv": b"A", "sub/b.csv": b"B"}


def test_missing_url_raises_and_leaves_nothing(
    bucket: str, tmp_path: Path, temp_root: Path
) -> None:
    manifest = Manifest({"ok": f"{bucket}/wind", "gone": f"{bucket}/nothing-here"})
    with pytest.raises(PathNotFound) as caught:
        manifest.download()
    assert str(caught.value) == f"dataset 'gone': nothing found at {bucket}/nothing-here"
    assert _listing(temp_root) == []  # the finished "ok" temp dir was removed too
    out = tmp_path / "out"
    with pytest.raises(PathNotFound):
        manifest.download(paths={"gone": out / "gone"})
    assert _listing(out) == []  # no destination, no staging directory left behind
    with pytest.raises(PathNotFound, match="nothing found at file://"):
        Manifest({"x": (tmp_path / "absent").as_uri()}).download()


def test_local_path_refused_by_default(
    local_dataset: Path, tmp_path: Path, temp_root: Path
) -> None:
    manifest = Manifest({"remote": "memory://unused/x", "mine": str(local_dataset)})
    destination = tmp_path / "dest"
    with pytest.raises(LocalFilesNotAllowed) as caught:
        manifest.download(paths={"mine": destination})
    assert str(caught.value) == (
        f"dataset 'mine' is a local path ({local_dataset}); pass allow_local_files=True to use "
        "local datasets"
    )
    assert not destination.exists()
    assert _listing(temp_root) == []  # refused before the remote dataset was fetched


def test_local_path_allowed(local_dataset: Path, tmp_path: Path, temp_root: Path) -> None:
    manifest = Manifest({"mine": str(local_dataset)})
    assert manifest.download(allow_local_files=True) == {"mine": str(local_dataset)}
    assert _listing(temp_root) == []
    copied = manifest.download(paths={"mine": tmp_path / "copy"}, allow_local_files=True)
    assert _files(Path(copied["mine"])) == _files(local_dataset)
    assert _files(local_dataset) == {"a.csv": b"A", "sub/b.csv": b"B"}  # source untouched
    with pytest.raises(PathNotFound, match="dataset 'gone': no local dataset at"):
        Manifest({"gone": str(tmp_path / "absent")}).download(allow_local_files=True)


def test_dataset_object_with_remote_files(bucket: str, temp_root: Path) -> None:
    dataset = Dataset(
        name="picked",
        files=[
            Datafile(path=f"{bucket}/wind/sub/b.csv", relative_path="nested/b.csv"),
            Datafile(path=f"{bucket}/wind/a.csv"),
        ],
    )
    result = Manifest({"picked": dataset}).download()
    assert _files(Path(result["picked"])) == {"a.csv": b"1,2\n", "nested/b.csv": b"3,4\n"}
    missing = Dataset(files=[Datafile(path=f"{bucket}/wind/none.csv")])
    with pytest.raises(PathNotFound, match="dataset 'm': nothing found at"):
        Manifest({"m": missing}).download()


def test_dataset_object_with_local_files(local_dataset: Path, tmp_path: Path) -> None:
    dataset = Dataset(path=local_dataset)
    manifest = Manifest({"obj": dataset})
    with pytest.raises(
        LocalFilesNotAllowed, match=r"dataset 'obj' has local files \(.*a.csv, \.\.\.\)"
    ):
        manifest.download()
    assert manifest.download(allow_local_files=True) == {"obj": str(local_dataset)}
    copied = manifest.download(paths={"obj": tmp_path / "copy"}, allow_local_files=True)
    assert _files(Path(copied["obj"])) == {"a.csv": b"A", "sub/b.csv": b"B"}
    # Files gathered from several places are copied into one directory.
    scattered = Dataset(
        files=[
            Datafile(path=local_dataset / "a.csv"),
            Datafile(path=local_dataset / "sub" / "b.csv"),
        ]
    )
    result = Manifest({"s": scattered}).download(allow_local_files=True)
    assert _files(Path(result["s"])) == {"a.csv": b"A", "b.csv": b"B"}


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (
            {"other": "x"},
            "paths names 'other', which is not a dataset in the manifest (keys: 'wind')",
        ),
        ({"wind": 5}, "paths['wind']: expected a directory path, got 5"),
        (["wind"], "paths must map dataset keys to directories, not list"),
    ],
)
def test_bad_paths(bucket: str, temp_root: Path, paths: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Manifest({"wind": f"{bucket}/wind"}).download(paths=paths)
    assert str(caught.value) == message
    assert _listing(temp_root) == []


def test_destination_that_is_a_file(bucket: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(
        InvalidInput, match=r"paths\['wind'\]: .*file.txt exists and is not a directory"
    ):
        Manifest({"wind": f"{bucket}/wind"}).download(paths={"wind": blocker})
    assert blocker.read_text() == "x"


def test_download_selected_keys(bucket: str) -> None:
    manifest = Manifest({"a": f"{bucket}/wind", "b": f"{bucket}/nothing"})
    assert list(manifest.download(keys=["a"])) == ["a"]
    with pytest.raises(DatasetNotInManifest, match="no dataset 'zzz'"):
        manifest.download(keys=["zzz"])


def test_remote_dataset_access_downloads_once(bucket: str, temp_root: Path) -> None:
    manifest = Manifest({"wind": f"{bucket}/wind"})
    dataset = manifest["wind"]
    assert dataset.name == "wind"
    assert isinstance(dataset.files, FilterSet)
    assert sorted(f.relative_path or "" for f in dataset.files) == ["a.csv", "sub/b.csv"]
    with manifest.datasets["wind"].files.one(name="b.csv").open("rb") as handle:
        assert handle.read() == b"3,4\n"
    assert len(_listing(temp_root)) == 4  # one temp dir (with sub/), fetched once
