"""SQL for the catalog's ``meta`` facts (the bound store id) and the counts binding needs."""

from __future__ import annotations

from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from assay.catalog.schema import bundle_files, bundles, meta

STORE_ID = "store_id"


def get(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()


def put_if_absent(conn: Connection, key: str, value: str) -> str:
    """Set ``key`` unless it is set; returns the value it holds afterwards. Two writers racing
    agree: the primary key lets one insert win and the other reads the winner's value."""
    current = get(conn, key)
    if current is not None:
        return current
    try:
        with conn.begin_nested():
            conn.execute(meta.insert().values(key=key, value=value))
    except IntegrityError:
        winner = get(conn, key)
        if winner is None:  # pragma: no cover - the row that made the insert fail exists
            raise
        return winner
    return value


def put(conn: Connection, key: str, value: str) -> None:
    """Set ``key``, replacing any value (an explicit rebinding)."""
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(meta.insert().values(key=key, value=value))


def bundle_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(bundles)).scalar_one())


def has_bundles(conn: Connection) -> bool:
    return bool(conn.execute(select(exists().select_from(bundles))).scalar())


def referenced_count(conn: Connection) -> int:
    """How many distinct blobs the catalog's bundles reference."""
    distinct = select(bundle_files.c.blob_hash).distinct().subquery()
    return int(conn.execute(select(func.count()).select_from(distinct)).scalar_one())
