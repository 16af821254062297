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
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    InternalError,
    NoSuchModuleError,
    OperationalError,
)

from assay.catalog.migrations import HEAD_REVISION
from assay.core.errors import CatalogUnavailable, InvalidInput, MissingExtra, StorageFull

_SQLITE_BUSY_TIMEOUT_MS = 60_000
_PG_CONNECT_TIMEOUT_S = 5
_MIGRATION_LOCK_KEY = 0x4153_5341  # "ASSA": PostgreSQL advisory lock id for migrations

# SQLite primary result codes (the low byte of an extended code) and PostgreSQL SQLSTATEs that
# say the catalog cannot take a write: full, read-only, or not usable at all.
_SQLITE_ERROR = 1  # a statement error (no such table, syntax): our bug or a damaged schema
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_PG_READ_ONLY = "25006"


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
    except DatabaseError as exc:  # unreachable, or e.g. a file that is not a SQLite database
        engine.dispose()
        raise catalog_error(exc, url, opening=True) or CatalogUnavailable(
            f"cannot use the catalog at {masked(url)}: {_first_line(exc)}"
        ) from None
    return engine


def is_unusable(exc: DatabaseError) -> bool:
    """Whether ``exc`` says the catalog could not be used (reached, written, grown), as
    opposed to a statement our own code got wrong (integrity, programming errors)."""
    return isinstance(exc, OperationalError | InternalError) or type(exc) is DatabaseError


def catalog_error(
    exc: DatabaseError, url: str, opening: bool = False
) -> CatalogUnavailable | StorageFull | None:
    """The Assay error for a database failure that means the catalog is unusable, or None
    for other database errors (bugs, constraint violations the caller handles, a statement
    SQLite rejects outright, unless ``opening``: then any failure means "cannot use it").

    This is the one place database failures are mapped. Messages hold the database's own
    one-line reason and never the SQL statement or its parameters.
    """
    if not is_unusable(exc):
        return None
    where = masked(url)
    reason = _first_line(exc)
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlite_code == _SQLITE_ERROR and not opening:
        return None
    if (sqlite_code is not None and sqlite_code & 0xFF == _SQLITE_FULL) or (
        sqlstate == _PG_DISK_FULL
    ):
        return StorageFull(
            f"the disk under the catalog at {where} is full ({reason}); nothing was changed "
            "in the catalog: free space and try again"
        )
    if (sqlite_code is not None and sqlite_code & 0xFF == _SQLITE_READONLY) or (
        sqlstate == _PG_READ_ONLY
    ):
        if sqlstate == _PG_READ_ONLY:  # its message names the statement: say it plainly
            reason = "the server accepts no writes: a read-only database or a standby"
        return CatalogUnavailable(
            f"the catalog at {where} is read-only ({reason}); nothing was changed in the "
            "catalog: make it writable or point ASSAY_CATALOG_URL at a writable one"
        )
    if sqlite_code is not None and sqlite_code & 0xFF == _SQLITE_IOERR:
        # SQLite does not say which errno: ENOSPC is SQLITE_FULL, but EFBIG (a file size
        # limit) and EIO (a failing disk) both arrive here.
        return CatalogUnavailable(
            f"the catalog at {where} could not be written or read ({reason}: a file size "
            "limit, a full or failing disk); nothing was changed in the catalog"
        )
    if isinstance(exc, OperationalError):
        return CatalogUnavailable(f"cannot reach the catalog at {where}: {reason}")
    return CatalogUnavailable(f"cannot use the catalog at {where}: {reason}")


def _first_line(exc: DatabaseError) -> str:
    message = (str(exc.orig) if exc.orig else str(exc)).strip()
    lines = message.splitlines() or ["unknown database error"]
    # SQLAlchemy appends the statement after "[SQL:"; a driver message never needs it.
    return lines[0].split("[SQL:")[0].strip()


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
