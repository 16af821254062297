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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.core.errors import InvalidInput, InvalidTransition, JobNotFound
from assay.jobs._json import dumps
from assay.jobs.fsm import State, machine_for
from assay.jobs.reads import (
    event_row,
    follow_events,
    get_job,
    list_events,
    list_jobs,
    read_since,
    record_of,
    wait_terminal,
)
from assay.jobs.records import JobRecord

__all__ = [
    "EVENT_TYPES",
    "HOST",
    "append_event",
    "append_events",
    "create_job",
    "fire",
    "fire_in",
    "follow_events",
    "format_exception",
    "get_job",
    "heartbeat",
    "list_events",
    "list_jobs",
    "read_since",
    "request_stop",
    "set_fields",
    "stop_requested",
    "this_process",
    "wait_terminal",
]

#: Event types with a fixed meaning; a kind may add its own (any short lowercase name).
EVENT_TYPES = ("transition", "log", "monitor", "stop_request")
HOST = socket.gethostname()


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


def new_job_row(
    job_id: str,
    kind: str,
    machine: str,
    initial: State,
    environment: str,
    owner: str,
    spec_text: str,
    parent_job_id: str | None,
    now: float,
) -> dict[str, Any]:
    """The ``jobs`` row of a job just created in its machine's initial state (one event so far)."""
    return {
        "job_id": job_id,
        "kind": kind,
        "machine": machine,
        "state": initial.name,
        "state_code": initial.code,
        "environment": environment,
        "owner": owner,
        "spec": spec_text,
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
        "launch": None,
        "last_seq": 1,
    }


def _recreated_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What a forced re-creation resets: a new job's row but its id, creation time and event
    sequence (the job keeps its history)."""
    return {k: v for k, v in row.items() if k not in ("job_id", "created", "last_seq")}


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
                queries.insert_job(
                    conn,
                    new_job_row(
                        job_id,
                        kind,
                        machine,
                        initial,
                        environment,
                        owner,
                        spec_text,
                        parent_job_id,
                        now,
                    ),
                )
                queries.insert_events(
                    conn,
                    [
                        event_row(
                            job_id,
                            1,
                            now,
                            "transition",
                            {"kind": kind},
                            "create",
                            None,
                            initial.name,
                        )
                    ],
                )
                return record_of(queries.job(conn, job_id)), True
            if not force:
                return record_of(existing), False
            old = record_of(existing)
            old_machine = machine_for(old.machine)
            if not old_machine.is_terminal(old.state):
                raise InvalidTransition(
                    f"cannot recreate job {job_id}: it is {old.state}; stop it first",
                    {"event": "recreate", "state": old.state},
                )
            updated = queries.transition(
                conn,
                job_id,
                old_machine.terminal_states(),
                _recreated_fields(
                    new_job_row(
                        job_id,
                        kind,
                        machine,
                        initial,
                        environment,
                        owner,
                        spec_text,
                        parent_job_id,
                        now,
                    )
                ),
            )
            if updated is None:  # someone else moved it meanwhile
                raise InvalidTransition(f"cannot recreate job {job_id}: it changed meanwhile")
            queries.insert_events(
                conn,
                [
                    event_row(
                        job_id,
                        updated.last_seq,
                        now,
                        "transition",
                        {"kind": kind},
                        "recreate",
                        old.state,
                        initial.name,
                    )
                ],
            )
            return record_of(updated), True
    except IntegrityError:
        # Another process inserted the same id between our read and our insert (PostgreSQL).
        return get_job(job_id, workspace=ws), False


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
    updated = queries.transition(conn, job_id, transition.sources, changes)
    if updated is None:
        raise _not_allowed(conn, job_id, event)
    body = dict(payload or {})
    if error is not None:
        body.setdefault("error", error)
    queries.insert_events(
        conn,
        [
            event_row(
                job_id, updated.last_seq, now, "transition", body, event, row.state, target.name
            )
        ],
    )
    return record_of(updated)


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
    now = time.time()
    with _workspace(workspace).write() as conn:
        last = queries.allocate_seqs(conn, job_id, len(items), {})
        if last is None:
            raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
        first = last - len(items) + 1
        queries.insert_events(
            conn,
            [
                event_row(job_id, first + offset, now, type_, payload)
                for offset, (type_, payload) in enumerate(items)
            ],
        )
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
            conn, [event_row(job_id, seq, now, "stop_request", {"state": row.state})]
        )
        return record_of(queries.job(conn, job_id))


def stop_requested(job_id: str, *, workspace: Workspace | None = None) -> bool:
    """Whether a stop was requested (a cheap read that supervisors poll)."""
    with _workspace(workspace).read() as conn:
        row = queries.job(conn, job_id)
    return bool(row is not None and row.stop_requested)


def set_fields(job_id: str, fields: dict[str, Any], *, workspace: Workspace | None = None) -> None:
    """Set bookkeeping columns (``pid``, ``pgid``, ``host``, ``workdir``) on an active job."""
    allowed = {"pid", "pgid", "host", "workdir", "last_seen", "launch"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"set_fields: not settable {sorted(unknown)}")
    with _workspace(workspace).write() as conn:
        queries.update_job(conn, job_id, {**fields, "updated": time.time()})


# -- reading ------------------------------------------------------------------------------------
def format_exception(exc: BaseException) -> tuple[str, str]:
    """``("Type: message", traceback text)`` for a job's error column and event payload."""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


def this_process() -> dict[str, Any]:
    """``pid`` and ``host`` fields for a job supervised by this process."""
    return {"pid": os.getpid(), "host": HOST}
