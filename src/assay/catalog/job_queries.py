"""Catalog reads and writes for jobs and their events (tables from migration 0004).

SQLAlchemy Core with bound parameters only; JSON columns are text that the caller encodes and
decodes. The two statements that make the job layer safe across processes live here:

* ``transition``: ``UPDATE jobs SET state=:target, last_seq=last_seq+1, ... WHERE job_id=:id AND
  state IN (:sources) RETURNING last_seq`` -- one row updated or none; the caller writes the event
  row with the returned ``last_seq`` in the same transaction.
* ``allocate_seqs``: ``UPDATE jobs SET last_seq=last_seq+:n ... RETURNING last_seq`` for log and
  monitor events. The row update takes the row lock (PostgreSQL) or the database write lock
  (SQLite, ``BEGIN IMMEDIATE``), so two writers never get the same numbers and there are no gaps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from assay.catalog.schema import job_events, jobs

JOB_COLUMNS = tuple(column.name for column in jobs.columns)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def insert_job(conn: Connection, row: Mapping[str, Any]) -> None:
    # Parameters apart from the statement: one cached statement, not one built per job.
    conn.execute(insert(jobs), [dict(row)])


def job(conn: Connection, job_id: str, *, for_update: bool = False) -> Any:
    """The row of one job, or None (``for_update``: lock it until the transaction ends)."""
    statement = select(jobs).where(jobs.c.job_id == job_id)
    if for_update:
        statement = statement.with_for_update()
    return conn.execute(statement).first()


def jobs_with_prefix(conn: Connection, prefix: str, limit: int = 2) -> list[str]:
    return list(
        conn.execute(
            select(jobs.c.job_id)
            .where(jobs.c.job_id.like(_escape_like(prefix) + "%", escape="\\"))
            .order_by(jobs.c.job_id)
            .limit(limit)
        ).scalars()
    )


def transition(
    conn: Connection,
    job_id: str,
    sources: Collection[str],
    changes: Mapping[str, Any],
) -> Any:
    """Apply ``changes`` (which include the new ``state``) if the job is in one of ``sources``;
    bump ``last_seq``. The updated row (its ``last_seq`` is the new event's number), or None
    when no row matched (wrong state or no such job)."""
    return conn.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .where(jobs.c.state.in_(list(sources)))
        .values(**changes, last_seq=jobs.c.last_seq + 1)
        .returning(*jobs.c)
    ).first()


def transition_by(
    conn: Connection,
    job_id: str,
    sources: Collection[str],
    changes: Mapping[str, Any],
    steps: int,
) -> int | None:
    """``transition`` for ``steps`` transitions recorded at once (``last_seq`` bumped by that
    many); the new ``last_seq`` or None."""
    row = conn.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .where(jobs.c.state.in_(list(sources)))
        .values(**changes, last_seq=jobs.c.last_seq + steps)
        .returning(jobs.c.last_seq)
    ).first()
    return None if row is None else int(row[0])


def allocate_seqs(
    conn: Connection, job_id: str, count: int, changes: Mapping[str, Any]
) -> int | None:
    """Reserve ``count`` event numbers for ``job_id``; the last of them, or None (no such job)."""
    row = conn.execute(
        update(jobs)
        .where(jobs.c.job_id == job_id)
        .values(**changes, last_seq=jobs.c.last_seq + count)
        .returning(jobs.c.last_seq)
    ).first()
    return None if row is None else int(row[0])


def update_job(
    conn: Connection,
    job_id: str,
    changes: Mapping[str, Any],
    *,
    states: Collection[str] | None = None,
) -> int:
    """Update columns other than the state; the number of rows changed (0 or 1)."""
    statement = update(jobs).where(jobs.c.job_id == job_id)
    if states is not None:
        statement = statement.where(jobs.c.state.in_(list(states)))
    return int(conn.execute(statement.values(**changes)).rowcount or 0)


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(job_events), [dict(row) for row in rows])


def list_jobs(
    conn: Connection,
    *,
    kind: str | None = None,
    state: str | Collection[str] | None = None,
    environment: str | None = None,
    owner: str | None = None,
    parent_job_id: str | None = None,
    limit: int | None = 50,
    after: tuple[float, str] | None = None,
) -> list[Any]:
    """Jobs newest first; ``after`` = (created, job_id) of the last row of the previous page."""
    statement = select(jobs).order_by(jobs.c.created.desc(), jobs.c.job_id.desc())
    if kind is not None:
        statement = statement.where(jobs.c.kind == kind)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        statement = statement.where(jobs.c.state.in_(states))
    if environment is not None:
        statement = statement.where(jobs.c.environment == environment)
    if owner is not None:
        statement = statement.where(jobs.c.owner == owner)
    if parent_job_id is not None:
        statement = statement.where(jobs.c.parent_job_id == parent_job_id)
    if after is not None:
        created, job_id = after
        statement = statement.where(
            or_(jobs.c.created < created, and_(jobs.c.created == created, jobs.c.job_id < job_id))
        )
    if limit is not None:
        statement = statement.limit(limit)
    return list(conn.execute(statement))


def events(
    conn: Connection,
    job_id: str,
    *,
    after_seq: int = 0,
    limit: int | None = None,
    types: Sequence[str] | None = None,
) -> list[Any]:
    statement = (
        select(job_events)
        .where(job_events.c.job_id == job_id)
        .where(job_events.c.seq > after_seq)
        .order_by(job_events.c.seq)
    )
    if types:
        statement = statement.where(job_events.c.type.in_(list(types)))
    if limit is not None:
        statement = statement.limit(limit)
    return list(conn.execute(statement))


def count_by_environment_state(
    conn: Connection, states: Collection[str]
) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(jobs.c.environment, jobs.c.state, func.count())
        .where(jobs.c.state.in_(list(states)))
        .group_by(jobs.c.environment, jobs.c.state)
    )
    return {(row[0], row[1]): int(row[2]) for row in rows}


def last_seen_by_environment(conn: Connection) -> dict[str, float]:
    rows = conn.execute(
        select(jobs.c.environment, func.max(jobs.c.last_seen)).group_by(jobs.c.environment)
    )
    return {row[0]: float(row[1]) for row in rows if row[1] is not None}


def delete_job(conn: Connection, job_id: str) -> None:
    conn.execute(delete(job_events).where(job_events.c.job_id == job_id))
    conn.execute(delete(jobs).where(jobs.c.job_id == job_id))


def lock_environment(conn: Connection, environment: str) -> None:
    """Serialise slot claims of one environment until the transaction ends (PostgreSQL
    transaction advisory lock; on SQLite the write transaction already holds the database)."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"assay-env:{environment}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(select(func.pg_advisory_xact_lock(key)))


def count_in_states(conn: Connection, environment: str, states: Collection[str]) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.environment == environment)
            .where(jobs.c.state.in_(list(states)))
        ).scalar_one()
    )


