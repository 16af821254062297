"""Manifest references to catalog bundles (assay://context/name[@uuid]) download verified files."""

from __future__ import annotations

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
