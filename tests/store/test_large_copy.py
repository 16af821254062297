"""Large files: copied by the kernel while a thread hashes the copy right behind it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from assay import api
from assay.core.errors import InvalidInput
from assay.core.hashing import LARGE_FILE_BYTES, hash_bytes
from assay.core.settings import load_settings
from assay.store import fileops
from assay.store.blobstore import BlobStore


def _copy(source: Path, dest: Path) -> tuple[str, int]:
    source_fd = os.open(source, os.O_RDONLY)
    dest_fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        return fileops.copy_and_hash(source_fd, dest_fd)
    finally:
        os.close(source_fd)
        os.close(dest_fd)


def test_the_hash_is_the_copys_across_uneven_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks that end off page boundaries: the hashing thread maps from an aligned offset.
    monkeypatch.setattr(fileops, "COPY_CHUNK", (1 << 20) + 4097)
    data = os.urandom(5 * (1 << 20) + 3)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    blob_hash, copied = _copy(source, tmp_path / "copy.bin")

    assert (blob_hash, copied) == (hash_bytes(data), len(data))
    assert (tmp_path / "copy.bin").read_bytes() == data


def test_an_empty_file_copies_and_hashes(tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")

    assert _copy(source, tmp_path / "copy") == (hash_bytes(b""), 0)


def test_across_file_systems_the_copy_falls_back_to_sendfile(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) to copy from another file system")
    data = os.urandom(LARGE_FILE_BYTES + 12345)
    source = shm / f"assay-test-{os.getpid()}.bin"
    source.write_bytes(data)
    try:
        probe = tmp_path / "probe"
        source_fd = os.open(source, os.O_RDONLY)
        probe_fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.copy_file_range(source_fd, probe_fd, 1)
            refused = False
        except OSError as exc:
            refused = exc.errno == errno.EXDEV
        finally:
            os.close(source_fd)
            os.close(probe_fd)

        blob_hash, copied = _copy(source, tmp_path / "copy.bin")
    finally:
        source.unlink()

    assert (blob_hash, copied) == (hash_bytes(data), len(data))
    assert (tmp_path / "copy.bin").read_bytes() == data
    if not refused:
        pytest.skip("this kernel copies across file systems: the sendfile path did not run")


def test_a_large_file_changed_after_the_scan_is_refused(tmp_path: Path, sqlite_home: Path) -> None:
    api.context("work")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a-small.txt").write_text("small")  # stored first: its progress comes first
    big = folder / "z-big.bin"
    big.write_bytes(os.urandom(LARGE_FILE_BYTES + 1))
    changed: list[int] = []

    def change_the_big_file(done: int, total: int) -> None:
        if not changed:  # after the small file, before the big one is copied
            big.write_bytes(os.urandom(LARGE_FILE_BYTES + 1))
            changed.append(done)

    with pytest.raises(InvalidInput, match="changed while it was being added"):
        api.add("work", "both", folder, progress=change_the_big_file)

    assert changed == [len("small")], "the file was not changed between scan and copy"
    assert api.get("work", "both") is None
    store = BlobStore(load_settings().store_root)
    assert list(store.iter_temp_files()) == []
    assert {b.size for b in store.iter_blobs()} <= {len("small")}  # no blob of the big file
