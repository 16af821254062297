"""Store/catalog binding on the command line: an emptied, replaced or foreign catalog never
collects blobs; ``assay doctor`` explains; gc's own guards (more than half, grace, dry run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok, store_blobs
from sqlalchemy import create_engine, text

from assay.bundles.workspace import close_workspaces


def _store_id(home: Path) -> str | None:
    path = home / "store" / "STORE_ID"
    return path.read_text().strip() if path.exists() else None


def _catalog_store_id(catalog_file: Path) -> str | None:
    engine = create_engine(f"sqlite:///{catalog_file}")
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT value FROM meta WHERE key = 'store_id'")).scalar()
    finally:
        engine.dispose()


def _age(home: Path, seconds: float = 7200) -> None:
    """Make every blob look old (past any grace period)."""
    old = time.time() - seconds
    for path in (home / "store" / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


def test_a_new_pair_is_bound_on_its_first_write(sqlite_home: Path, data_dir: Path) -> None:
    ok("context", "ls")  # a read: nothing is bound yet
    assert _store_id(sqlite_home) is None
    ok("context", "create", "lab")
    store_id = _store_id(sqlite_home)
    assert store_id is not None
    assert _catalog_store_id(sqlite_home / "catalog.db") == store_id
    ok("add", "raw", data_dir, "-c", "lab")
    assert _store_id(sqlite_home) == store_id  # stable


def test_gc_after_the_catalog_file_is_emptied_keeps_every_blob(
    lab: Path, data_dir: Path, tmp_path: Path
) -> None:
    """The issue's repro: ``assay add cd ./d; : > $ASSAY_HOME/catalog.db; assay gc``."""
    ok("add", "cd", data_dir)
    _age(lab)
    blobs = store_blobs(lab)
    assert len(blobs) == 2
    close_workspaces()
    with open(lab / "catalog.db", "w"):  # ": > catalog.db"
        pass
    close_workspaces()

    line = expect_error(invoke("gc"), 4, "is empty (or new)", "assay doctor")
    assert "store" in line
    assert store_blobs(lab) == blobs
    # --force lifts gc's own guards, never the binding.
    expect_error(invoke("gc", "--force", "--grace", "0"), 4, "refusing to write or collect")
    assert store_blobs(lab) == blobs
    run = invoke("gc", "--json")
    assert run.exit_code == 4
    assert run.json()["error"]["code"] == "store_catalog_mismatch"
    # Writes are refused too, before any blob is written.
    other = tmp_path / "other"
    other.mkdir()
    (other / "new.txt").write_text("brand new content\n")
    expect_error(invoke("context", "create", "lab"), 4, "refusing to write")
    assert store_blobs(lab) == blobs
    assert catalog_state() == {}

    doctor = ok("doctor", "--json").json()
    assert doctor["status"] == "mismatch"
    assert (doctor["blobs"], doctor["bundles"], doctor["unreferenced_blobs"]) == (2, 0, 2)
    assert doctor["store_id"] is not None and doctor["catalog_store_id"] is None
    assert any("--adopt --force" in step for step in doctor["way_out"])
    text_report = ok("doctor").stdout
    assert "status       mismatch" in text_report and "way out" in text_report


