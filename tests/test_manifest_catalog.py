"""Manifest references to catalog bundles (assay://context/name[@uuid]) download verified files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import assay.api as api
from assay.core.errors import BlobCorrupted, BundleNotFound, InvalidManifest
from assay.resources import Manifest


@pytest.fixture
def bundle(assay_home: Path, tmp_path: Path) -> api.Bundle:
    source = tmp_path / "data"
    (source / "sub").mkdir(parents=True)
    (source / "a.csv").write_text("a,b\n1,2\n")
    (source / "sub" / "b.txt").write_text("hello")
    api.context("ctx")
    return api.add("ctx", "raw", source)


def test_download_latest_and_pinned_uuid(bundle: api.Bundle, tmp_path: Path) -> None:
    manifest = Manifest(
        datasets={"latest": "assay://ctx/raw", "pinned": f"assay://ctx/raw@{bundle.uuid}"}
    )
    paths = manifest.download(paths={"pinned": str(tmp_path / "pinned")})
    assert Path(paths["pinned"]) == tmp_path / "pinned"
    for key in ("latest", "pinned"):
        folder = Path(paths[key])
        assert (folder / "a.csv").read_text() == "a,b\n1,2\n"
        assert (folder / "sub" / "b.txt").read_text() == "hello"


def test_unknown_bundle_and_wrong_name(bundle: api.Bundle) -> None:
    with pytest.raises(BundleNotFound):
        Manifest(datasets={"x": "assay://ctx/nope"}).download()
    with pytest.raises(InvalidManifest, match="is named 'raw'"):
        Manifest(datasets={"x": f"assay://ctx/other@{bundle.uuid}"}).download()


def test_corrupted_blob_is_refused(bundle: api.Bundle, assay_home: Path, tmp_path: Path) -> None:
    blob = next(p for p in (assay_home / "store" / "objects").rglob("*") if p.is_file())
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    destination = tmp_path / "out"
    with pytest.raises(BlobCorrupted):
        Manifest(datasets={"x": "assay://ctx/raw"}).download(paths={"x": str(destination)})
    corrupted = [p for p in destination.rglob("*") if p.is_file() and p.read_bytes() == b"tampered"]
    assert corrupted == []


def test_repeated_downloads_make_no_new_folders(
    bundle: api.Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))  # where mkdtemp would put them

    first = Manifest(datasets={"raw": "assay://ctx/raw"}).download()["raw"]
    for _ in range(3):
        again = Manifest(datasets={"raw": f"assay://ctx/raw@{bundle.uuid}"}).download()["raw"]
        assert again == first
        assert (Path(again) / "sub" / "b.txt").read_text() == "hello"
    dataset = Manifest(datasets={"raw": "assay://ctx/raw"}).get_dataset("raw")

    assert list(temp_root.iterdir()) == []  # no /tmp/assay-manifest-* left per call
    assert sorted(f.relative_path for f in dataset.files) == ["a.csv", "sub/b.txt"]


def test_the_shared_view_cannot_corrupt_the_store(bundle: api.Bundle) -> None:
    folder = Path(Manifest(datasets={"raw": "assay://ctx/raw"}).download()["raw"])
    target = folder / "a.csv"
    target.chmod(0o644)  # a careless reader writes through the folder it was given
    target.write_text("changed")

    again = Path(Manifest(datasets={"raw": "assay://ctx/raw"}).download()["raw"])

    assert (again / "a.csv").read_text() == "a,b\n1,2\n"  # repaired from the store
    assert api.get("ctx", "raw").data  # the bundle still reads (its blobs are intact)
