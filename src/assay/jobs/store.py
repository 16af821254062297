"""The job store: create jobs, move them through their state machine, record their events.

Contract (every function is one catalog transaction, safe across threads and processes):

* A transition is ONE guarded statement, ``UPDATE jobs SET state=:target ... WHERE job_id=:id AND
  state IN (:sources)``, plus ONE event row in the same transaction. Of two processes firing
  conflicting events at one job, exactly one wins; the other gets ``InvalidTransition`` naming the
  state it found. A lost race is visible, never silent.
* Event numbers (``seq``) start at 1 per job, have no gaps and are unique (primary key
  ``(job_id, seq)``); they are allocated from ``jobs.last_seq`` inside the writing transaction.
* Heartbeats update ``jobs.last_seen`` only (no event row per beat).
* A stop request is a column (``stop_requested``) that the job's supervisor polls, so ``stop``
  works from any process on any OS; a job that has not started yet is stopped at once.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.exc import IntegrityError

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.catalog.schema import jobs as job_table
from assay.core.errors import AmbiguousReference, InvalidInput, InvalidTransition, JobNotFound
from assay.jobs._json import capped, dumps, loads
from assay.jobs.fsm import machine_for
from assay.jobs.records import JobEvent, JobRecord

#: Event types with a fixed meaning; a kind may add its own (any short lowercase name).
EVENT_TYPES = ("transition", "log", "monitor", "stop_request")
HOST = socket.gethostname()


def _record(row: Any) -> JobRecord:
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
    )


def _event(row: Any) -> JobEvent:
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


def _event_row(
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


def _workspace(workspace: Workspace | None) -> Workspace:
    return workspace or open_workspace()


def _check_type(type_: str) -> None:
    if (
        not type_
        or len(type_) > 32
        or not type_.replace("_", "").isalnum()
        or type_ != type_.lower()
    ):
        raise InvalidInput(f"event type {type_!r}: use a short lowercase name (letters, _)")


# -- creating -----------------------------------------------------------------------------------
def create_job(
    kind: str,
    job_id: str,
    *,
    spec: dict[str, Any],
    machine: str = "job",
    environment: str = "local",
    owner: str = "",
    parent_job_id: str | None = None,
    force: bool = False,
    workspace: Workspace | None = None,
) -> tuple[JobRecord, bool]:
    """Record a new job in its machine's initial state, with the transition event ``create``.

    Returns ``(record, True)`` when created. When ``job_id`` exists already: ``(existing,
    False)``, unless ``force`` is set and the job is terminal, in which case it is reset to the
    initial state (spec, result, error, times and stop flag cleared) with the transition event
    ``recreate``. ``force`` on a job that is still active raises ``InvalidTransition`` (stop it
    first). Two processes creating the same id at once: one creates, the other gets the existing.
    """
    state_machine = machine_for(machine)
    initial = state_machine.state(state_machine.initial)
    ws = _workspace(workspace)
    now = time.time()
    spec_text = dumps(spec)
    try:
        with ws.write() as conn:
            existing = queries.job(conn, job_id, for_update=force)
            if existing is None:
                created = create_job_in(
                    conn,
                    kind,
                    job_id,
                    spec=spec,
                    machine=machine,
                    environment=environment,
                    owner=owner,
                    parent_job_id=parent_job_id,
                )
                assert created is not None
                return created, True
            if not force:
                return _record(existing), False
            old = _record(existing)
            old_machine = machine_for(old.machine)
            if not old_machine.is_terminal(old.state):
                raise InvalidTransition(
                    f"cannot recreate job {job_id}: it is {old.state}; stop it first",
                    {"event": "recreate", "state": old.state},
                )
            seq = queries.transition(
                conn,
                job_id,
                old_machine.terminal_states(),
                {
                    "kind": kind,
                    "machine": machine,
                    "state": initial.name,
                    "state_code": initial.code,
                    "environment": environment,
                    "owner": owner,
                    "spec": spec_text,
                    "result": None,
                    "error": None,
                    "updated": now,
                    "started": None,
                    "finished": None,
                    "last_seen": None,
                    "pid": None,
                    "pgid": None,
                    "host": None,
                    "workdir": None,
                    "stop_requested": False,
                    "parent_job_id": parent_job_id,
                },
            )
            if seq is None:  # someone else moved it meanwhile (SQLite cannot lock the row)
                raise InvalidTransition(f"cannot recreate job {job_id}: it changed meanwhile")
            queries.insert_events(
                conn,
                [
                    _event_row(
                        job_id,
                        seq,
                        now,
                        "transition",
                        {"kind": kind},
                        "recreate",
                        old.state,
                        initial.name,
                    )
                ],
            )
            return _record(queries.job(conn, job_id)), True
    except IntegrityError:
        # Another process inserted the same id between our read and our insert (PostgreSQL).
        return get_job(job_id, workspace=ws), False


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
    row = {
        "job_id": job_id,
        "kind": kind,
        "machine": machine,
        "state": initial.name,
        "state_code": initial.code,
        "environment": environment,
        "owner": owner,
        "spec": dumps(spec),
        "result": None,
        "error": None,
        "created": now,
        "updated": now,
        "started": None,
        "finished": None,
        "last_seen": None,
        "pid": None,
        "pgid": None,
        "host": None,
        "workdir": None,
        "stop_requested": False,
        "parent_job_id": parent_job_id,
        "last_seq": 1,
    }
    row.update(fields or {})
    events = [
        _event_row(
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
            _event_row(
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
    return _record(queries.job(conn, job_id))


# -- transitions --------------------------------------------------------------------------------
def _not_allowed(conn: Connection, job_id: str, event: str) -> InvalidTransition | JobNotFound:
    row = queries.job(conn, job_id)
    if row is None:
        return JobNotFound(f"no job {job_id}", {"job_id": job_id})
    state_machine = machine_for(row.machine)
    try:
        state_machine.target(row.state, event)
    except InvalidTransition as exc:
        exc.details["job_id"] = job_id
        exc.message = f"job {job_id}: {exc.message}"
        exc.args = (exc.message,)
        return exc
    # Allowed from the state read now but not from the one the update saw: a race we lost.
    return InvalidTransition(
        f"job {job_id}: cannot {event}: its state changed meanwhile (now {row.state})",
        {"event": event, "state": row.state, "job_id": job_id},
    )


def fire_in(
    conn: Connection,
    job_id: str,
    event: str,
    *,
    payload: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    fields: dict[str, Any] | None = None,
) -> JobRecord:
    """``fire`` inside the caller's write transaction (so a kind can commit its own rows, say an
    output bundle, in the same transaction as the transition).

    The row is read ``FOR UPDATE`` (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
    writers) so the recorded ``from_state`` is exact; the update is still guarded by the event's
    source states, so a transition can never apply from a state the machine does not allow.
    """
    row = queries.job(conn, job_id, for_update=True)
    if row is None:
        raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
    state_machine = machine_for(row.machine)
    transition = state_machine.transition(event)
    if row.state not in transition.sources:
        raise _not_allowed(conn, job_id, event)
    target = state_machine.state(transition.target)
    now = time.time()
    changes: dict[str, Any] = {"state": target.name, "state_code": target.code, "updated": now}
    if target.name == "RUNNING" and row.started is None:
        changes["started"] = now
    if target.terminal:
        changes["finished"] = now
    if result is not None:
        changes["result"] = dumps(result)
    if error is not None:
        changes["error"] = error
    changes.update(fields or {})
    seq = queries.transition(conn, job_id, transition.sources, changes)
    if seq is None:
        raise _not_allowed(conn, job_id, event)
    body = dict(payload or {})
    if error is not None:
        body.setdefault("error", error)
    queries.insert_events(
        conn,
        [_event_row(job_id, seq, now, "transition", body, event, row.state, target.name)],
    )
    return _record(queries.job(conn, job_id))


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
    seq = queries.transition(conn, job_id, (from_state,), changes)
    if seq is None:
        raise _not_allowed(conn, job_id, event)
    body = dict(payload or {})
    if error is not None:
        body.setdefault("error", error)
    row = _event_row(job_id, seq, now, "transition", body, event, from_state, target.name)
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
            _event_row(
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


def fire(
    job_id: str,
    event: str,
    *,
    payload: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    fields: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> JobRecord:
    """Move the job by ``event`` in one guarded update plus one event row.

    ``result`` and ``error`` are stored on the job; ``fields`` sets other columns too (``pid``,
    ``pgid``, ``host``, ``workdir``, ``last_seen``). Raises ``InvalidTransition`` when the job's
    state does not allow ``event`` (naming the state), ``JobNotFound`` for an unknown id.
    """
    with _workspace(workspace).write() as conn:
        return fire_in(
            conn, job_id, event, payload=payload, result=result, error=error, fields=fields
        )


# -- events, heartbeats, stop requests ----------------------------------------------------------
def append_events(
    job_id: str,
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    workspace: Workspace | None = None,
) -> list[int]:
    """Append non-transition events (``log``, ``monitor``, a kind's own type) in one transaction;
    their seqs. Payload strings are capped at ``PAYLOAD_CAP`` characters."""
    if not items:
        return []
    for type_, _payload in items:
        _check_type(type_)
        if type_ == "transition":
            raise InvalidInput("transition events are written by fire(), not append_events()")
    with _workspace(workspace).write() as conn:
        return append_events_in(conn, job_id, items)


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
        _event_row(job_id, first + offset, times[offset] or now, type_, payload)
        for offset, (type_, payload) in enumerate(items)
    ]
    if events_out is not None:
        events_out.extend(rows)
    else:
        queries.insert_events(conn, rows)
    return list(range(first, last + 1))


def append_event(
    job_id: str, type: str, payload: dict[str, Any], *, workspace: Workspace | None = None
) -> int:
    """Append one event; its seq."""
    return append_events(job_id, [(type, payload)], workspace=workspace)[0]


def heartbeat(job_id: str, pid: int | None = None, *, workspace: Workspace | None = None) -> bool:
    """Set ``last_seen`` (and ``pid``/``host`` when given) on an active job; no event row.
    True when the job's row was updated (False: unknown or already terminal)."""
    with _workspace(workspace).write() as conn:
        row = queries.job(conn, job_id)
        if row is None:
            return False
        changes: dict[str, Any] = {"last_seen": time.time()}
        if pid is not None:
            changes["pid"] = pid
            changes["host"] = HOST
        return (
            queries.update_job(
                conn, job_id, changes, states=machine_for(row.machine).active_states()
            )
            == 1
        )


def request_stop(job_id: str, *, workspace: Workspace | None = None) -> JobRecord:
    """Ask a job to stop, from any process.

    A job that has not started (its machine's initial state or QUEUED) is moved to STOPPED at
    once; a running one gets ``stop_requested`` set and a ``stop_request`` event, and its
    supervisor (executor or ``run_inline``) ends it STOPPED. A terminal job raises
    ``InvalidTransition`` ("already FINISHED"). Accepts a unique id prefix.
    """
    ws = _workspace(workspace)
    job_id = get_job(job_id, workspace=ws).job_id
    with ws.write() as conn:
        row = queries.job(conn, job_id, for_update=True)
        if row is None:
            raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
        state_machine = machine_for(row.machine)
        if state_machine.is_terminal(row.state):
            raise InvalidTransition(
                f"cannot stop job {job_id}: already {row.state}",
                {"event": "stop", "state": row.state, "job_id": job_id},
            )
        if row.state in (state_machine.initial, "QUEUED") and "stop" in state_machine.events():
            return fire_in(conn, job_id, "stop", payload={"reason": "stop requested before start"})
        now = time.time()
        seq = queries.allocate_seqs(conn, job_id, 1, {"stop_requested": True, "updated": now})
        assert seq is not None  # the row is locked (or the database is) in this transaction
        queries.insert_events(
            conn, [_event_row(job_id, seq, now, "stop_request", {"state": row.state})]
        )
        return _record(queries.job(conn, job_id))


def stop_requested(job_id: str, *, workspace: Workspace | None = None) -> bool:
    """Whether a stop was requested (a cheap read that supervisors poll)."""
    with _workspace(workspace).read() as conn:
        row = queries.job(conn, job_id)
    return bool(row is not None and row.stop_requested)


def set_fields(job_id: str, fields: dict[str, Any], *, workspace: Workspace | None = None) -> None:
    """Set bookkeeping columns (``pid``, ``pgid``, ``host``, ``workdir``) on an active job."""
    allowed = {"pid", "pgid", "host", "workdir", "last_seen"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"set_fields: not settable {sorted(unknown)}")
    with _workspace(workspace).write() as conn:
        queries.update_job(conn, job_id, {**fields, "updated": time.time()})


# -- reading ------------------------------------------------------------------------------------
def job_in(conn: Connection, job_id: str) -> JobRecord | None:
    """One job by exact id inside the caller's transaction, or None."""
    row = queries.job(conn, job_id)
    return _record(row) if row is not None else None


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
    return _record(row)


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
    return [_record(row) for row in rows]


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
    return [_event(row) for row in rows]


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


def format_exception(exc: BaseException) -> tuple[str, str]:
    """``("Type: message", traceback text)`` for a job's error column and event payload."""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


def this_process() -> dict[str, Any]:
    """``pid`` and ``host`` fields for a job supervised by this process."""
    return {"pid": os.getpid(), "host": HOST}
