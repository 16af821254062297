"""``assay verify`` and ``assay gc``, against blobs damaged on disk."""

from __future__ import annotations

import os
from pathlib import Path

from cli_helpers import catalog_state, expect_error, invoke, ok, store_blobs

from assay.bundles import operations
from assay.bundles.workspace import open_workspace


def _blob_path(name: str, context: str = "lab") -> tuple[str, Path]:
    """(uuid, on-disk blob path) of the single file of bundle ``name``."""
    workspace = open_workspace()
    record = operations.resolve(workspace, context, name)
    [entry] = operations.files_of(workspace, record)
    return record.uuid, workspace.store.path_for(entry.blob_hash)


def _corrupt(blob: Path) -> None:
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))


def test_verify_all_good(lab_any: Path, data_dir: Path, make_file) -> None:
    ok("add", "raw", data_dir)
    ok("add", "one", make_file("a.txt", "a"))
    assert ok("verify").stdout.strip() == "all 3 files verified"
    assert ok("verify", "raw").stdout.strip() == "all 2 files verified"
    assert ok("verify", "--all", "--json").json() == {"files_verified": 3, "problems": []}


def test_verify_reports_a_corrupted_blob(lab: Path, make_file) -> None:
    ok("add", "good", make_file("good.txt", "fine\n"))
    ok("add", "raw", make_file("a.txt", "hello world\n"))
    uuid, blob = _blob_path("raw")
    _corrupt(blob)
    before = catalog_state()

    run = invoke("verify")
    line = expect_error(run, 5, f"raw@{uuid[:8]}", "a.txt", blob.parent.name, "corrupted")
    assert "1 of 2 files failed verification" in line
    assert f"raw@{uuid[:8]}" in run.stdout and "corrupted" in run.stdout  # the table

    expect_error(invoke("verify", "raw"), 5, "1 of 1 files")
    assert ok("verify", "good").stdout.strip() == "all 1 files verified"

    run = invoke("verify", "--all", "--json")
    expect_error(run, 5)
    error = run.json()["error"]
    assert error["code"] == "verification_failed"
    assert error["files_verified"] == 2
    [problem] = error["problems"]
    assert problem["bundle_uuid"] == uuid
    assert problem["bundle_name"] == "raw"
    assert problem["path"] == "a.txt"
    # The first verify moved the corrupted blob aside; later ones say so.
    assert problem["problem"] == "quarantined"
    assert not blob.exists()
    assert (lab / "store" / "quarantine" / problem["blob_hash"]).exists()
    assert catalog_state() == before  # verify changes no catalog row


def test_verify_reports_a_missing_blob(lab: Path, make_file) -> None:
    ok("add", "raw", make_file("a.txt", "hello\n"))
    uuid, blob = _blob_path("raw")
    blob.unlink()
    expect_error(invoke("verify"), 5, f"raw@{uuid[:8]}", "missing")


def test_cat_of_a_corrupted_bundle_refuses(lab: Path, make_file) -> None:
    ok("add", "raw", make_file("a.txt", "hello world\n"))
    uuid, blob = _blob_path("raw")
    _corrupt(blob)
    expect_error(invoke("cat", "raw"), 5, "corrupted", "assay verify")
    view = lab / "views" / uuid
    assert not (view / "a.txt").exists()  # no wrong bytes were handed out
    run = invoke("cat", "raw", "--json")
    assert run.exit_code == 5
    assert run.json()["error"]["code"] == "blob_corrupted"


def test_verify_bad_inputs(lab: Path) -> None:
    expect_error(invoke("verify", "nope"), 3, "'nope'")
    expect_error(invoke("verify", "raw", "--all"), 2, "not both")
    expect_error(invoke("verify", "-c", "nope"), 3, "no context named 'nope'")


def test_gc_removes_blobs_of_removed_bundles(lab_any: Path, make_file) -> None:
    ok("add", "keep", make_file("keep.txt", "keep\n"))
    ok("add", "drop", make_file("drop.txt", "drop me\n"))
    assert len(store_blobs(lab_any)) == 2
    ok("rm", "drop")

    run = ok("gc", "--grace", "3600")  # the fresh unreferenced blob is kept
    assert "removed 0 of 2 blob(s)" in run.stdout
    assert "kept 1 unreferenced blob(s)" in run.stdout
    assert len(store_blobs(lab_any)) == 2

    report = ok("gc", "--grace", "0", "--json").json()
    assert report["blobs_removed"] == 1
    assert report["bytes_freed"] == len("drop me\n")
    assert report["blobs_kept_in_grace"] == 0
    assert len(store_blobs(lab_any)) == 1
    assert ok("verify").stdout.strip() == "all 1 files verified"


def test_gc_bad_grace_is_a_usage_error(lab: Path) -> None:
    run = invoke("gc", "--grace", "-1")
    assert run.exit_code == 2
    assert "Traceback" not in run.stderr
