"""Catalog reads and writes for questions: jobs of kind ``question`` and their side table
``question_jobs`` (migration 0008). A question's state, inputs, outputs and events are its job's
(``job_queries``); this module holds what only a question has and the joined reads.

SQLAlchemy Core with bound parameters only. JSON columns are text; the caller encodes and
decodes them, so this module stays a thin layer of statements.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection, Select, insert, select, update

from assay.catalog.schema import jobs, question_jobs

KIND = "question"


def insert_question(conn: Connection, row: Mapping[str, Any]) -> None:
    """The side row of a question whose job row exists (same transaction)."""
    conn.execute(insert(question_jobs), [dict(row)])


def update_question(conn: Connection, job_id: str, changes: Mapping[str, Any]) -> None:
    conn.execute(update(question_jobs).where(question_jobs.c.job_id == job_id).values(**changes))


def _joined() -> Select[Any]:
    return select(
        jobs,
        question_jobs.c.service_id,
        question_jobs.c.backend,
        question_jobs.c.parent_question_uuid,
        question_jobs.c.originator_question_uuid,
        question_jobs.c.error.label("question_error"),
        question_jobs.c.details,
    ).join(question_jobs, question_jobs.c.job_id == jobs.c.job_id)


def question(conn: Connection, question_uuid: str) -> Any:
    """The joined job + side row of one question, or None."""
    return conn.execute(_joined().where(jobs.c.job_id == question_uuid)).first()


def questions_with_prefix(conn: Connection, prefix: str, limit: int = 11) -> list[Any]:
    return list(
        conn.execute(
            select(question_jobs.c.job_id)
            .where(question_jobs.c.job_id.like(_escape_like(prefix) + "%", escape="\\"))
            .order_by(question_jobs.c.job_id)
            .limit(limit)
        ).scalars()
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_questions(
    conn: Connection,
    service_id: str | None = None,
    states: Collection[str] | None = None,
    parent_question_uuid: str | None = None,
    limit: int | None = 50,
) -> list[Any]:
    """Questions newest first, filtered by service id (exact, or ``ns/name`` for every tag), job
    states and parent."""
    statement = _joined().order_by(jobs.c.created.desc(), jobs.c.job_id.desc())
    if service_id is not None:
        if ":" in service_id:
            statement = statement.where(question_jobs.c.service_id == service_id)
        else:
            statement = statement.where(
                question_jobs.c.service_id.like(_escape_like(service_id) + ":%", escape="\\")
            )
    if states is not None:
        statement = statement.where(jobs.c.state.in_(list(states)))
    if parent_question_uuid is not None:
        statement = statement.where(question_jobs.c.parent_question_uuid == parent_question_uuid)
    if limit is not None:
        statement = statement.limit(limit)
    return list(conn.execute(statement))