def test_a_foreign_catalog_is_refused_and_the_home_catalog_works_again(
    lab: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("add", "raw", data_dir)
    _age(lab)
    blobs = store_blobs(lab)
    # Another home's catalog (bound to that home's store) pointed at from this home.
    other_home = tmp_path / "other-home"
    monkeypatch.setenv("ASSAY_HOME", str(other_home))
    close_workspaces()
    ok("context", "create", "elsewhere")
    ok("add", "x", data_dir, "-c", "elsewhere")
    monkeypatch.setenv("ASSAY_HOME", str(lab))
    monkeypatch.setenv("ASSAY_CATALOG_URL", f"sqlite:///{other_home / 'catalog.db'}")
    close_workspaces()

    expect_error(invoke("gc", "--force"), 4, "belongs to another catalog")
    expect_error(invoke("add", "y", data_dir, "-c", "elsewhere"), 4, "belongs to another")
    assert store_blobs(lab) == blobs
    assert ok("doctor", "--json").json()["status"] == "mismatch"

    monkeypatch.delenv("ASSAY_CATALOG_URL")
    close_workspaces()
    assert ok("doctor", "--json").json()["status"] == "bound"
    report = ok("gc", "--json").json()
    assert report["blobs_removed"] == 0
    assert ok("verify").stdout.strip() == "all 2 files verified"


def test_an_empty_store_joins_an_existing_catalog(
    lab: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second home (no blobs) on the first home's catalog: nothing to lose, so it joins."""
    ok("add", "raw", data_dir)
    catalog_id = _catalog_store_id(lab / "catalog.db")
    second = tmp_path / "second"
    monkeypatch.setenv("ASSAY_HOME", str(second))
    monkeypatch.setenv("ASSAY_CATALOG_URL", f"sqlite:///{lab / 'catalog.db'}")
    close_workspaces()

    ok("add", "more", data_dir, "-c", "lab")

    assert _store_id(second) == catalog_id
    assert len(store_blobs(second)) == 2


def _unbind(home: Path) -> None:
    """Make the pair look as it did before binding existed: no id on either side."""
    (home / "store" / "STORE_ID").unlink()
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM meta"))
    engine.dispose()
    close_workspaces()


def test_a_store_older_than_binding_is_adopted_when_consistent(
    lab: Path, data_dir: Path, make_file
) -> None:
    ok("add", "raw", data_dir)
    ok("add", "one", make_file("one.txt", "one\n"))
    ok("rm", "one")  # 1 of 3 blobs unreferenced: still consistent
    _unbind(lab)
    assert ok("doctor", "--json").json()["status"] == "adoptable"

    ok("add", "two", make_file("two.txt", "two\n"))

    assert _store_id(lab) is not None
    assert _store_id(lab) == _catalog_store_id(lab / "catalog.db")
    assert ok("doctor", "--json").json()["status"] == "bound"


def test_a_store_older_than_binding_with_a_mostly_foreign_catalog_needs_adopt(
    lab: Path, data_dir: Path, make_file
) -> None:
    ok("add", "raw", make_file("keep.txt", "keep\n"))
    for i in range(3):
        ok("add", f"gone{i}", make_file(f"gone{i}.txt", f"gone {i}\n"))
        ok("rm", f"gone{i}")
    _age(lab)
    _unbind(lab)
    blobs = store_blobs(lab)

    expect_error(invoke("gc"), 4, "references only 1 of them")
    assert store_blobs(lab) == blobs
    assert any("'assay doctor --adopt'" in s for s in ok("doctor", "--json").json()["way_out"])

    adopted = ok("doctor", "--adopt", "--json").json()  # evidence: one blob is referenced
    assert adopted["status"] == "bound" and adopted["adopted"] == _store_id(lab)
    # Bound now, gc's own guard still stands: 3 of 4 is more than half.
    expect_error(invoke("gc"), 4, "would remove 3 of the 4 blobs", "--force")
    assert store_blobs(lab) == blobs
    assert ok("gc", "--force", "--json").json()["blobs_removed"] == 3


def test_adopting_a_store_by_an_empty_catalog_needs_force(lab: Path, data_dir: Path) -> None:
    ok("add", "raw", data_dir)
    old_id = _store_id(lab)
    close_workspaces()
    (lab / "catalog.db").unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{lab / 'catalog.db'}{suffix}").unlink(missing_ok=True)
    close_workspaces()
    blobs = store_blobs(lab)

    expect_error(invoke("doctor", "--adopt"), 4, "references none of the 2 blob(s)", "--force")
    assert _store_id(lab) == old_id
    expect_error(invoke("doctor", "--force"), 2, "--force only goes with --adopt")

    report = ok("doctor", "--adopt", "--force", "--json").json()

    assert report["status"] == "bound"
    assert report["adopted"] != old_id  # a fresh id: the lost catalog can no longer match
    assert store_blobs(lab) == blobs
    expect_error(invoke("gc", "--grace", "0"), 4, "more than half")
    assert store_blobs(lab) == blobs


# -- gc's guards ----------------------------------------------------------------------------
def test_gc_refuses_to_remove_more_than_half_without_force(lab: Path, make_file) -> None:
    ok("add", "keep", make_file("keep.txt", "keep\n"))
    ok("add", "a", make_file("a.txt", "a\n"))
    ok("add", "b", make_file("b.txt", "b\n"))
    ok("rm", "a")
    ok("rm", "b")
    _age(lab)
    blobs = store_blobs(lab)

    run = invoke("gc", "--json")
    expect_error(run, 4, "would remove 2 of the 3 blobs")
    assert run.json()["error"]["code"] == "gc_refused"
    assert run.json()["error"]["would_remove"] == 2
    assert store_blobs(lab) == blobs

    assert ok("gc", "--force", "--json").json()["blobs_removed"] == 2
    assert len(store_blobs(lab)) == 1
    assert ok("verify").stdout.strip() == "all 1 files verified"


def test_gc_keeps_young_blobs_unless_forced(lab: Path, make_file) -> None:
    ok("add", "keep", make_file("keep.txt", "keep\n"))
    ok("add", "keep2", make_file("keep2.txt", "keep2\n"))
    ok("add", "young", make_file("young.txt", "young\n"))
    ok("rm", "young")

    report = ok("gc", "--json").json()  # default grace: one hour
    assert (report["blobs_removed"], report["blobs_kept_in_grace"]) == (0, 1)
    assert "--force removes them" in ok("gc").stdout
    assert len(store_blobs(lab)) == 3

    report = ok("gc", "--force", "--json").json()
    assert (report["blobs_removed"], report["blobs_kept_in_grace"]) == (1, 0)
    assert len(store_blobs(lab)) == 2


def test_gc_dry_run_lists_and_removes_nothing(lab: Path, make_file) -> None:
    ok("add", "keep", make_file("keep.txt", "keep\n"))
    ok("add", "drop", make_file("drop.txt", "drop me\n"))
    ok("add", "drop2", make_file("drop2.txt", "drop me too\n"))
    ok("rm", "drop")
    ok("rm", "drop2")
    stale_view = lab / "views" / "00000000-dead-4000-8000-000000000000"
    stale_view.mkdir(parents=True)
    blobs = store_blobs(lab)

    report = ok("gc", "--dry-run", "--grace", "0", "--json").json()

    assert report["dry_run"] is True
    assert report["would_refuse"] is True  # 2 of 3
    assert sorted(b["size"] for b in report["blobs"]) == [8, 12]
    assert report["views"] == [str(stale_view)]
    text_run = ok("gc", "--dry-run", "--grace", "0").stdout
    assert "would remove 2 of 3 blob(s)" in text_run
    for blob in report["blobs"]:
        assert blob["blob_hash"] in text_run
    assert "would refuse this without --force" in text_run
    assert store_blobs(lab) == blobs and stale_view.exists()

    forced = ok("gc", "--dry-run", "--force", "--json").json()
    assert forced["would_refuse"] is False and len(forced["blobs"]) == 2
    assert store_blobs(lab) == blobs


def test_gc_and_doctor_take_a_context(lab: Path, make_file) -> None:
    ok("add", "raw", make_file("raw.txt", "raw\n"))
    expect_error(invoke("gc", "-c", "nope"), 3, "no context named 'nope'")
    expect_error(invoke("doctor", "--context", "nope"), 3, "no context named 'nope'")
    assert ok("gc", "-c", "lab", "--json").json()["blobs_removed"] == 0
    blob = next((lab / "store" / "objects").rglob("*"), None)
    assert blob is not None
    for path in (lab / "store" / "objects").rglob("*"):
        if path.is_file():
            path.unlink()
    found = ok("doctor", "-c", "lab", "--json").json()["context"]
    assert found["name"] == "lab" and found["bundles"] == 1 and found["remote"] is None
    assert [b["name"] for b in found["incomplete_bundles"]] == ["raw"]
    assert "raw@" in ok("doctor", "-c", "lab").stdout
