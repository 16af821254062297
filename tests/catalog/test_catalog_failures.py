"""A catalog that cannot take a write (read-only, full disk, file size limit) fails with a
clear ``CatalogUnavailable`` / ``StorageFull`` (exit 6), never a raw database error with SQL,
through the Python API and the command line; nothing is lost and gc cleans what the failed add
left. The tests run as root, so each one first proves its write really fails."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, text

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.core.errors import CatalogUnavailable
from helpers import (
    POSTGRES_ADMIN_URL,
    blob_files,
    python_code,
    skip_or_fail,
    temp_files,
    temporary_postgres_database,
    write_files,
)

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import catalog_state, expect_error, invoke

CTX = "work"


def _age_blobs(home: Path) -> None:
    old = time.time() - 7200
    for path in blob_files(home).values():
        os.utime(path, (old, old))


def _assert_clean_message(error: Exception) -> None:
    message = str(error)
    assert "[SQL" not in message and "INSERT" not in message and "sqlalche.me" not in message
    assert "\n" not in message
    assert not isinstance(error, sqlalchemy.exc.SQLAlchemyError)


def _referenced_blobs() -> set[str]:
    return {
        f.blob_hash
        for info in api.ls_contexts()
        for bundle in api.search(info.name)
        for f in _files(bundle)
    }


def _files(bundle: api.Bundle) -> list:  # type: ignore[type-arg]
    from assay.bundles import operations
    from assay.bundles.workspace import open_workspace

    workspace = open_workspace()
    return operations.files_of(workspace, operations.resolve(workspace, CTX, bundle.uuid))


def _fail_writes_then_collect(home: Path, tmp_path: Path, expected: type, *fragments: str) -> None:
    """With the catalog refusing writes: the API and the CLI fail clearly, nothing changes."""
    before = catalog_state()
    blobs_before = set(blob_files(home))
    new_data = write_files(tmp_path / "new", {"n.txt": "content the catalog never took"})

    with pytest.raises(expected) as caught:
        api.add(CTX, "second", new_data)
    _assert_clean_message(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)
    with pytest.raises(expected):
        api.commit(CTX, "first")

    run = invoke("add", "third", new_data, "-c", CTX, "--json")
    expect_error(run, 6, *fragments)
    assert run.json()["error"]["code"] == expected.code
    assert "[SQL" not in run.stderr and "internal error" not in run.stderr
    assert catalog_state() == before
    orphans = set(blob_files(home)) - blobs_before
    assert orphans, "the add failed before writing a blob: its cleanup is not tested"


def _gc_leaves_only_referenced(home: Path) -> None:
    close_workspaces()
    api.gc(grace_seconds=0)
    assert set(blob_files(home)) == _referenced_blobs()
    assert temp_files(home) == []
    assert not [p for p in home.iterdir() if p.name.startswith("scratch-")]
    assert api.verify() == []


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: even root cannot open the file for writing."""
    if shutil.which("chattr") is None:
        skip_or_fail("chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"chattr +i is not supported here: {done.stderr.strip()}")
    try:
        with pytest.raises(PermissionError):
            open(path, "ab").close()
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_sqlite_catalog(sqlite_home: Path, tmp_path: Path) -> None:
    api.context(CTX)
    api.add(CTX, "first", write_files(tmp_path / "d", {"a.txt": "alpha", "b.txt": "beta"}))
    _age_blobs(sqlite_home)
    close_workspaces()
    with _immutable(sqlite_home / "catalog.db"):
        close_workspaces()
        _fail_writes_then_collect(sqlite_home, tmp_path, CatalogUnavailable, "read-only")
        close_workspaces()
    _gc_leaves_only_referenced(sqlite_home)


def test_a_catalog_opened_read_only_by_its_url(
    sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.context(CTX)
    api.add(CTX, "first", write_files(tmp_path / "d", {"a.txt": "alpha", "b.txt": "beta"}))
    _age_blobs(sqlite_home)
    url = f"sqlite:///file:{sqlite_home / 'catalog.db'}?mode=ro&uri=true"
    monkeypatch.setenv("ASSAY_CATALOG_URL", url)
    close_workspaces()
    _fail_writes_then_collect(sqlite_home, tmp_path, CatalogUnavailable, "read-only")
    monkeypatch.delenv("ASSAY_CATALOG_URL")
    _gc_leaves_only_referenced(sqlite_home)


@pytest.mark.postgres
def test_a_read_only_postgres_catalog(
    sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        database = temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_readonly")
        url = database.__enter__()
    except ConnectionError as exc:
        skip_or_fail(str(exc))
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {on}'))

    try:
        monkeypatch.setenv("ASSAY_CATALOG_URL", url)
        close_workspaces()
        api.context(CTX)
        api.add(CTX, "first", write_files(tmp_path / "d", {"a.txt": "alpha", "b.txt": "beta"}))
        _age_blobs(sqlite_home)
        read_only(True)
        close_workspaces()
        _fail_writes_then_collect(sqlite_home, tmp_path, CatalogUnavailable, "read-only")
        read_only(False)
        _gc_leaves_only_referenced(sqlite_home)
    finally:
        close_workspaces()
        admin.dispose()
        database.__exit__(None, None, None)


_FULL_DISK = """
import errno, json, os, subprocess, sys
from pathlib import Path
from assay import api
from assay.core.errors import AssayError

disk, first, second = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
api.context("work")
api.add("work", "first", first)
filled = False
with open(disk / "filler", "wb") as handle:
    try:
        while True:
            handle.write(b"\\0" * 65536)
            handle.flush()
    except OSError as exc:
        filled = exc.errno == errno.ENOSPC
try:
    api.add("work", "second", second)
    error = None
except Exception as exc:
    error = {"type": type(exc).__name__, "code": getattr(exc, "code", None),
             "message": str(exc), "assay": isinstance(exc, AssayError)}
cli = subprocess.run(
    [os.path.join(os.path.dirname(sys.executable), "assay"), "add", "third", second,
     "-c", "work", "--json"], capture_output=True, text=True)
names = sorted(b.name for b in api.search("work"))
os.unlink(disk / "filler")
from assay.bundles.workspace import open_workspace
from assay.catalog import queries
workspace = open_workspace()
def stored():
    return {b.blob_hash for b in workspace.store.iter_blobs()}
with workspace.read() as conn:
    referenced = queries.referenced_blobs(conn)
orphans = len(stored() - referenced)
api.gc(grace_seconds=0)
print(json.dumps({"filled": filled, "error": error, "cli_exit": cli.returncode,
                  "cli_stdout": cli.stdout, "cli_stderr": cli.stderr, "names": names,
                  "orphans": orphans, "after_gc": stored() == referenced}))
"""


def test_a_full_disk_under_the_catalog(
    sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog on a 1 MiB tmpfs (bubblewrap) that fills up: a real ENOSPC."""
    if shutil.which("bwrap") is None:
        skip_or_fail("bubblewrap (bwrap) is not installed")
    disk = tmp_path / "catalog-disk"
    disk.mkdir()
    first = write_files(tmp_path / "first", {"a.txt": "alpha", "b.txt": "beta"})
    second = write_files(tmp_path / "second", {"n.txt": "never catalogued"})
    env = {
        **os.environ,
        "ASSAY_HOME": str(sqlite_home),
        "ASSAY_CATALOG_URL": f"sqlite:///{disk / 'catalog.db'}",
    }
    sandbox = ["bwrap", "--dev-bind", "/", "/", "--size", str(1 << 20), "--tmpfs", str(disk)]
    done = subprocess.run(
        [
            *sandbox,
            sys.executable,
            "-c",
            python_code(_FULL_DISK),
            str(disk),
            str(first),
            str(second),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["filled"], "the tmpfs never filled up: the test proves nothing"
    error = result["error"]
    assert error is not None and error["assay"], result
    assert (error["type"], error["code"]) == ("StorageFull", "storage_full")
    assert "is full" in error["message"] and "[SQL" not in error["message"]
    assert result["cli_exit"] == 6
    [line] = result["cli_stderr"].splitlines()
    assert line.startswith("error: ") and "is full" in line and "[SQL" not in line
    assert json.loads(result["cli_stdout"])["error"]["code"] == "storage_full"
    assert result["names"] == ["first"]  # nothing half-written, nothing lost
    assert result["orphans"] == 1  # the failed adds' blob (both tried the same content)...
    assert result["after_gc"]  # ...which gc removed once space was free again
    assert temp_files(sqlite_home) == []
    assert not [p for p in sqlite_home.iterdir() if p.name.startswith("scratch-")]


_SIZE_LIMIT = """
import os, resource, signal, sys
from pathlib import Path
from assay import api
from assay.core.errors import AssayError

home, data = Path(sys.argv[1]), sys.argv[2]
api.search("work")  # open the catalog first: the limit is for the add's writes
limit = 4096  # the blob (100 bytes) fits; the catalog's write-ahead log cannot grow
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    api.add("work", "second", data)
    print("no error")
except AssayError as exc:
    print(type(exc).__name__, exc.exit_code, exc)
"""


def test_a_file_size_limit_under_the_catalog(sqlite_home: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE (as tests/store/test_crashes.py uses for blobs) on the catalog's files."""
    api.context(CTX)
    api.add(CTX, "first", write_files(tmp_path / "d", {"a.txt": "alpha", "b.txt": "beta"}))
    _age_blobs(sqlite_home)
    close_workspaces()
    data = write_files(tmp_path / "n", {"n.txt": "x" * 100})

    done = subprocess.run(
        [sys.executable, "-c", python_code(_SIZE_LIMIT), str(sqlite_home), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ASSAY_HOME": str(sqlite_home)},
    )

    assert done.returncode == 0, done.stderr
    kind, exit_code, message = done.stdout.strip().split(" ", 2)
    assert kind in {"CatalogUnavailable", "StorageFull"} and exit_code == "6", done.stdout
    assert "[SQL" not in message
    assert [b.name for b in api.search(CTX)] == ["first"]
    assert set(blob_files(sqlite_home)) - _referenced_blobs(), "no orphan: nothing to clean"
    _gc_leaves_only_referenced(sqlite_home)
