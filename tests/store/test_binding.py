"""Binding on a real PostgreSQL server (the issue's second repro: ASSAY_CATALOG_URL pointed at
a fresh database with the same ASSAY_HOME must not collect or write anything), and processes
binding a new pair at once."""

from __future__ import annotations

import json
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
    start_python,
    temporary_postgres_database,
    write_files,
)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    try:
        with temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_fresh") as url:
            yield url
    except ConnectionError as exc:
        skip_or_fail(str(exc))


@pytest.mark.postgres
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


@pytest.mark.postgres
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


_BINDER = """
import json, os, sys, time
from pathlib import Path
from assay import api
from assay.bundles.workspace import open_workspace
from assay.store import identity

workspace = open_workspace()  # imports and catalog opened before the start line
folder = Path(sys.argv[2])
folder.mkdir()
(folder / "f.txt").write_text(f"from {os.getpid()}")
gate = Path(sys.argv[1])
(gate / f"ready-{os.getpid()}").touch()
while not (gate / "go").exists():  # released together once every process is ready
    time.sleep(0.0005)
unbound = identity.read(workspace.store.root) is None  # this process met an unbound pair
api.context("work")
api.add("work", f"b{os.getpid()}", folder)
print(json.dumps({"unbound": unbound, "id": workspace.require_bound()}))
"""


def test_processes_binding_a_new_pair_at_once_agree(assay_home: Path, tmp_path: Path) -> None:
    """Runs on SQLite and PostgreSQL (the ``assay_home`` fixture)."""
    api.ls_contexts()  # create the catalog first: the race is about binding, not migrating
    close_workspaces()
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [start_python(_BINDER, str(gate), str(tmp_path / f"data{i}")) for i in range(4)]
    while len(list(gate.glob("ready-*"))) < len(children):
        assert all(c.poll() is None for c in children), "a process died before the start"
        time.sleep(0.01)
    (gate / "go").touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))

    # At least two processes began their first write while the pair was still unbound.
    assert sum(r["unbound"] for r in results) >= 2, "no two processes raced to bind"
    ids = {r["id"] for r in results}
    assert len(ids) == 1
    assert (assay_home / "store" / "STORE_ID").read_text().strip() in ids
    assert len(api.search("work")) == 4
    assert api.verify() == []
