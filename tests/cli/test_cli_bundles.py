"""``assay add``, ``assay commit``, ``assay rm``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok, store_blobs

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.core.records import Dependency


def test_add_directory_prints_the_bundle(lab_any: Path, data_dir: Path) -> None:
    run = ok("add", "raw", data_dir, "--tag", "stage=raw", "-t", "year=2024")
    bundle = api.get("lab", "raw")
    assert bundle is not None
    record = bundle.record
    assert f"added raw@{record.uuid[:8]} to context 'lab'" in run.stdout
    for expected in (record.uuid, record.content_hash, "files", "2", "14 B", "stage=raw"):
        assert expected in run.stdout
    assert record.tags == {"stage": "raw", "year": "2024"}
    assert record.presentation == "files"


def test_add_identical_content_reuses_the_bundle(lab: Path, data_dir: Path) -> None:
    first = ok("add", "raw", data_dir, "--json").json()
    assert first["status"] == "new"
    again = ok("add", "raw", data_dir)
    assert again.stdout.startswith(f"unchanged: raw@{first['bundle']['uuid'][:8]}")
    second = ok("add", "raw", data_dir, "--json").json()
    assert second["status"] == "unchanged"
    assert second["bundle"]["uuid"] == first["bundle"]["uuid"]
    # A different tag is a different bundle version.
    third = ok("add", "raw", data_dir, "--tag", "k=v", "--json").json()
    assert third["status"] == "new"
    assert third["bundle"]["uuid"] != first["bundle"]["uuid"]
    assert len(operations.versions(open_workspace(), "lab", "raw")) == 2


def test_add_json_shape(lab: Path, make_file) -> None:
    document = ok("add", "one", make_file("a.txt", "hello\n"), "--json").json()
    bundle = document["bundle"]
    assert document["status"] == "new"
    assert bundle["name"] == "one"
    assert bundle["context"] == "lab"
    assert bundle["presentation"] == "file"
    assert bundle["file_count"] == 1
    assert bundle["total_size"] == 6
    assert bundle["committed"] is False
    assert len(bundle["content_hash"]) == 64
    assert bundle["created"].endswith("+00:00")


def test_add_with_explicit_context(sqlite_home: Path, make_file) -> None:
    ok("context", "create", "other")
    ok("add", "raw", make_file("a.txt", "a"), "--context", "other")
    assert api.get("other", "raw") is not None
    assert api.current_context() is None


def test_add_missing_path_writes_nothing(lab: Path, tmp_path: Path) -> None:
    before = catalog_state()
    missing = tmp_path / "does-not-exist"
    expect_error(invoke("add", "raw", missing), 2, "path does not exist", str(missing))
    assert catalog_state() == before
    assert store_blobs(lab) == []


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("Bad=1", "invalid tag key 'Bad'"),
        ("bad_=1", "invalid tag key 'bad_'"),
        ("nokey", "invalid tag 'nokey': write tags as key=value"),
    ],
)
def test_add_bad_tag_writes_nothing(lab: Path, data_dir: Path, tag: str, message: str) -> None:
    run = invoke("add", "raw", data_dir, "--tag", tag)
    expect_error(run, 2, message)
    assert catalog_state() == {"lab": []}
    assert store_blobs(lab) == []


@pytest.mark.parametrize("name", ["a/b", ".."])
def test_add_bad_bundle_name_writes_nothing(lab: Path, data_dir: Path, name: str) -> None:
    expect_error(invoke("add", name, data_dir), 2, "invalid bundle name")
    assert catalog_state() == {"lab": []}


@pytest.mark.parametrize("context", ["a/b", ".."])
def test_add_bad_context_name(lab: Path, data_dir: Path, context: str) -> None:
    expect_error(invoke("add", "raw", data_dir, "-c", context), 2, "invalid context name")
    assert catalog_state() == {"lab": []}


def test_add_unknown_context(lab: Path, data_dir: Path) -> None:
    expect_error(invoke("add", "raw", data_dir, "-c", "nope"), 3, "no context named 'nope'")
    assert catalog_state() == {"lab": []}
    assert store_blobs(lab) == []


def test_commit(lab_any: Path, make_file) -> None:
    ok("add", "raw", make_file("a.txt", "a"))
    uuid = ok("add", "raw", make_file("a.txt", "b"), "--json").json()["bundle"]["uuid"]
    run = ok("commit", "raw")
    assert run.stdout.strip() == f"committed raw@{uuid[:8]}"
    versions = operations.versions(open_workspace(), "lab", "raw")
    assert [v.committed for v in versions] == [True, False]  # only the newest

    older = versions[1].uuid
    document = ok("commit", "--uuid", older[:6], "--json").json()
    assert document["uuid"] == older
    assert document["committed"] is True


def test_commit_by_tag(lab: Path, make_file) -> None:
    ok("add", "raw", make_file("a.txt", "a"), "-t", "stage=one")
    ok("add", "raw", make_file("a.txt", "b"), "-t", "stage=two")
    document = ok("commit", "raw", "--tag", "stage=one", "--json").json()
    assert document["tags"] == {"stage": "one"}
    assert document["committed"] is True


def test_commit_unknown_bundle(lab: Path) -> None:
    expect_error(invoke("commit", "nope"), 3, "'nope'")
    expect_error(invoke("commit", "--uuid", "0123456789"), 3, "0123456789")
    expect_error(invoke("commit"), 2, "give a bundle name or --uuid")


def _three_versions(make_file) -> list[str]:
    return [
        ok("add", "raw", make_file("a.txt", text), "--json").json()["bundle"]["uuid"]
        for text in ("1", "2", "3")
    ]


def test_rm_newest_version(lab: Path, make_file) -> None:
    uuids = _three_versions(make_file)
    run = ok("rm", "raw")
    assert run.stdout.strip() == f"removed raw@{uuids[2][:8]} ({uuids[2]})"
    assert [v.uuid for v in operations.versions(open_workspace(), "lab", "raw")] == [
        uuids[1],
        uuids[0],
    ]


def test_rm_old_then_all(lab: Path, make_file) -> None:
    uuids = _three_versions(make_file)
    removed = ok("rm", "raw", "--old", "--json").json()["removed"]
    assert sorted(r["uuid"] for r in removed) == sorted(uuids[:2])
    assert "nothing to remove" in ok("rm", "raw", "--old").stdout
    ok("add", "raw", make_file("a.txt", "4"))
    assert len(ok("rm", "raw", "--all", "--json").json()["removed"]) == 2
    assert catalog_state() == {"lab": []}


def test_rm_by_uuid(lab: Path, make_file) -> None:
    uuids = _three_versions(make_file)
    ok("rm", "--uuid", uuids[0])
    remaining = {v.uuid for v in operations.versions(open_workspace(), "lab", "raw")}
    assert remaining == set(uuids[1:])


def test_rm_all_and_old_together_is_refused(lab: Path, make_file) -> None:
    _three_versions(make_file)
    before = catalog_state()
    expect_error(invoke("rm", "raw", "--all", "--old"), 2, "--all and --old")
    assert catalog_state() == before


def test_rm_unknown_bundle(lab: Path) -> None:
    expect_error(invoke("rm", "nope"), 3, "no bundle named 'nope'")
    expect_error(invoke("rm"), 2, "give a bundle name or --uuid")


def test_rm_refuses_while_others_depend(lab_any: Path, make_file) -> None:
    raw = ok("add", "raw", make_file("a.txt", "a"), "--json").json()["bundle"]["uuid"]
    derived = operations.create_bundle(
        open_workspace(),
        "lab",
        "derived",
        {"rows": 1},
        dependencies=[Dependency(raw, "depends_on", "source")],
    )
    before = catalog_state()
    expect_error(invoke("rm", "raw"), 4, f"raw@{raw[:8]}", f"derived@{derived.uuid[:8]}")
    expect_error(invoke("rm", "--uuid", raw, "--json"), 4, "derived@")
    assert catalog_state() == before

    ok("rm", "raw", "--force")
    assert api.get("lab", "raw") is None
    assert api.get("lab", "derived") is not None
