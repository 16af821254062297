"""Catalog migrations: head revision, schema equal to the metadata, concurrent first opens."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from assay import api
from assay.bundles.workspace import open_workspace
from assay.catalog import migrations
from assay.catalog.engine import create_catalog_engine
from assay.catalog.schema import metadata
from helpers import POSTGRES_ADMIN_URL, WAIT_FOR_START, skip_or_fail, start_python, start_time

VERSIONS = Path(migrations.__file__).parent / "versions"


def _revision_of(path: Path) -> tuple[str, str | None]:
    source = path.read_text()
    revision = re.search(r'^revision = "([^"]+)"', source, re.M)
    down = re.search(r'^down_revision = (None|"([^"]+)")', source, re.M)
    assert revision and down, f"{path.name} does not declare its revisions"
    return revision.group(1), down.group(2)


def test_head_revision_names_the_newest_migration_file() -> None:
    chain = dict(_revision_of(p) for p in sorted(VERSIONS.glob("*.py")))
    parents = {down for down in chain.values() if down is not None}
    heads = [rev for rev in chain if rev not in parents]

    assert heads == [migrations.HEAD_REVISION]
    newest = sorted(VERSIONS.glob("*.py"))[-1]
    assert _revision_of(newest)[0] == migrations.HEAD_REVISION
    script = ScriptDirectory(str(VERSIONS.parent))
    assert script.get_current_head() == migrations.HEAD_REVISION


def test_a_fresh_catalog_is_at_head(assay_home: Path) -> None:
    api.ls_contexts()  # opens (and so creates) the catalog
    with open_workspace().engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == migrations.HEAD_REVISION


def test_the_migrated_schema_matches_the_metadata(assay_home: Path) -> None:
    api.ls_contexts()
    with open_workspace().engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, metadata)
        tables = set(inspect(conn).get_table_names())

    assert differences == []
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_opening_an_up_to_date_catalog_does_not_load_alembic(
    assay_home: Path, tmp_path: Path
) -> None:
    api.ls_contexts()
    child = start_python(
        """
        import sys
        from assay import api
        api.ls_contexts()
        print("alembic" in sys.modules)
        """
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "False"


_OPENER = (
    WAIT_FOR_START
    + """
import json, os, sys
from sqlalchemy import text
from assay.catalog.engine import create_catalog_engine
engine = create_catalog_engine(sys.argv[2])
with engine.begin() as conn:
    conn.execute(
        text("INSERT INTO contexts (name, created) VALUES (:n, 0)"), {"n": f"p{os.getpid()}"}
    )
    version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
print(json.dumps(version))
"""
)


def _open_at_once(url: str, processes: int = 4) -> None:
    start = start_time(2.0)
    openers = [start_python(_OPENER, start, url) for _ in range(processes)]
    for opener in openers:
        out, err = opener.communicate(timeout=120)
        assert opener.returncode == 0, err
        assert json.loads(out) == migrations.HEAD_REVISION
    engine = create_catalog_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM contexts")).scalar() == processes
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_processes_opening_a_fresh_sqlite_catalog_at_once(tmp_path: Path) -> None:
    _open_at_once(f"sqlite:///{tmp_path / 'fresh' / 'catalog.db'}")


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    admin = create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"assay_fresh_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server here
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.__class__.__name__}")
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_processes_opening_a_fresh_postgres_catalog_at_once(fresh_postgres_url: str) -> None:
    _open_at_once(fresh_postgres_url)
