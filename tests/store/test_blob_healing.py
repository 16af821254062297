"""Corrupted blobs do not stay corrupted or spread: verify quarantines them, an add of intact
content restores them, and an add checks the size of a blob its content maps to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assay import api
from assay.core.hashing import LARGE_FILE_BYTES, hash_bytes
from helpers import OLD_MTIME_NS, blob_files, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _overwrite(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def _flip_first_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    _overwrite(path, bytes(data))


def _read_all(bundle: api.Bundle) -> list[bytes]:
    return [Path(p).read_bytes() for p in bundle.data]


def test_verify_quarantines_and_the_next_add_of_intact_content_restores(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    content = b"precious measurements\n"
    source = write_files(tmp_path / "d", {"m.csv": content}, mtime_ns=OLD_MTIME_NS)
    first = api.add(ctx, "m", source)
    blob_hash = hash_bytes(content)
    _flip_first_byte(blob_files(assay_home)[blob_hash])  # same size: only a re-hash sees it

    [problem] = api.verify()

    assert problem.problem == "corrupted"
    assert blob_hash not in blob_files(assay_home)
    quarantined = assay_home / "store" / "quarantine" / blob_hash
    assert quarantined.exists() and quarantined.read_bytes() != content
    assert [p.problem for p in api.verify()] == ["quarantined"]

    again = api.add(ctx, "m", source)  # the stat cache vouches for the source: no re-hash

    assert again.uuid == first.uuid  # same content: the existing version, now whole again
    assert blob_files(assay_home)[blob_hash].read_bytes() == content
    assert api.verify() == []
    assert _read_all(api.get(ctx, "m")) == [content]


def test_an_intact_copy_never_points_at_a_truncated_blob(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    content = b"x" * 5000
    api.add(ctx, "orig", write_files(tmp_path / "a", {"f.bin": content}))
    blob_hash = hash_bytes(content)
    _overwrite(blob_files(assay_home)[blob_hash], content[:100])  # truncated on disk

    copy = api.add(ctx, "copy", write_files(tmp_path / "b", {"g.bin": content}))

    assert blob_files(assay_home)[blob_hash].read_bytes() == content
    assert _read_all(copy) == [content]
    assert api.verify() == []  # the original bundle is whole again too


def test_a_cached_file_whose_blob_changed_size_is_stored_again(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    content = b"cached content " * 100
    source = write_files(tmp_path / "d", {"c.txt": content}, mtime_ns=OLD_MTIME_NS)
    api.add(ctx, "c", source)
    blob_hash = hash_bytes(content)
    _overwrite(blob_files(assay_home)[blob_hash], content + b"appended garbage")

    api.add(ctx, "c2", source)  # stat-cache hit: only the blob's size can tell

    assert blob_files(assay_home)[blob_hash].read_bytes() == content
    assert api.verify() == []


def test_a_large_blob_of_another_size_is_replaced(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    content = os.urandom(LARGE_FILE_BYTES + 4096)
    api.add(ctx, "big", write_files(tmp_path / "a", {"big.bin": content}))
    blob_hash = hash_bytes(content)
    _overwrite(blob_files(assay_home)[blob_hash], content[: LARGE_FILE_BYTES // 2])

    copy = api.add(ctx, "big-copy", write_files(tmp_path / "b", {"big.bin": content}))

    assert blob_files(assay_home)[blob_hash].stat().st_size == len(content)
    assert _read_all(copy) == [content]
    assert api.verify() == []
