"""Manifest datasets at s3:// and file:// URLs download through the remote machinery, cached
by content hash: a second download of unchanged data reads no object again."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_helpers import Remote, write_remote_bytes

from assay.bundles.url_fetch import fetch_url
from assay.core.errors import PathNotFound, RemoteNotFound
from assay.resources import Manifest


def _files(directory: str) -> dict[str, bytes]:
    root = Path(directory)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_dataset_url_downloads_once_then_comes_from_the_cache(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    write_remote_bytes(remote, "datasets/wind/a.csv", b"a,b\n1,2\n")
    write_remote_bytes(remote, "datasets/wind/site/b.csv", b"x\n" * 1000)
    url = f"{remote.url}/datasets/wind"

    first = fetch_url(url, str(tmp_path / "one"), "dataset 'wind'")
    second = fetch_url(url, str(tmp_path / "two"), "dataset 'wind'")

    assert (first.files, first.files_downloaded) == (2, 2)
    assert (second.files, second.files_downloaded, second.bytes_downloaded) == (2, 0, 0)
    assert (
        _files(str(tmp_path / "one"))
        == _files(str(tmp_path / "two"))
        == {
            "a.csv": b"a,b\n1,2\n",
            "site/b.csv": b"x\n" * 1000,
        }
    )
    write_remote_bytes(remote, "datasets/wind/a.csv", b"changed\n")  # new content: fetched again
    third = fetch_url(url, str(tmp_path / "three"), "dataset 'wind'")
    assert third.files_downloaded == 1
    assert (tmp_path / "three" / "a.csv").read_bytes() == b"changed\n"


def test_manifest_download_of_url_datasets(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    write_remote_bytes(remote, "datasets/wind/a.csv", b"a\n")
    write_remote_bytes(remote, "single/readme.txt", b"hello\n")
    manifest = Manifest(
        datasets={"wind": f"{remote.url}/datasets/wind", "one": f"{remote.url}/single/readme.txt"}
    )
    paths = manifest.download()
    assert _files(paths["wind"]) == {"a.csv": b"a\n"}
    assert _files(paths["one"]) == {"readme.txt": b"hello\n"}
    again = manifest.download(paths={"wind": tmp_path / "wind"})
    assert _files(again["wind"]) == {"a.csv": b"a\n"}


def test_nothing_at_the_url(sqlite_home: Path, remote: Remote) -> None:
    manifest = Manifest(datasets={"gone": f"{remote.url}/datasets/nothing"})
    with pytest.raises(PathNotFound, match="nothing found at"):
        manifest.download()


def test_a_url_in_a_bucket_that_does_not_exist(aws_env: str, sqlite_home: Path) -> None:
    manifest = Manifest(datasets={"x": "s3://no-such-bucket/data"})
    with pytest.raises(RemoteNotFound, match="does not exist"):
        manifest.download()
