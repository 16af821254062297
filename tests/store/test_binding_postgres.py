"""The issue's second repro on a real PostgreSQL server: ASSAY_CATALOG_URL pointed at a fresh
database with the same ASSAY_HOME must not collect (or write) anything."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay import api
from assay.bundles import health, maintenance
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.core.errors import StoreCatalogMismatch
from helpers import (
    POSTGRES_ADMIN_URL,
    blob_files,
    skip_or_fail,
    temporary_postgres_database,
    write_files,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_database() -> Iterator[str]:
    try:
        with temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_fresh") as url:
            yield url
    except ConnectionError as exc:
        skip_or_fail(str(exc))


def test_a_fresh_postgres_catalog_with_the_same_home_collects_nothing(
    sqlite_home: Path, tmp_path: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.context("work")
    api.add("work", "d", write_files(tmp_path / "d", {"a.txt": "alpha", "b.txt": "beta"}))
    blobs = set(blob_files(sqlite_home))
    monkeypatch.setenv("ASSAY_CATALOG_URL", fresh_database)
    close_workspaces()
    workspace = open_workspace()

    for grace, force in ((0.0, False), (0.0, True)):
        with pytest.raises(StoreCatalogMismatch, match="is empty"):
            maintenance.gc(workspace, grace_seconds=grace, force=force)
    with pytest.raises(StoreCatalogMismatch):
        api.context("work")
    with pytest.raises(StoreCatalogMismatch):
        api.gc(grace_seconds=0)
    assert set(blob_files(sqlite_home)) == blobs
    state = health.examine(workspace).binding
    assert (state.status, state.catalog_id, state.evidence.store_blobs) == ("mismatch", None, 2)
    assert "postgresql" in state.catalog

    # Back on its own catalog, everything is where it was.
    monkeypatch.delenv("ASSAY_CATALOG_URL")
    close_workspaces()
    assert [b.name for b in api.search("work")] == ["d"]
    assert api.verify() == []
    old = time.time() - 7200
    for path in blob_files(sqlite_home).values():
        os.utime(path, (old, old))
    assert api.gc().blobs_removed == 0


def test_a_shared_postgres_catalog_binds_each_new_store(
    tmp_path: Path, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two machines (homes) on one PostgreSQL catalog: each empty store joins it."""
    monkeypatch.setenv("ASSAY_CATALOG_URL", fresh_database)
    ids = []
    for name in ("a", "b"):
        home = tmp_path / name
        monkeypatch.setenv("ASSAY_HOME", str(home))
        close_workspaces()
        api.context("work")  # exists already the second time: no error, no write
        api.add("work", f"from-{name}", write_files(tmp_path / f"d{name}", {"f": name}))
        ids.append((home / "store" / "STORE_ID").read_text().strip())
    close_workspaces()
    assert ids[0] == ids[1]
