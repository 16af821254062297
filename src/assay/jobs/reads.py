"""Reading jobs and their events (re-exported by ``assay.jobs.store``, which writes them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.core.errors import AmbiguousReference, JobNotFound
from assay.jobs._json import capped, dumps, loads
from assay.jobs.records import JobEvent, JobRecord


def _workspace(workspace: Workspace | None) -> Workspace:
    return workspace or open_workspace()


def record_of(row: Any) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        kind=row.kind,
        machine=row.machine,
        state=row.state,
        state_code=row.state_code,
        environment=row.environment,
        owner=row.owner,
        spec=loads(row.spec) or {},
        result=loads(row.result),
        error=row.error,
        created=row.created,
        updated=row.updated,
        started=row.started,
        finished=row.finished,
        last_seen=row.last_seen,
        pid=row.pid,
        host=row.host,
        stop_requested=bool(row.stop_requested),
        parent_job_id=row.parent_job_id,
        workdir=row.workdir,
        pgid=row.pgid,
        launch=loads(row.launch),
    )


def event_of(row: Any) -> JobEvent:
    return JobEvent(
        job_id=row.job_id,
        seq=row.seq,
        at=row.at,
        type=row.type,
        event=row.event,
        from_state=row.from_state,
        to_state=row.to_state,
        payload=loads(row.payload) or {},
    )


def event_row(
    job_id: str,
    seq: int,
    at: float,
    type_: str,
    payload: dict[str, Any] | None,
    event: str = "",
    from_state: str | None = None,
    to_state: str | None = None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "seq": seq,
        "at": at,
        "type": type_,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "payload": dumps(capped(payload or {})),
    }


def get_job(job_id: str, *, workspace: Workspace | None = None) -> JobRecord:
    """One job by id or unique id prefix; ``JobNotFound`` / ``AmbiguousReference``."""
    if not job_id:
        raise JobNotFound("no job id given")
    with _workspace(workspace).read() as conn:
        row = queries.job(conn, job_id)
        if row is None:
            matches = queries.jobs_with_prefix(conn, job_id, limit=2)
            if len(matches) > 1:
                raise AmbiguousReference(
                    f"job id prefix {job_id!r} matches more than one job", {"job_id": job_id}
                )
            if matches:
                row = queries.job(conn, matches[0])
    if row is None:
        raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
    return record_of(row)


def list_jobs(
    kind: str | None = None,
    state: str | Iterable[str] | None = None,
    environment: str | None = None,
    owner: str | None = None,
    limit: int | None = 50,
    after: str | None = None,
    *,
    parent_job_id: str | None = None,
    workspace: Workspace | None = None,
) -> list[JobRecord]:
    """Jobs newest first. ``after``: the id of the last job of the previous page (keyset)."""
    ws = _workspace(workspace)
    with ws.read() as conn:
        cursor = None
        if after is not None:
            row = queries.job(conn, after)
            if row is None:
                raise JobNotFound(f"no job {after} (the 'after' cursor)")
            cursor = (row.created, row.job_id)
        states = state if state is None or isinstance(state, str) else list(state)
        rows = queries.list_jobs(
            conn,
            kind=kind,
            state=states,
            environment=environment,
            owner=owner,
            parent_job_id=parent_job_id,
            limit=limit,
            after=cursor,
        )
    return [record_of(row) for row in rows]


def list_events(
    job_id: str,
    after_seq: int = 0,
    limit: int | None = None,
    types: Sequence[str] | None = None,
    *,
    workspace: Workspace | None = None,
) -> list[JobEvent]:
    """A job's events in order (``after_seq`` to resume). ``JobNotFound`` for an unknown id."""
    ws = _workspace(workspace)
    with ws.read() as conn:
        if queries.job(conn, job_id) is None:
            raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
        rows = queries.events(conn, job_id, after_seq=after_seq, limit=limit, types=types)
    return [event_of(row) for row in rows]


def read_since(
    job_id: str, after_seq: int, limit: int, *, workspace: Workspace | None = None
) -> tuple[JobRecord, list[JobEvent]]:
    """The job, then at most ``limit`` of its events after ``after_seq``: read in that order,
    so when the record is terminal and fewer than ``limit`` events came back, every last event
    has been read (a job writes its events before or with its terminal transition). One step
    of every follower of a job's events (the server's SSE stream, ``follow_events``)."""
    ws = _workspace(workspace)
    record = get_job(job_id, workspace=ws)
    return record, list_events(record.job_id, after_seq, limit, workspace=ws)


def follow_events(
    job_id: str,
    after_seq: int = 0,
    *,
    batch: int = 200,
    poll_s: float = 0.05,
    idle: Callable[[JobRecord], None] | None = None,
    workspace: Workspace | None = None,
) -> Iterator[JobEvent]:
    """A job's events after ``after_seq`` as they are written, until the job is terminal and
    every event has been yielded. ``idle(record)`` is called after each read that found
    nothing new (a caller's deadline or health check; it may raise to stop following)."""
    ws = _workspace(workspace)
    seen = after_seq
    while True:
        record, events = read_since(job_id, seen, batch, workspace=ws)
        for event in events:
            seen = event.seq
            yield event
        if len(events) == batch:
            continue  # more waiting: no pause
        if record.terminal:
            return
        if not events and idle is not None:
            idle(record)
        time.sleep(poll_s)


def wait_terminal(
    job_id: str,
    timeout: float | None = None,
    *,
    interval: float = 0.05,
    workspace: Workspace | None = None,
) -> JobRecord:
    """Poll until the job is terminal; the record (not terminal if ``timeout`` passed first)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = get_job(job_id, workspace=workspace)
        if record.terminal or (deadline is not None and time.monotonic() >= deadline):
            return record
        time.sleep(interval)
