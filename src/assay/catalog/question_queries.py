"""Catalog reads and writes for questions to services and their events (tables from 0002).

SQLAlchemy Core with bound parameters only. JSON columns are text; the caller encodes and
decodes them, so this module stays a thin layer of statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from assay.catalog.schema import question_events, questions

QUESTION_COLUMNS = tuple(column.name for column in questions.columns)


def insert_question(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(questions).values(**row))


def update_question(conn: Connection, question_uuid: str, changes: Mapping[str, Any]) -> None:
    conn.execute(
        update(questions).where(questions.c.question_uuid == question_uuid).values(**changes)
    )


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(question_events), [dict(row) for row in rows])


def question(conn: Connection, question_uuid: str) -> Any:
    """The row of one question, or None."""
    return conn.execute(select(questions).where(questions.c.question_uuid == question_uuid)).first()


def questions_with_prefix(conn: Connection, prefix: str, limit: int = 11) -> list[Any]:
    return list(
        conn.execute(
            select(questions.c.question_uuid)
            .where(questions.c.question_uuid.like(_escape_like(prefix) + "%", escape="\\"))
            .order_by(questions.c.question_uuid)
            .limit(limit)
        ).scalars()
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_questions(
    conn: Connection,
    service_id: str | None = None,
    status: str | None = None,
    parent_question_uuid: str | None = None,
    limit: int | None = 50,
) -> list[Any]:
    """Questions newest first, filtered by service id (exact, or ``ns/name`` for every tag)."""
    statement = select(questions).order_by(questions.c.created.desc())
    if service_id is not None:
        if ":" in service_id:
            statement = statement.where(questions.c.service_id == service_id)
        else:
            statement = statement.where(
                questions.c.service_id.like(_escape_like(service_id) + ":%", escape="\\")
            )
    if status is not None:
        statement = statement.where(questions.c.status == status)
    if parent_question_uuid is not None:
        statement = statement.where(questions.c.parent_question_uuid == parent_question_uuid)
    if limit is not None:
        statement = statement.limit(limit)
    return list(conn.execute(statement))


def events_of(
    conn: Connection, question_uuid: str, kinds: Sequence[str] | None = None
) -> list[Any]:
    """Every event of one question in the order it happened."""
    statement = (
        select(question_events)
        .where(question_events.c.question_uuid == question_uuid)
        .order_by(question_events.c.seq, question_events.c.id)
    )
    if kinds:
        statement = statement.where(question_events.c.kind.in_(list(kinds)))
    return list(conn.execute(statement))


def event_counts(conn: Connection, question_uuids: Sequence[str]) -> dict[str, int]:
    if not question_uuids:
        return {}
    rows = conn.execute(
        select(question_events.c.question_uuid, func.count())
        .where(question_events.c.question_uuid.in_(list(question_uuids)))
        .group_by(question_events.c.question_uuid)
    )
    return {row[0]: int(row[1]) for row in rows}


def last_seq(conn: Connection, question_uuid: str) -> int:
    value = conn.execute(
        select(func.max(question_events.c.seq)).where(
            question_events.c.question_uuid == question_uuid
        )
    ).scalar()
    return int(value) if value is not None else 0


def move_events_last(conn: Connection, question_uuid: str, kind: str) -> None:
    """Give a question's events of ``kind`` the highest sequence numbers, in their order (an
    event another process added while this one still held earlier events)."""
    ids = list(
        conn.execute(
            select(question_events.c.id)
            .where(question_events.c.question_uuid == question_uuid)
            .where(question_events.c.kind == kind)
            .order_by(question_events.c.seq, question_events.c.id)
        ).scalars()
    )
    top = conn.execute(
        select(func.max(question_events.c.seq))
        .where(question_events.c.question_uuid == question_uuid)
        .where(question_events.c.kind != kind)
    ).scalar()
    top = int(top) if top is not None else 0
    for offset, event_id in enumerate(ids, start=1):
        conn.execute(
            update(question_events).where(question_events.c.id == event_id).values(seq=top + offset)
        )
