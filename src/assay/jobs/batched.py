"""Job writes inside the caller's transaction, for supervisors that batch them.

``assay.jobs.store`` writes one thing per transaction; a supervisor recording a job as it runs
(``assay.jobs.recorder``) holds its creation, transitions, events and a kind's side rows and
writes them together. These are the pieces it composes, each inside the caller's write
transaction and each as guarded as ``store.fire``: ``create_job_in`` (optionally with the first
transitions a job went through before anyone could see it), ``append_events_in``,
``fire_known_in`` / ``fire_path_in`` (one ``UPDATE ... WHERE state = :from_state`` for one or
several transitions in a row), and event rows gathered for one ``insert_event_rows``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func

from assay.catalog import job_queries as queries
from assay.catalog.schema import jobs as job_table
from assay.core.errors import InvalidInput, InvalidTransition, JobNotFound
from assay.jobs._json import dumps
from assay.jobs.fsm import machine_for
from assay.jobs.reads import event_row, record_of
from assay.jobs.records import JobRecord
from assay.jobs.store import _check_type, _not_allowed, new_job_row


def create_job_in(
    conn: Connection,
    kind: str,
    job_id: str,
    *,
    spec: dict[str, Any],
    machine: str = "job",
    environment: str = "local",
    owner: str = "",
    parent_job_id: str | None = None,
    payload: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
    events_out: list[dict[str, Any]] | None = None,
    path: Sequence[dict[str, Any]] | None = None,
) -> JobRecord | None:
    """Insert a new job (initial state, transition event ``create``) inside the caller's write
    transaction, so a kind can write its first events and side rows in the same transaction.
    ``payload`` is added to the ``create`` event's; ``fields`` sets ``pid``/``host``/... at once.
    The id must be new (an existing one fails the insert). With ``events_out`` the event row
    is appended there for the caller to insert (``insert_event_rows``) and None is returned;
    else the new record. ``path``: transitions (``fire`` keyword arguments with ``event``) the
    job went through before this transaction commits (a quick job recorded in one batch): the
    row is inserted in the state they end in, with their events, each checked against the
    machine (``InvalidTransition``)."""
    state_machine = machine_for(machine)
    initial = state_machine.state(state_machine.initial)
    now = time.time()
    row = new_job_row(
        job_id, kind, machine, initial, environment, owner, dumps(spec), parent_job_id, now
    )
    row.update(fields or {})
    events = [
        event_row(
            job_id,
            1,
            now,
            "transition",
            {"kind": kind, **(payload or {})},
            "create",
            None,
            initial.name,
        )
    ]
    state = initial.name
    for step in path or ():
        # The job is not visible to anyone before this transaction commits: its first
        # transitions are checked against the machine here and written as they end.
        transition = state_machine.transition(step["event"])
        if state not in transition.sources:
            raise InvalidTransition(
                f"job {job_id}: cannot {step['event']} from {state}",
                {"event": step["event"], "state": state, "job_id": job_id},
            )
        target = state_machine.state(transition.target)
        row.update(state=target.name, state_code=target.code)
        if target.name == "RUNNING" and row["started"] is None:
            row["started"] = now
        if target.terminal:
            row["finished"] = now
        if step.get("result") is not None:
            row["result"] = dumps(step["result"])
        if step.get("error") is not None:
            row["error"] = step["error"]
        row.update(step.get("fields") or {})
        body = dict(step.get("payload") or {})
        if step.get("error") is not None:
            body.setdefault("error", step["error"])
        events.append(
            event_row(
                job_id, len(events) + 1, now, "transition", body, step["event"], state, target.name
            )
        )
        state = target.name
    row["last_seq"] = len(events)
    queries.insert_job(conn, row)
    if events_out is not None:
        events_out.extend(events)
        return None
    queries.insert_events(conn, events)
    return record_of(queries.job(conn, job_id))


def append_events_in(
    conn: Connection,
    job_id: str,
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    at: Sequence[float | None] | None = None,
    changes: dict[str, Any] | None = None,
    events_out: list[dict[str, Any]] | None = None,
) -> list[int]:
    """``append_events`` inside the caller's write transaction. ``at``: each event's time (None:
    now), for events recorded where they happened (a worker's clock). ``changes``: bookkeeping
    columns (``last_seen``, ``pid``...) set by the same statement that allocates the seqs."""
    for type_, _payload in items:
        _check_type(type_)
        if type_ == "transition":
            raise InvalidInput("transition events are written by fire(), not append_events()")
    if not items and not changes:
        return []
    now = time.time()
    last = queries.allocate_seqs(conn, job_id, len(items), dict(changes or {}))
    if last is None:
        raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
    first = last - len(items) + 1
    times = list(at) if at is not None else [None] * len(items)
    rows = [
        event_row(job_id, first + offset, times[offset] or now, type_, payload)
        for offset, (type_, payload) in enumerate(items)
    ]
    if events_out is not None:
        events_out.extend(rows)
    else:
        queries.insert_events(conn, rows)
    return list(range(first, last + 1))


def fire_known_in(
    conn: Connection,
    job_id: str,
    event: str,
    from_state: str,
    *,
    machine: str = "job",
    payload: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    fields: dict[str, Any] | None = None,
    events_out: list[dict[str, Any]] | None = None,
) -> str:
    """``fire_in`` for a supervisor that knows the state it left the job in: ONE guarded update
    ``WHERE state = :from_state`` (so the recorded ``from_state`` is exact without reading the
    row first) plus the event row (appended to ``events_out`` when given, for one batched
    insert). Returns the new state; ``InvalidTransition`` when the job is not in ``from_state``
    any more (another process moved it) or the machine does not allow ``event`` from it."""
    state_machine = machine_for(machine)
    transition = state_machine.transition(event)
    if from_state not in transition.sources:
        raise InvalidTransition(
            f"job {job_id}: cannot {event} from {from_state}",
            {"event": event, "state": from_state, "job_id": job_id},
        )
    target = state_machine.state(transition.target)
    now = time.time()
    job_columns = job_table.c
    changes: dict[str, Any] = {"state": target.name, "state_code": target.code, "updated": now}
    if target.name == "RUNNING":
        changes["started"] = func.coalesce(job_columns.started, now)
    if target.terminal:
        changes["finished"] = now
    if result is not None:
        changes["result"] = dumps(result)
    if error is not None:
        changes["error"] = error
    changes.update(fields or {})
    updated = queries.transition(conn, job_id, (from_state,), changes)
    if updated is None:
        raise _not_allowed(conn, job_id, event)
    body = dict(payload or {})
    if error is not None:
        body.setdefault("error", error)
    row = event_row(
        job_id, updated.last_seq, now, "transition", body, event, from_state, target.name
    )
    if events_out is not None:
        events_out.append(row)
    else:
        queries.insert_events(conn, [row])
    return target.name


def fire_path_in(
    conn: Connection,
    job_id: str,
    from_state: str,
    steps: Sequence[dict[str, Any]],
    *,
    machine: str = "job",
    events_out: list[dict[str, Any]] | None = None,
) -> str:
    """Several transitions in a row (``steps``: ``fire`` keyword arguments, each with its
    ``event``) as ONE guarded update ``WHERE state = :from_state`` and one event row each, in
    order. The same as firing them one by one inside this transaction (nobody can move the job
    in between), in fewer statements: a supervisor recording ``run`` then ``finish`` of a quick
    job. Each step must be allowed from the state the previous one reached (checked before
    anything is written); ``InvalidTransition`` as ``fire_known_in``."""
    if len(steps) == 1:
        return fire_known_in(
            conn, job_id, from_state=from_state, machine=machine, events_out=events_out, **steps[0]
        )
    state_machine = machine_for(machine)
    now = time.time()
    changes: dict[str, Any] = {"updated": now}
    states = [from_state]
    for step in steps:
        transition = state_machine.transition(step["event"])
        if states[-1] not in transition.sources:
            raise InvalidTransition(
                f"job {job_id}: cannot {step['event']} from {states[-1]}",
                {"event": step["event"], "state": states[-1], "job_id": job_id},
            )
        target = state_machine.state(transition.target)
        states.append(target.name)
        changes.update(state=target.name, state_code=target.code)
        if target.name == "RUNNING":
            changes["started"] = func.coalesce(job_table.c.started, now)
        if target.terminal:
            changes["finished"] = now
        if step.get("result") is not None:
            changes["result"] = dumps(step["result"])
        if step.get("error") is not None:
            changes["error"] = step["error"]
        changes.update(step.get("fields") or {})
    last = queries.transition_by(conn, job_id, (from_state,), changes, len(steps))
    if last is None:
        raise _not_allowed(conn, job_id, steps[0]["event"])
    rows = []
    for index, step in enumerate(steps):
        body = dict(step.get("payload") or {})
        if step.get("error") is not None:
            body.setdefault("error", step["error"])
        seq = last - len(steps) + 1 + index
        rows.append(
            event_row(
                job_id,
                seq,
                now,
                "transition",
                body,
                step["event"],
                states[index],
                states[index + 1],
            )
        )
    if events_out is not None:
        events_out.extend(rows)
    else:
        queries.insert_events(conn, rows)
    return states[-1]


def insert_event_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert event rows gathered with ``events_out`` (one statement)."""
    queries.insert_events(conn, rows)


def job_in(conn: Connection, job_id: str) -> JobRecord | None:
    """One job by exact id inside the caller's transaction, or None."""
    row = queries.job(conn, job_id)
    return record_of(row) if row is not None else None
