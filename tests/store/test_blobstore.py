"""The blob store and stat cache on their own: real folders, real SQLite."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assay.core.errors import BlobCorrupted, BlobMissing
from assay.core.hashing import LARGE_FILE_BYTES, hash_bytes
from assay.store.blobstore import BlobStore
from assay.store.statcache import StatCache, cached_hash


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def test_put_bytes_is_content_addressed_and_idempotent(store: BlobStore) -> None:
    blob_hash = store.put_bytes(b"hello")

    assert blob_hash == hash_bytes(b"hello")
    assert store.put_bytes(b"hello") == blob_hash
    assert store.has(blob_hash)
    assert store.path_for(blob_hash) == store.objects / blob_hash[:2] / blob_hash[2:]
    assert store.read_verified(blob_hash) == b"hello"
    assert [b.blob_hash for b in store.iter_blobs()] == [blob_hash]
    assert list(store.iter_temp_files()) == []


@pytest.mark.parametrize("size", [0, 1000, LARGE_FILE_BYTES + 5], ids=["empty", "small", "large"])
def test_put_file(store: BlobStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    blob_hash, stored_size = store.put_file(source)

    assert (blob_hash, stored_size) == (hash_bytes(data), size)
    assert store.path_for(blob_hash).read_bytes() == data
    assert store.path_for(blob_hash).stat().st_mode & 0o222 == 0
    assert store.put_file(source)[0] == blob_hash
    assert len(list(store.iter_blobs())) == 1
    assert list(store.iter_temp_files()) == []


def test_many_threads_storing_the_same_bytes(store: BlobStore) -> None:
    data = os.urandom(100_000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = set(pool.map(lambda _: store.put_bytes(data), range(32)))

    assert hashes == {hash_bytes(data)}
    assert len(list(store.iter_blobs())) == 1
    assert list(store.iter_temp_files()) == []
    assert store.verify(hash_bytes(data)) is None


def test_verify_and_read_detect_damage(store: BlobStore) -> None:
    good = store.put_bytes(b"good")
    bad = store.put_bytes(b"bad")
    gone = store.put_bytes(b"gone")
    os.chmod(store.path_for(bad), 0o644)
    store.path_for(bad).write_bytes(b"BAD")
    store.remove(gone)

    assert store.verify(good) is None
    assert store.verify(bad) == "corrupted"
    assert store.verify(gone) == "missing"
    with pytest.raises(BlobCorrupted):
        store.read_verified(bad)
    with pytest.raises(BlobMissing):
        store.read_verified(gone)
    store.remove(gone)  # removing twice is fine


def test_materialize_copies_and_verifies(store: BlobStore, tmp_path: Path) -> None:
    blob_hash = store.put_bytes(b"content")
    dest = tmp_path / "view" / "deep" / "file.txt"

    store.materialize(blob_hash, dest, ("reflink", "copy"))

    assert dest.read_bytes() == b"content"
    assert dest.stat().st_mode & 0o222 == 0
    assert not os.path.samefile(dest, store.path_for(blob_hash))
    assert [p.name for p in dest.parent.iterdir()] == ["file.txt"]  # no temp left


def test_materialize_never_leaves_wrong_bytes(store: BlobStore, tmp_path: Path) -> None:
    blob_hash = store.put_bytes(b"content")
    os.chmod(store.path_for(blob_hash), 0o644)
    store.path_for(blob_hash).write_bytes(b"tampered")
    dest = tmp_path / "view" / "file.txt"
    dest.parent.mkdir()
    dest.write_bytes(b"stale view")

    with pytest.raises(BlobCorrupted):
        store.materialize(blob_hash, dest, ("copy",))

    assert not dest.exists() or dest.read_bytes() != b"tampered"  # never the wrong bytes
    assert [p.name for p in dest.parent.iterdir() if p.name != "file.txt"] == []  # no temp
    with pytest.raises(BlobMissing):
        store.materialize(hash_bytes(b"never stored"), dest, ("copy",))


# -- the stat cache -------------------------------------------------------------------------
def _old_stat(path: Path) -> os.stat_result:
    old = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(old, old))
    return os.stat(path)


def test_stat_cache_round_trip_and_invalidation(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "cache.db")
    path = tmp_path / "f.txt"
    path.write_text("abc")
    stat = _old_stat(path)

    cache.record([(str(path), stat, "h" * 64)])

    assert cached_hash(cache.lookup(path), stat) == "h" * 64
    assert cached_hash(cache.lookup(path), os.stat(tmp_path)) is None  # other inode/size
    path.write_text("abcd")
    assert cached_hash(cache.lookup(path), os.stat(path)) is None
    assert cached_hash(None, stat) is None
    cache.close()
    reopened = StatCache(tmp_path / "cache.db")
    assert reopened.lookup(path) is not None  # it persists
    reopened.close()


def test_stat_cache_skips_racy_files(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "cache.db")
    path = tmp_path / "fresh.txt"
    path.write_text("just written")

    cache.record([(str(path), os.stat(path), "h" * 64)])

    assert cache.lookup(path) is None
    cache.close()


def test_stat_cache_tree_lookup_stays_inside_the_folder(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "cache.db")
    paths = ["d/a", "d/sub/b", "d-other/c", "d0/e", "dd/f"]
    entries = []
    for relative in paths:
        path = tmp_path / "root" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(relative)
        entries.append((str(path), _old_stat(path), hash_bytes(relative.encode())))
    cache.record(entries)

    found = cache.lookup_tree(tmp_path / "root" / "d")

    assert sorted(Path(p).relative_to(tmp_path / "root").as_posix() for p in found) == [
        "d/a",
        "d/sub/b",
    ]
    cache.close()
