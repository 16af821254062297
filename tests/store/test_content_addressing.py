"""Content addressing: equal content gives an equal hash and is stored once; the stat cache
spares re-hashing unchanged files."""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay import api
from assay.core.hashing import hash_bytes
from helpers import OLD_MTIME_NS, blob_files, catalog_counts, collect_everything, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


# -- equal content, equal hash --------------------------------------------------------------
_segment = st.text(alphabet="abcdefgh0123_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_paths = st.lists(_segment, min_size=1, max_size=3).map("/".join)


def _no_file_is_a_folder(paths: dict[str, bytes]) -> bool:
    folders = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    return not folders & set(paths)


_file_sets = st.dictionaries(_paths, st.binary(max_size=64), min_size=1, max_size=8).filter(
    _no_file_is_a_folder
)
_counter = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(files=_file_sets, seed=st.integers(0, 2**32 - 1))
def test_same_files_in_any_order_at_any_time_give_the_same_hash(
    sqlite_home: Path, tmp_path: Path, files: dict[str, bytes], seed: int
) -> None:
    if not any(c.name == CTX for c in api.ls_contexts()):
        api.context(CTX)
    run = next(_counter)
    shuffled = list(files.items())
    random.Random(seed).shuffle(shuffled)
    first = write_files(tmp_path / f"first-{run}", files, mtime_ns=OLD_MTIME_NS)
    second = write_files(tmp_path / f"second-{run}", dict(shuffled))  # other order, other time

    one = api.add(CTX, f"one-{run}", first)
    two = api.add(CTX, f"two-{run}", second)

    assert one.content_hash == two.content_hash
    assert {f.path: f.blob_hash for f in one.files} == {
        path: hash_bytes(data) for path, data in files.items()
    }
    # One byte more in any one file changes the hash.
    changed_path = sorted(files)[seed % len(files)]
    (second / changed_path).write_bytes(files[changed_path] + b"!")
    assert api.add(CTX, f"two-{run}", second).content_hash != one.content_hash


def test_same_content_in_another_context_or_name_has_the_same_hash(
    ctx: str, tmp_path: Path
) -> None:
    api.context("other")
    source = write_files(tmp_path / "d", {"a.txt": "a", "b/c.txt": "c"})
    here = api.add(ctx, "here", source)
    there = api.add("other", "there", source)
    assert here.content_hash == there.content_hash
    assert here.uuid != there.uuid


def test_file_names_are_part_of_the_content(ctx: str, tmp_path: Path) -> None:
    one = api.add(ctx, "one", write_files(tmp_path / "1", {"a.txt": "same"}))
    two = api.add(ctx, "two", write_files(tmp_path / "2", {"b.txt": "same"}))
    assert one.content_hash != two.content_hash
    assert one.files[0].blob_hash == two.files[0].blob_hash


def test_identical_files_are_stored_once(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    files = {f"copy{i}.bin": b"identical bytes" for i in range(5)}
    files |= {"nested/again.bin": b"identical bytes", "other.bin": b"different"}
    api.add(ctx, "first", write_files(tmp_path / "a", files))
    api.add(ctx, "second", write_files(tmp_path / "b", files))
    api.add(ctx, "single", write_files(tmp_path / "c", {"x": b"identical bytes"}) / "x")

    assert set(blob_files(assay_home)) == {hash_bytes(b"identical bytes"), hash_bytes(b"different")}
    for blob_hash, path in blob_files(assay_home).items():
        assert hash_bytes(path.read_bytes()) == blob_hash  # named by their content


def test_blobs_are_read_only(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    api.add(ctx, "d", write_files(tmp_path / "d", {"a": "a"}))
    [path] = blob_files(assay_home).values()
    assert path.stat().st_mode & 0o222 == 0


# -- the stat cache ---------------------------------------------------------------------------
def _stat_cache_rows(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "statcache.db") as db:
        return dict(db.execute("SELECT path, blob_hash FROM stat_cache"))


@pytest.mark.parametrize("count", [1, 40], ids=["one-file", "tree-lookup"])
def test_unchanged_files_are_not_re_hashed(
    ctx: str, tmp_path: Path, assay_home: Path, count: int
) -> None:
    """Proof by a deliberate blind spot.

    Like DVC and git, Assay trusts a file whose (inode, size, mtime) are unchanged since it was
    last hashed. To prove the second add does not read the file, we change its bytes in place
    (same inode), keep its size and put its mtime back: only a stat-cache hit can then give
    the *old* hash. This is the intended trade-off, not a bug: a tool that rewrites a file in
    place and forges its mtime defeats the cache (as it defeats make, git and DVC).
    """
    files = {f"part{i:02}.txt": f"original {i:02}" for i in range(count)}
    source = write_files(tmp_path / "d", files, mtime_ns=OLD_MTIME_NS)
    first = api.add(ctx, "d", source)
    cached = _stat_cache_rows(assay_home)
    victim = source / "part00.txt"
    assert cached[str(victim)] == hash_bytes(b"original 00")
    assert len(cached) == count

    inode = victim.stat().st_ino
    with open(victim, "r+b") as handle:  # same inode, same size, new bytes
        handle.write(b"FORGED!!!!!")
    os.utime(victim, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    assert victim.stat().st_ino == inode and victim.read_bytes() == b"FORGED!!!!!"
    rows = catalog_counts()

    again = api.add(ctx, "d", source)

    assert again.uuid == first.uuid  # same hash, so "unchanged": no new version
    assert catalog_counts() == rows
    assert hash_bytes(b"FORGED!!!!!") not in blob_files(assay_home)
    view = {Path(p).name: Path(p).read_bytes() for p in api.cat(ctx, "d")}
    assert view["part00.txt"] == b"original 00"  # what the store holds is still verified

    # Any stat change (here the mtime) makes Assay hash the file again.
    os.utime(victim, ns=(OLD_MTIME_NS + 10**9, OLD_MTIME_NS + 10**9))
    changed = api.add(ctx, "d", source)
    assert changed.uuid != first.uuid
    assert {f.path: f.blob_hash for f in changed.files}["part00.txt"] == hash_bytes(b"FORGED!!!!!")


def test_a_same_size_change_with_a_new_mtime_is_seen(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    source = write_files(tmp_path / "d", {"f.txt": "aaaa"}, mtime_ns=OLD_MTIME_NS)
    first = api.add(ctx, "d", source)
    write_files(source, {"f.txt": "bbbb"})  # same size, fresh mtime

    second = api.add(ctx, "d", source)

    assert second.uuid != first.uuid
    assert Path(api.cat(ctx, "d")[0]).read_text() == "bbbb"


def test_a_replaced_file_with_the_old_mtime_is_seen(ctx: str, tmp_path: Path) -> None:
    """Replacing (a new inode) rather than rewriting in place is caught even with a forged mtime."""
    source = write_files(tmp_path / "d", {"f.txt": "aaaa"}, mtime_ns=OLD_MTIME_NS)
    first = api.add(ctx, "d", source)
    replacement = write_files(tmp_path / "new", {"f.txt": "bbbb"}, mtime_ns=OLD_MTIME_NS)
    os.replace(replacement / "f.txt", source / "f.txt")

    second = api.add(ctx, "d", source)

    assert second.uuid != first.uuid
    assert Path(api.cat(ctx, "d")[0]).read_text() == "bbbb"


def test_files_modified_just_now_are_not_cached(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    """A file changed within the racy window may change again within one mtime tick."""
    source = write_files(tmp_path / "d", {"fresh.txt": "new"})
    api.add(ctx, "d", source)
    assert str(source / "fresh.txt") not in _stat_cache_rows(assay_home)


def test_a_blob_removed_from_the_store_is_stored_again(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    """A stat-cache hit is not trusted when the blob it names is gone (e.g. after gc)."""
    source = write_files(tmp_path / "d", {"f.txt": "keep me"}, mtime_ns=OLD_MTIME_NS)
    api.add(ctx, "d", source)
    api.rm(ctx, "d")
    collect_everything()
    assert blob_files(assay_home) == {}

    api.add(ctx, "d", source)

    assert set(blob_files(assay_home)) == {hash_bytes(b"keep me")}
    assert api.verify() == []
    assert Path(api.cat(ctx, "d")[0]).read_text() == "keep me"
