"""verify, gc, and the uncommitted-history limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from assay import api
from assay.bundle import Bundle
from assay.core.errors import ContextNotFound
from assay.core.hashing import hash_bytes
from helpers import blob_files, catalog_counts, temp_files, write_files

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _corrupt(home: Path, blob_hash: str, data: bytes = b"garbage") -> None:
    path = blob_files(home)[blob_hash]
    os.chmod(path, 0o644)
    path.write_bytes(data)


# -- verify ---------------------------------------------------------------------------------
def test_verify_clean_store(ctx: str, tmp_path: Path) -> None:
    api.add(ctx, "d", write_files(tmp_path / "d", {"a": "1", "b/c": "2"}))
    assert api.verify() == []
    assert api.verify(ctx) == []
    assert api.verify(ctx, "d") == []


def test_verify_names_bundle_path_and_blob(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    good = api.add(ctx, "good", write_files(tmp_path / "g", {"ok.txt": "fine"}))
    bad = api.add(ctx, "bad", write_files(tmp_path / "b", {"x.txt": "fine", "sub/y.txt": "bad"}))
    shares = api.add(ctx, "shares", write_files(tmp_path / "s", {"same.txt": "bad"}))
    broken = hash_bytes(b"bad")
    _corrupt(assay_home, broken)

    problems = api.verify()

    found = sorted((p.bundle_name, p.context, p.path, p.blob_hash, p.problem) for p in problems)
    assert found == [
        ("bad", ctx, "sub/y.txt", broken, "corrupted"),
        ("shares", ctx, "same.txt", broken, "corrupted"),
    ]
    assert {p.bundle_uuid for p in problems} == {bad.uuid, shares.uuid}
    assert api.verify(ctx, "good") == []
    assert [p.bundle_uuid for p in api.verify(ctx, uuid=bad.uuid)] == [bad.uuid]
    assert len(api.verify(ctx)) == 2
    assert good.uuid not in {p.bundle_uuid for p in problems}


def test_verify_reports_missing_blobs(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    bundle = api.add(ctx, "d", write_files(tmp_path / "d", {"gone.txt": "gone"}))
    blob_files(assay_home)[hash_bytes(b"gone")].unlink()

    [problem] = api.verify(ctx, "d")

    assert (problem.bundle_uuid, problem.path, problem.problem) == (
        bundle.uuid,
        "gone.txt",
        "missing",
    )


def test_verify_a_bundle_needs_its_context(ctx: str) -> None:
    with pytest.raises(ContextNotFound, match="give the context"):
        api.verify(bundle_name="d")


# -- gc -------------------------------------------------------------------------------------
def test_gc_removes_orphans_and_keeps_referenced_blobs(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    api.add(ctx, "keep", write_files(tmp_path / "k", {"shared.txt": "shared", "k.txt": "keep"}))
    api.add(ctx, "drop", write_files(tmp_path / "d", {"shared.txt": "shared", "d.txt": "drop"}))
    assert len(blob_files(assay_home)) == 3
    api.rm(ctx, "drop")
    assert len(blob_files(assay_home)) == 3  # rm leaves blobs to gc

    report = api.gc(grace_seconds=0)

    assert report.blobs_removed == 1
    assert report.bytes_freed == len(b"drop")
    assert set(blob_files(assay_home)) == {hash_bytes(b"shared"), hash_bytes(b"keep")}
    assert api.verify() == []
    assert sorted(Path(p).read_text() for p in api.cat(ctx, "keep")) == ["keep", "shared"]
    assert api.gc(grace_seconds=0).blobs_removed == 0  # idempotent


def test_gc_keeps_unreferenced_blobs_younger_than_grace(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    api.add(ctx, "keep", write_files(tmp_path / "k", {"k.txt": "kept"}))
    api.add(ctx, "drop", write_files(tmp_path / "d", {"d.txt": "young"}))
    api.rm(ctx, "drop")

    report = api.gc(grace_seconds=3600)

    assert (report.blobs_removed, report.blobs_kept_in_grace) == (0, 1)
    assert hash_bytes(b"young") in blob_files(assay_home)

    # Once it is older than the grace period it goes.
    blob = blob_files(assay_home)[hash_bytes(b"young")]
    old = time.time() - 7200
    os.utime(blob, (old, old))
    report = api.gc(grace_seconds=3600)
    assert (report.blobs_removed, report.blobs_kept_in_grace) == (1, 0)
    assert set(blob_files(assay_home)) == {hash_bytes(b"kept")}


def test_gc_removes_left_over_temp_files_and_stale_views(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    live = api.add(ctx, "live", write_files(tmp_path / "l", {"l.txt": "live"}))
    [live_view] = map(Path, live.data)
    leftover = assay_home / "store" / "tmp" / "killed-writer.part"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a blob")
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    stale_view = assay_home / "views" / "00000000-dead-4000-8000-000000000000"
    write_files(stale_view, {"x.txt": "stale"})

    report = api.gc(grace_seconds=0)

    assert report.temp_files_removed == 1
    assert report.views_removed == 1
    assert temp_files(assay_home) == []
    assert not stale_view.exists()
    assert live_view.exists()


def test_gc_on_an_empty_home(assay_home: Path) -> None:
    report = api.gc(grace_seconds=0)
    assert (report.blobs_removed, report.temp_files_removed, report.views_removed) == (0, 0, 0)


# -- the uncommitted history ----------------------------------------------------------------
@pytest.fixture
def limit_3(ctx: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ASSAY_MAX_UNCOMMITTED", "3")
    return ctx


def _version(ctx: str, tmp_path: Path, name: str, i: int) -> api.Bundle:
    source = write_files(tmp_path / f"{name}-v{i}", {"f.txt": f"version {i}"})
    return api.add(ctx, name, source / "f.txt")


def test_keeps_the_newest_uncommitted_versions(limit_3: str, tmp_path: Path) -> None:
    made = [_version(limit_3, tmp_path, "m", i) for i in range(5)]
    other = _version(limit_3, tmp_path, "other", 0)

    kept = [b.uuid for b in api.search(limit_3, "m")]

    assert kept == [b.uuid for b in reversed(made[2:])]
    assert Path(api.cat(limit_3, "m")).read_text() == "version 4"
    assert api.get(limit_3, uuid=made[0].uuid) is None
    assert api.get(limit_3, "other").uuid == other.uuid
    assert catalog_counts()["bundles"] == 4


def test_pruned_versions_lose_their_views(limit_3: str, tmp_path: Path, assay_home: Path) -> None:
    first = _version(limit_3, tmp_path, "m", 0)
    view = Path(first.data)
    assert view.exists()
    for i in range(1, 4):
        _version(limit_3, tmp_path, "m", i)

    assert api.get(limit_3, uuid=first.uuid) is None
    assert not (assay_home / "views" / first.uuid).exists()


def test_committed_versions_are_kept_beyond_the_limit(limit_3: str, tmp_path: Path) -> None:
    committed = [_version(limit_3, tmp_path, "m", i) for i in range(2)]
    for bundle in committed:
        bundle.commit()
    drafts = [_version(limit_3, tmp_path, "m", i) for i in range(2, 7)]

    kept = {b.uuid for b in api.search(limit_3, "m")}

    assert kept == {b.uuid for b in committed} | {b.uuid for b in drafts[-3:]}
    assert len(api.search(limit_3, "m", is_committed=False)) == 3


def test_a_version_something_depends_on_is_not_pruned(limit_3: str, tmp_path: Path) -> None:
    used = _version(limit_3, tmp_path, "m", 0)
    with Bundle(limit_3, "report") as report:
        report.add_data("made from m v0")
        report.add_dependency(used)
    later = [_version(limit_3, tmp_path, "m", i) for i in range(1, 6)]

    kept = {b.uuid for b in api.search(limit_3, "m")}

    assert used.uuid in kept
    assert kept == {used.uuid} | {b.uuid for b in later[-3:]}
    assert [n.uuid for n in api.lineage(limit_3, report.uuid)] == [report.uuid, used.uuid]
