"""Opening the catalog: engine set-up per dialect, reachability, and migration to head.

SQLite runs in WAL mode with a long busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so two writers queue instead of failing on a lock upgrade. PostgreSQL is
selected by URL. Migrations run under a lock (a file lock for SQLite, an advisory lock for
PostgreSQL) so two processes opening a fresh catalog at once do not race.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from assay.catalog.migrations import HEAD_REVISION
from assay.core.errors import CatalogUnavailable, InvalidInput, MissingExtra

_SQLITE_BUSY_TIMEOUT_MS = 60_000
_PG_CONNECT_TIMEOUT_S = 5
_MIGRATION_LOCK_KEY = 0x4153_5341  # "ASSA": PostgreSQL advisory lock id for migrations


def masked(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=4, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin() emit BEGIN itself (see _on_begin), as the pysqlite docs advise.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # LIKE (name globs) must be case-sensitive, as it is on PostgreSQL and for exact names.
        cursor.execute("PRAGMA case_sensitive_like = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("assay_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: str) -> Engine:
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=4,
        connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S},
    )


def create_catalog_engine(url: str) -> Engine:
    """An engine for ``url``, checked reachable and migrated to the current schema."""
    try:
        dialect = make_url(url).get_backend_name()
    except ArgumentError:
        raise InvalidInput(f"catalog URL {url!r} is not a valid database URL") from None
    try:
        if dialect == "sqlite":
            engine = _sqlite_engine(url)
        elif dialect == "postgresql":
            engine = _postgres_engine(url)
        else:
            raise InvalidInput(
                f"catalog URL {masked(url)}: unsupported database {dialect!r}; "
                "use sqlite:///PATH or postgresql+psycopg://..."
            )
    except NoSuchModuleError as exc:
        raise InvalidInput(f"catalog URL {masked(url)}: {exc}") from None
    except ImportError as exc:
        raise MissingExtra(
            f"catalog URL {masked(url)} needs the database driver {exc.name or exc}, which is "
            "not installed (Assay ships psycopg for postgresql+psycopg://)"
        ) from None
    try:
        _migrate_if_needed(engine)
    except OperationalError as exc:
        engine.dispose()
        raise CatalogUnavailable(
            f"cannot reach the catalog at {masked(url)}: {_first_line(exc)}"
        ) from None
    except DatabaseError as exc:  # e.g. a file that is not a SQLite database
        engine.dispose()
        raise CatalogUnavailable(
            f"cannot use the catalog at {masked(url)}: {_first_line(exc)}"
        ) from None
    return engine


def _first_line(exc: DatabaseError) -> str:
    return (str(exc.orig) if exc.orig else str(exc)).strip().splitlines()[0]


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


def _migrate_if_needed(engine: Engine) -> None:
    # A cheap read first: opening an up-to-date catalog must not import Alembic.
    with engine.connect() as connection:
        if _current_revision(connection) == HEAD_REVISION:
            return
    with _migration_lock(engine):
        from assay.catalog.migrations.runner import upgrade_to_head

        upgrade_to_head(engine)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = database + ".migrate.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
            connection.commit()