def touch_jobs(
    conn: Connection, job_ids: Collection[str], now: float, states: Collection[str]
) -> None:
    """One heartbeat for many jobs: ``last_seen = now`` where still in ``states``."""
    if job_ids:
        conn.execute(
            update(jobs)
            .where(jobs.c.job_id.in_(list(job_ids)))
            .where(jobs.c.state.in_(list(states)))
            .values(last_seen=now)
        )


def stop_states(conn: Connection, job_ids: Collection[str]) -> dict[str, tuple[str, bool]]:
    """``{job_id: (state, stop_requested)}`` for many jobs in one query."""
    if not job_ids:
        return {}
    rows = conn.execute(
        select(jobs.c.job_id, jobs.c.state, jobs.c.stop_requested).where(
            jobs.c.job_id.in_(list(job_ids))
        )
    )
    return {row[0]: (row[1], bool(row[2])) for row in rows}


def unowned_queued(conn: Connection, environment: str) -> list[Any]:
    """QUEUED jobs of an environment that no process owns (re-queued), oldest first."""
    return list(
        conn.execute(
            select(jobs)
            .where(jobs.c.environment == environment)
            .where(jobs.c.state == "QUEUED")
            .where(jobs.c.pid.is_(None))
            .where(jobs.c.launch.is_not(None))
            .order_by(jobs.c.created, jobs.c.job_id)
        )
    )
