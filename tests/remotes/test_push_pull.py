"""Push, pull, localize and delocalize against a real S3 server (moto) and a shared folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remote_helpers import Machine, Remote, remote_bytes, remote_keys

from assay import api
from assay.bundle import Bundle
from assay.core.errors import (
    BundleNotFound,
    NotCommitted,
    NotLocalized,
    RemoteNotBound,
    UnpushedBundles,
)
from assay.core.hashing import hash_file
from helpers import blob_files, catalog_counts, write_files


def _committed(context: str, name: str, root: Path, files: dict[str, str], **tags: str) -> Bundle:
    write_files(root, files)
    bundle = api.add(context, name, root, tags=tags or None)
    api.commit(context, name)
    return bundle


def _blob_keys(remote: Remote) -> list[str]:
    return [k for k in remote_keys(remote, "objects") if k.startswith("objects/")]


def test_push_then_pull_on_another_machine_gives_identical_content(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "shared", remote.url)
        bundle = _committed(
            "lab", "scans", tmp_path / "scans", {"x.csv": "a,b\n1,2\n", "deep/y.bin": "y" * 5000}
        )
        report = api.push("lab")
        assert report.pushed == (bundle.uuid,)
        assert report.blobs_uploaded == 2
        content_hash = bundle.content_hash
    with b.active():
        api.context("mirror")
        api.remote("mirror", "shared", remote.url)
        pulled = api.pull("mirror")
        assert pulled.pulled == (bundle.uuid,)
        got = api.get("mirror", "scans")
        assert got is not None
        assert (got.uuid, got.content_hash, got.committed) == (bundle.uuid, content_hash, True)
        assert not got.localized
        api.localize("mirror", "scans")
        paths = sorted(got.data)
        assert [
            Path(p).relative_to(Path(p).parents[1 if "deep" in p else 0]).as_posix() for p in paths
        ]
        by_name = {Path(p).name: Path(p).read_text() for p in paths}
        assert by_name == {"x.csv": "a,b\n1,2\n", "y.bin": "y" * 5000}
        for entry in got.files:  # every blob hash-verified
            assert (
                hash_file(b.home / "store" / "objects" / entry.blob_hash[:2] / entry.blob_hash[2:])
                == entry.blob_hash
            )


def test_the_remote_layout(sqlite_home: Path, remote: Remote, tmp_path: Path) -> None:
    api.context("lab")
    api.remote("lab", "shared", remote.url)
    bundle = _committed("lab", "one", tmp_path / "d", {"f.txt": "hello"}, stage="raw")
    api.push("lab")

    keys = remote_keys(remote)
    record_key = f"contexts/shared/bundles/{bundle.uuid}.json"
    assert record_key in keys
    segments = [k for k in keys if k.startswith("contexts/shared/index/")]
    assert len(segments) == 1
    blob = bundle.files[0].blob_hash
    assert f"objects/{blob[:2]}/{blob[2:]}" in keys
    record = json.loads(remote_bytes(remote, record_key) or b"")
    assert record["content_hash"] == bundle.content_hash
    assert record["files"] == [["f.txt", blob, 5]]
    segment = json.loads(remote_bytes(remote, segments[0]) or b"")
    assert segment["kind"] == "add"
    assert segment["bundles"][0]["uuid"] == bundle.uuid
    assert segment["bundles"][0]["tags"] == {"stage": "raw"}


def test_identical_files_are_uploaded_once_across_bundles_and_contexts(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("one")
    api.context("two")
    api.remote("one", "one", remote.url)
    api.remote("two", "two", remote.url)
    _committed("one", "first", tmp_path / "a", {"same.txt": "shared bytes", "own.txt": "1"})
    _committed("one", "second", tmp_path / "b", {"same.txt": "shared bytes"})
    first = api.push("one")
    assert first.blobs_uploaded == 2
    _committed("two", "third", tmp_path / "c", {"copy.txt": "shared bytes", "new.txt": "n"})
    second = api.push("two")
    assert (second.blobs_uploaded, second.blobs_already_there) == (1, 1)
    assert len(_blob_keys(remote)) == 3


def test_re_push_of_unchanged_bundles_sends_nothing(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    files = {f"f{i:03}.txt": f"content {i}" for i in range(120)}
    bundle = _committed("lab", "many", tmp_path / "many", files)
    api.push("lab")
    keys = remote_keys(remote)

    again = api.push("lab")

    assert again.pushed == ()
    assert again.already_there == (bundle.uuid,)
    assert (again.blobs_uploaded, again.bytes_uploaded) == (0, 0)
    assert remote_keys(remote) == keys  # not even a new index segment


def test_pushing_an_uncommitted_bundle_is_refused_with_the_hint(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    write_files(tmp_path / "d", {"f.txt": "draft"})
    draft = api.add("lab", "draft", tmp_path / "d")

    with pytest.raises(NotCommitted) as caught:
        api.push("lab", "draft")

    message = str(caught.value)
    assert f"draft@{draft.uuid[:8]} is not committed" in message
    assert "assay commit draft" in message
    assert remote_keys(remote) == []  # nothing written to the remote
    with pytest.raises(NotCommitted):
        api.push("lab", uuid=draft.uuid)
    report = api.push("lab")  # everything: the uncommitted one is skipped, counted
    assert (report.pushed, report.skipped_uncommitted) == ((), 1)
    assert remote_keys(remote) == []


def test_push_without_a_remote_says_how_to_bind_one(sqlite_home: Path, tmp_path: Path) -> None:
    api.context("lab")
    _committed("lab", "x", tmp_path / "d", {"f": "1"})
    with pytest.raises(RemoteNotBound, match="assay remote add lab URL"):
        api.push("lab")
    with pytest.raises(RemoteNotBound):
        api.pull("lab")


def test_reading_a_bundle_that_is_not_localized_says_how_to_localize(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        with Bundle("lab", "mixed") as made:
            target = made.make_file("table.csv")
            Path(target.path).write_text("a\n1\n")
            made.add_data({"rows": 1, "table": target})
        made.commit()
        made.push()
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab")
        got = api.get("lab", "mixed")
        assert got is not None
        with pytest.raises(NotLocalized) as caught:
            _ = got.data
        assert "assay localize mixed" in str(caught.value)
        assert "Bundle.localize()" in str(caught.value)
        with pytest.raises(NotLocalized):
            api.cat("lab", "mixed")
        assert got.files[0].path == "table.csv"  # metadata is here without the data
        got.localize()
        data = got.data
        assert data["rows"] == 1
        assert Path(data["table"]).read_text() == "a\n1\n"


def test_a_bundle_of_values_only_reads_without_localizing(
    machines: tuple[Machine, Machine], remote: Remote
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        with Bundle("lab", "numbers") as made:
            made.add_data({"answer": 42})
        made.commit().push()
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab", "numbers")
        assert api.cat("lab", "numbers") == {"answer": 42}


def test_partial_pull_by_name_uuid_and_tags(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        v1 = _committed("lab", "series", tmp_path / "s1", {"f": "1"}, year="2025")
        v2 = _committed("lab", "series", tmp_path / "s2", {"f": "2"}, year="2026")
        other = _committed("lab", "other", tmp_path / "o", {"f": "o"}, year="2026")
        api.push("lab")
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        assert api.pull("lab", uuid=v1.uuid[:8]).pulled == (v1.uuid,)
        assert set(api.pull("lab", tags={"year": "2026"}).pulled) == {v2.uuid, other.uuid}
        assert {x.uuid for x in api.search("lab")} == {v1.uuid, v2.uuid, other.uuid}
        again = api.pull("lab")
        assert (again.pulled, set(again.already_here)) == ((), {v1.uuid, v2.uuid, other.uuid})
        with pytest.raises(BundleNotFound, match="no bundle with name 'missing' on remote"):
            api.pull("lab", "missing")
        api.context("second")
        api.remote("second", "lab", remote.url)
        report = api.pull("second", "series")  # a uuid lives in one context per catalog
        assert report.pulled == ()
        assert {u for u, _ in report.skipped} == {v1.uuid, v2.uuid}
        assert all("already in context 'lab'" in why for _, why in report.skipped)


def test_pull_by_name_brings_every_version(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        v1 = _committed("lab", "series", tmp_path / "s1", {"f": "1"})
        api.push("lab", "series")
        v2 = _committed("lab", "series", tmp_path / "s2", {"f": "2"})
        api.push("lab", "series")
        _committed("lab", "other", tmp_path / "o", {"f": "o"})
        api.push("lab")
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        report = api.pull("lab", "series", localize=True)
        assert set(report.pulled) == {v1.uuid, v2.uuid}
        assert set(report.localized) == {v1.uuid, v2.uuid}
        assert [x.uuid for x in api.search("lab")] == [v2.uuid, v1.uuid]
        assert Path(api.cat("lab", "series")[0]).read_text() == "2"


def test_delocalize_frees_blobs_safely_on_the_remote_and_keeps_local_only_ones(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    pushed = _committed("lab", "pushed", tmp_path / "p", {"only.txt": "o", "shared.txt": "s"})
    api.push("lab")
    write_files(tmp_path / "l", {"shared.txt": "s"})
    local_only = api.add("lab", "local", tmp_path / "l")
    shared_blob = local_only.files[0].blob_hash
    only_blob = next(f.blob_hash for f in pushed.files if f.path == "only.txt")

    report = api.delocalize("lab", "pushed")

    assert (report.blobs_removed, report.blobs_kept) == (1, 1)
    blobs = set(blob_files(sqlite_home))
    assert shared_blob in blobs and only_blob not in blobs
    assert Path(api.cat("lab", "local")[0]).read_text() == "s"  # the local-only bundle intact
    assert not api.get("lab", "pushed").localized
    with pytest.raises(NotLocalized):
        api.cat("lab", "pushed")
    api.localize("lab", "pushed")
    assert sorted(Path(p).read_text() for p in api.cat("lab", "pushed")) == ["o", "s"]


def test_delocalize_refuses_a_bundle_not_on_the_remote(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    _committed("lab", "unpushed", tmp_path / "u", {"f.txt": "precious"})
    blobs = set(blob_files(sqlite_home))
    with pytest.raises(UnpushedBundles, match="not on remote"):
        api.delocalize("lab", "unpushed")
    assert set(blob_files(sqlite_home)) == blobs
    assert Path(api.cat("lab", "unpushed")[0]).read_text() == "precious"


def test_delocalize_refuses_when_the_remote_lost_a_blob(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    bundle = _committed("lab", "b", tmp_path / "b", {"f.txt": "data"})
    api.push("lab")
    blob = bundle.files[0].blob_hash
    from assay.store.remote import RemoteStore

    RemoteStore(remote.url).delete([f"objects/{blob[:2]}/{blob[2:]}"])
    with pytest.raises(UnpushedBundles, match="lacks 1 of the files"):
        api.delocalize("lab", "b")
    assert blob in blob_files(sqlite_home)


def test_pulled_bundles_count_as_on_the_remote_for_delete_context(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        _committed("lab", "x", tmp_path / "x", {"f": "x"})
        api.push("lab")
        _committed("lab", "y", tmp_path / "y", {"f": "y"})
        before = catalog_counts()
        with pytest.raises(UnpushedBundles) as caught:
            api.delete_context("lab")
        assert "1 committed bundle(s) not pushed to its remote lab@" in str(caught.value)
        assert "y@" in str(caught.value) and "x@" not in str(caught.value)
        assert catalog_counts() == before
        api.push("lab")
        api.delete_context("lab")  # everything is on the remote now
        assert api.ls_contexts() == []
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab")
        api.delete_context("lab")  # pulled bundles are safely on the remote


def test_ls_contexts_shows_the_remote(sqlite_home: Path, remote: Remote) -> None:
    api.context("lab")
    api.context("plain")
    api.remote("lab", "shared", remote.url)
    infos = {c.name: c.remote for c in api.ls_contexts()}
    assert infos == {"lab": f"shared@{remote.url}", "plain": None}
