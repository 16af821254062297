"""Helpers shared by the API, store and catalog tests: files, store contents, catalog rows,
child processes. Nothing here stands in for Assay's own code; it only looks at what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from assay.bundles import maintenance, operations
from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import queries
from assay.catalog.schema import bundles, metadata
from assay.core.records import BundleRecord, Dependency, GcReport
from assay.store.packs import PackSet

PYTHON = sys.executable
#: An old, fixed modification time: files older than the stat cache's "racy" window.
OLD_MTIME_NS = 1_600_000_000 * 1_000_000_000

POSTGRES_ADMIN_URL = os.environ.get(
    "ASSAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("ASSAY_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip visibly when a service is absent; under ASSAY_REQUIRE_SERVICES=1, fail instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ASSAY_REQUIRE_SERVICES=1: a missing service is a failure)")
    pytest.skip(reason)


def write_files(root: Path, files: Mapping[str, bytes | str], mtime_ns: int | None = None) -> Path:
    """Write ``{relative path: content}`` under ``root``; optionally set every mtime."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
    return root


def store_root(home: Path) -> Path:
    return home / "store"


def _is_temp(name: str) -> bool:
    return name.startswith(".") or name.endswith(".part")


def blob_files(home: Path) -> dict[str, Path]:
    """Every published blob in the store: ``{blob hash: path}`` (temp files excluded)."""
    objects = store_root(home) / "objects"
    found: dict[str, Path] = {}
    if not objects.exists():
        return found
    for shard in objects.iterdir():
        if not shard.is_dir():
            continue
        for entry in shard.iterdir():
            if not _is_temp(entry.name):
                found[shard.name + entry.name] = entry
    return packed_blobs(home) | found


def packed_blobs(home: Path) -> dict[str, Path]:
    """Every blob held in a pack file: ``{blob hash: pack path}``."""
    packs = PackSet(store_root(home) / "packs")
    return {h: packs.root / loc.pack for h, loc in packs.all_locations().items()}


def temp_files(home: Path) -> list[Path]:
    """Every temp file anywhere in the store (``*.part`` or hidden files in shards)."""
    root = store_root(home)
    if not root.exists():
        return []
    return sorted(
        p for p in root.rglob("*") if p.is_file() and _is_temp(p.name) and p.name != "gc.lock"
    )


def catalog_counts() -> dict[str, int]:
    """Rows per catalog table, read through the current environment's catalog."""
    workspace = open_workspace()
    with workspace.read() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in metadata.tables.items()
        }


def collect_everything() -> GcReport:
    """gc with no grace period and no "more than half" guard: for tests whose orphans (of a
    killed add, of removed bundles) are most of a small store on purpose."""
    return maintenance.gc(open_workspace(), grace_seconds=0, force=True)


def set_created(uuid: str, when: float) -> None:
    """Move a bundle's creation time (to test date searches without sleeping)."""
    workspace = open_workspace()
    with workspace.write() as conn:
        conn.execute(update(bundles).where(bundles.c.uuid == uuid).values(created=when))


def python_code(body: str) -> str:
    return textwrap.dedent(body).strip() + "\n"


def run_python(
    body: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter (environment inherited, then ``env`` on top)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [PYTHON, "-c", python_code(body), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def start_python(
    body: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [PYTHON, "-c", python_code(body), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def start_time(delay: float = 1.5) -> str:
    """A moment a little in the future for child processes to start work together."""
    return repr(time.time() + delay)


#: Child-side snippet: busy-wait until the start time given as ``sys.argv[1]``.
WAIT_FOR_START = """
import sys, time
_start = float(sys.argv[1])
while time.time() < _start:
    time.sleep(0.001)
"""


@contextlib.contextmanager
def temporary_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server at ``admin_url``, dropped afterwards.

    Raises ``ConnectionError`` (with the reason) when the server cannot be reached, so the
    caller can skip visibly or fail under ASSAY_REQUIRE_SERVICES=1.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from assay.bundles.workspace import close_workspaces

    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "no server here"
        admin.dispose()
        raise ConnectionError(
            f"PostgreSQL not reachable at {admin_url}: {type(exc).__name__}"
        ) from None
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        close_workspaces()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_catalog(url: str) -> None:
    """Empty every catalog table of the PostgreSQL database at ``url`` (if it has the schema).

    The table list comes from the schema itself, so a new table is never forgotten.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT to_regclass('public.contexts')")).scalar():
                names = ", ".join(table.name for table in reversed(metadata.sorted_tables))
                conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        engine.dispose()


def make_bundles(
    context: str,
    names: Sequence[str],
    parents: Mapping[str, Sequence[str]] | None = None,
    *,
    tags: Mapping[str, Mapping[str, str]] | None = None,
    created: Mapping[str, float] | None = None,
    workspace: Workspace | None = None,
) -> dict[str, str]:
    """Bundles ``names`` in ``context`` (made if missing); ``parents[n]`` are the names ``n``
    depends on. Written through the catalog's own insert (one transaction for the whole
    graph), with no files. Returns ``{name: uuid}``."""
    workspace = workspace or open_workspace()
    operations.create_context(workspace, context)
    uuids = {name: str(uuid.uuid4()) for name in names}
    with workspace.write() as conn:
        ctx_id = operations.require_context(conn, context)
        for position, name in enumerate(names):
            record = BundleRecord(
                uuid=uuids[name],
                context=context,
                name=name,
                processing_name=name,
                owner="test",
                created=(created or {}).get(name, 1_700_000_000.0 + position),
                committed=True,
                content_hash="0" * 64,
                presentation="json",
                data={"value": position},
                params={},
                code_version={},
                start_time=None,
                stop_time=None,
                file_count=0,
                total_size=0,
                tags=dict((tags or {}).get(name, {})),
                dependencies=tuple(
                    Dependency(uuids[p], "depends_on", f"in{i}")
                    for i, p in enumerate((parents or {}).get(name, ()))
                ),
            )
            queries.insert_bundle(conn, ctx_id, record, [])
    return uuids
