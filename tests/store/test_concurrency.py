"""Several real processes on one ASSAY_HOME and catalog (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.catalog import queries
from helpers import (
    WAIT_FOR_START,
    blob_files,
    collect_everything,
    start_python,
    start_time,
    temp_files,
)

CTX = "shared"

_WRITER = (
    WAIT_FOR_START
    + """
import json, os, sys
from pathlib import Path
from assay import api

tag, count, folder = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
made = []
for i in range(count):
    source = folder / f"{tag}-{i}"
    source.mkdir(parents=True)
    (source / "own.txt").write_text(f"{tag} {i}")
    (source / "common.txt").write_text(f"common {i}")  # both writers store this blob
    made.append(api.add("shared", f"{tag}-{i}", source).uuid)
print(json.dumps(made))
"""
)


def test_two_writers_lose_nothing(assay_home: Path, tmp_path: Path) -> None:
    api.context(CTX)
    start, count = start_time(), 25
    writers = [
        start_python(_WRITER, start, tag, str(count), str(tmp_path / tag))
        for tag in ("alpha", "beta")
    ]
    outputs = [w.communicate(timeout=300) for w in writers]

    for writer, (_, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    made = [uuid for out, _ in outputs for uuid in json.loads(out)]
    assert len(made) == 2 * count
    found = {b.uuid: b for b in api.search(CTX)}
    assert set(found) == set(made)
    for bundle in found.values():
        assert len(bundle.files) == 2
    assert api.verify() == []
    # 2 x count own files + count common files shared by both writers.
    assert len(blob_files(assay_home)) == 3 * count
    assert temp_files(assay_home) == []


_CONTEXT_MAKER = """
import json
from assay import api
from assay.core.errors import AssayError
try:
    print(json.dumps(api.context("contested")))
except AssayError as exc:
    print(json.dumps(f"{type(exc).__name__}: {exc}"))
"""


def _wait_until_blocked(engine: Engine, catalog: str) -> None:
    """Until another session waits on a lock (PostgreSQL), or a moment (SQLite busy-waits)."""
    if catalog == "sqlite":
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE NOT l.granted AND a.datname = current_database()"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.02)
    pytest.fail("the second process never waited on the first one's transaction")


def test_creating_a_context_another_process_is_creating(assay_home: Path, catalog: str) -> None:
    """Process B calls context("contested") while process A's transaction is inserting it.

    On PostgreSQL B's check sees nothing (READ COMMITTED), its INSERT waits on A's row, then
    hits the unique constraint: that must read as "already exists" (1), not a raw error.
    """
    workspace = open_workspace()
    with workspace.write() as conn:  # process A, mid-transaction
        queries.insert_context(conn, "contested", time.time())
        maker = start_python(_CONTEXT_MAKER)  # process B
        _wait_until_blocked(workspace.engine, catalog)
    out, err = maker.communicate(timeout=120)

    assert maker.returncode == 0, err.strip().splitlines()[-3:]
    assert json.loads(out) == 1  # "it already exists", as Disdat returns
    assert [c.name for c in api.ls_contexts()] == ["contested"]


_BIG_WRITER = """
import sys
from pathlib import Path
from assay import api

folder, versions, files = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for version in range(versions):
    for i in range(files):
        (folder / f"f{i:04}.txt").write_text(f"version {version} file {i} " + "x" * 2000)
    api.add("shared", "big", folder)
    print(version, flush=True)
"""


def test_a_reader_never_sees_a_bundle_with_missing_files(
    assay_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_MAX_UNCOMMITTED", "100")  # nothing pruned under the reader
    api.context(CTX)
    folder = tmp_path / "big"
    folder.mkdir()
    versions, files = 4, 400
    writer = start_python(_BIG_WRITER, str(folder), str(versions), str(files))
    workspace = open_workspace()
    checked: set[str] = set()
    polls = 0

    while True:
        finished = writer.poll() is not None
        for record in operations.search(workspace, CTX, "big"):
            polls += 1
            entries = operations.files_of(workspace, record)
            assert len(entries) == record.file_count == files, record.uuid
            if record.uuid in checked:
                continue
            for entry in entries:
                assert workspace.store.has(entry.blob_hash), (record.uuid, entry.path)
            checked.add(record.uuid)
        if finished:
            break
        time.sleep(0.005)

    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert len(checked) == versions
    assert polls >= versions
    assert api.verify() == []


_CHURN_WRITER = """
import os, sys
from pathlib import Path
from assay import api

folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
common = folder / "common.txt"
common.write_text("shared by every version")
old = 1_600_000_000 * 10**9
os.utime(common, ns=(old, old))  # old enough for the stat cache: later adds skip hashing it
for i in range(rounds):
    (folder / "own.txt").write_text(f"round {i}")
    api.add("shared", "churn", folder)
    if i % 3 == 2:
        api.rm("shared", "churn", rm_all=True)  # orphan the shared blob for gc to take
print("done", flush=True)
"""


def test_gc_running_during_adds_never_takes_a_blob_a_bundle_needs(
    assay_home: Path, tmp_path: Path
) -> None:
    api.context(CTX)
    folder = tmp_path / "churn"
    folder.mkdir()
    writer = start_python(_CHURN_WRITER, str(folder), "40")
    collections = 0

    while writer.poll() is None:
        collect_everything()
        collections += 1

    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert collections > 1
    assert api.verify() == []
    for bundle in api.search(CTX, "churn"):
        contents = sorted(Path(p).read_text() for p in bundle.data)
        assert contents[0].startswith("round ")
        assert contents[1] == "shared by every version"
