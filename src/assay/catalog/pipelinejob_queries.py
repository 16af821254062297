"""Catalog reads and writes for pipelines, managed pipeline jobs and webhook deliveries (0006).

SQLAlchemy Core with bound parameters only. JSON columns are text; callers encode and decode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assay.catalog.schema import jobs, pipelinejob_deliveries, pipelinejobs, pipelines


# -- pipelines ------------------------------------------------------------------------------
def upsert_pipeline(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Insert or replace the pipeline ``row``; True when it was new."""
    existing = conn.execute(select(pipelines.c.created).where(pipelines.c.uuid == row["uuid"]))
    found = existing.first()
    if found is None:
        conn.execute(insert(pipelines).values(**row))
        return True
    changes = {key: value for key, value in row.items() if key not in ("uuid", "created")}
    conn.execute(update(pipelines).where(pipelines.c.uuid == row["uuid"]).values(**changes))
    return False


def pipeline_by_uuid(conn: Connection, uuid: str) -> Any:
    return conn.execute(select(pipelines).where(pipelines.c.uuid == uuid)).first()


def pipeline_by_id(conn: Connection, pipeline_id: str) -> Any:
    return conn.execute(select(pipelines).where(pipelines.c.pipeline_id == pipeline_id)).first()


def list_pipelines(conn: Connection) -> list[Any]:
    return list(conn.execute(select(pipelines).order_by(pipelines.c.pipeline_id)))


# -- managed pipeline jobs ------------------------------------------------------------------
def insert_pipelinejob(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(pipelinejobs).values(**row))


def pipelinejob(conn: Connection, job_id: str) -> Any:
    return conn.execute(select(pipelinejobs).where(pipelinejobs.c.job_id == job_id)).first()


def pipelinejob_by_archive_path(conn: Connection, archive_path: str) -> Any:
    return conn.execute(
        select(pipelinejobs).where(pipelinejobs.c.archive_path == archive_path)
    ).first()


def list_pipelinejobs(
    conn: Connection, pipeline_uuid: str | None = None, include_deleted: bool = False
) -> list[Any]:
    query = select(pipelinejobs).order_by(pipelinejobs.c.created.desc())
    if pipeline_uuid is not None:
        query = query.where(pipelinejobs.c.pipeline_uuid == pipeline_uuid)
    if not include_deleted:
        query = query.where(pipelinejobs.c.deleted.is_(False))
    return list(conn.execute(query))


def archive_paths_under(conn: Connection, prefix: str, job_id: str) -> list[str]:
    """Archive paths of *other* jobs that start with ``prefix`` (a directory, ending in '/')."""
    rows = conn.execute(
        select(pipelinejobs.c.archive_path).where(
            pipelinejobs.c.archive_path.startswith(prefix, autoescape=True),
            pipelinejobs.c.job_id != job_id,
        )
    )
    return [row[0] for row in rows]


def set_deleted(conn: Connection, job_id: str) -> None:
    conn.execute(update(pipelinejobs).where(pipelinejobs.c.job_id == job_id).values(deleted=True))


# -- webhook deliveries ---------------------------------------------------------------------
def delivery(conn: Connection, job_id: str, event_id: str) -> Any:
    return conn.execute(
        select(pipelinejob_deliveries).where(
            pipelinejob_deliveries.c.job_id == job_id,
            pipelinejob_deliveries.c.event_id == event_id,
        )
    ).first()


def claim_delivery(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert a "claimed" delivery; the primary key refuses a second claim of the same id."""
    conn.execute(insert(pipelinejob_deliveries).values(**row))


def finish_delivery(conn: Connection, job_id: str, event_id: str, seq: int | None) -> None:
    conn.execute(
        update(pipelinejob_deliveries)
        .where(
            pipelinejob_deliveries.c.job_id == job_id,
            pipelinejob_deliveries.c.event_id == event_id,
        )
        .values(status="applied", seq=seq)
    )


def release_delivery(conn: Connection, job_id: str, event_id: str) -> None:
    conn.execute(
        delete(pipelinejob_deliveries).where(
            pipelinejob_deliveries.c.job_id == job_id,
            pipelinejob_deliveries.c.event_id == event_id,
        )
    )


def delete_deliveries(conn: Connection, job_ids: Sequence[str]) -> None:
    if job_ids:
        conn.execute(
            delete(pipelinejob_deliveries).where(pipelinejob_deliveries.c.job_id.in_(job_ids))
        )


def job_for_event(conn: Connection, job_id: str) -> Any:
    """``(kind, state, deleted)`` of a managed job, its ``jobs`` row locked for the event
    (``FOR UPDATE OF jobs`` on PostgreSQL; SQLite's write transaction already serialises);
    None when there is no such job with a side row."""
    query = (
        select(jobs.c.kind, jobs.c.state, pipelinejobs.c.deleted)
        .join(pipelinejobs, pipelinejobs.c.job_id == jobs.c.job_id)
        .where(jobs.c.job_id == job_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=jobs)
    return conn.execute(query).first()
