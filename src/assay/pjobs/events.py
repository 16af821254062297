"""Applying events to a managed pipeline job: guarded transitions, replays, admin events.

``apply_event`` is what the seed face, the CLI and the webhook call. Every transition goes
through ``jobs.store.fire`` (one guarded UPDATE plus one event row): an event not allowed in
the job's current state raises ``InvalidTransition`` naming both, and changes nothing.

Replays: an event carrying an ``event_id`` is applied at most once per job. The delivery is
claimed (a row keyed by job and event id, with the hash of the event and its data) before the
transition and marked applied after it; the same id with the same body is answered as a replay,
with another body as a ``DeliveryConflict``. A claim left by a process that died between the
two steps is settled by looking for the event id in the job's events (applied) or taken over
once it is older than ``STALE_CLAIM_S`` (not applied).

Admin events: ``reset`` (checks first that clearing the archive folder deletes nothing outside
it), ``ready``, and ``delete`` (hides the job; files stay).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc

from assay.bundles.workspace import Workspace
from assay.catalog import job_queries
from assay.catalog import pipelinejob_queries as queries
from assay.core.errors import (
    DeliveryConflict,
    InvalidEvent,
    InvalidTransition,
    JobNotFound,
    PipelineJobNotFound,
)
from assay.jobs import store
from assay.jobs._json import capped, dumps
from assay.pjobs import archive, index_jobs
from assay.pjobs.identity import is_uuid, short_hash
from assay.pjobs.machine import ADMIN_EVENTS, INFO_EVENTS, PIPELINEJOB_MACHINE
from assay.pjobs.records import PipelineJob
from assay.pjobs.service import KIND, check_event, get_pipelinejob

STALE_CLAIM_S = 60.0
#: Events with effects beyond one transition (files, an indexing job, hiding the job): they
#: claim their event id first and mark it applied after.
MULTI_STEP_EVENTS = frozenset({"delete", "reset", "index"})
MAX_EVENT_ID = 128


@dataclass(frozen=True)
class EventOutcome:
    uuid: str
    state: str  # the job's state after the event
    event: str
    replayed: bool = False
    index_job: str | None = None  # set by "index": the indexing job to run
    removed_files: int | None = None  # set by "reset"
    job: PipelineJob | None = None  # the whole record, when the event had it at hand

    @classmethod
    def of(cls, job: PipelineJob, event: str, **fields: Any) -> EventOutcome:
        return cls(job.uuid, job.state, event, job=job, **fields)

    def record(self, workspace: Workspace) -> PipelineJob:
        """The job after the event (read now when the event did not load it)."""
        return self.job or get_pipelinejob(workspace, self.uuid, include_deleted=True)


def apply_event(
    workspace: Workspace,
    reference: str,
    event: str,
    data: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    admin: bool = False,
    run_index: bool = True,
) -> EventOutcome:
    """Apply ``event`` (with ``data``) to the job ``reference``.

    ``admin`` says the caller proved admin rights (admin token, or a local operator who asked
    for it). ``index`` starts an indexing job and, with ``run_index``, runs it here and now;
    otherwise the caller runs ``index_jobs.run_index(outcome.index_job)``.
    """
    clean = check_event(event, data, admin=admin)
    if event_id is not None and (
        not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID
    ):
        raise InvalidEvent(f"an event id is a string of 1-{MAX_EVENT_ID} characters")
    if event not in MULTI_STEP_EVENTS:
        return _apply_in_one_transaction(workspace, reference, event, clean, event_id)
    job = get_pipelinejob(workspace, reference)
    if event_id is None:
        return _apply(workspace, job, event, clean, None, run_index)
    body_hash = short_hash({"event": event, "data": clean})
    replay = _claim(workspace, job.uuid, event_id, body_hash)
    if replay:
        return EventOutcome.of(get_pipelinejob(workspace, job.uuid, True), event, replayed=True)
    try:
        outcome = _apply(workspace, job, event, clean, event_id, run_index)
    except BaseException:
        with workspace.write() as conn:
            queries.release_delivery(conn, job.uuid, event_id)
        raise
    with workspace.write() as conn:
        queries.finish_delivery(conn, job.uuid, event_id, None)
    return outcome


def _apply_in_one_transaction(
    workspace: Workspace, reference: str, event: str, data: dict[str, Any], event_id: str | None
) -> EventOutcome:
    """A plain event (a transition or an info event): the job check, the replay guard, the
    transition and its event row in one write transaction, so a replay can never apply twice
    and a refused event leaves no trace."""
    job_uuid = (
        reference.lower() if is_uuid(reference) else get_pipelinejob(workspace, reference).uuid
    )
    payload: dict[str, Any] = {"data": data}
    error = None
    if event == "fail":
        error = str(data.get("error") or data.get("message") or "the job reported a failure")
    if event_id is not None:
        payload["event_id"] = event_id
        body_hash = short_hash({"event": event, "data": data})
    for _ in range(3):
        try:
            with workspace.write() as conn:
                row = queries.job_for_event(conn, job_uuid)
                if row is None or row.kind != KIND or row.deleted:
                    raise PipelineJobNotFound(f"no managed pipeline job {reference!r}")
                if event_id is not None:
                    # The primary key refuses a second delivery of the same id: the insert
                    # fails and the loop looks at the stored delivery below.
                    queries.claim_delivery(
                        conn,
                        {
                            "job_id": job_uuid,
                            "event_id": event_id,
                            "body_hash": body_hash,
                            "status": "applied",
                            "at": time.time(),
                        },
                    )
                if event in INFO_EVENTS:
                    _fire_info_in(conn, job_uuid, row.state, event, payload)
                    return EventOutcome(job_uuid, row.state, event)
                record = store.fire_in(conn, job_uuid, event, payload=payload, error=error)
            return EventOutcome(
                record.job_id, record.state, event, job=PipelineJob.from_job(record)
            )
        except sqlalchemy.exc.IntegrityError:
            if event_id is None:
                raise  # only the delivery insert is expected to conflict
            with workspace.read() as conn:
                existing = queries.delivery(conn, job_uuid, event_id)
            if existing is None:
                continue  # the other delivery rolled back meanwhile: try again
            _check_replay(existing, event_id, body_hash)
            job = get_pipelinejob(workspace, job_uuid)
            return EventOutcome(job.uuid, job.state, event, replayed=True, job=job)
    raise DeliveryConflict(f"event {event_id!r} is being applied right now; retry in a moment")


def _check_replay(existing: Any, event_id: str, body_hash: str) -> None:
    if existing.body_hash != body_hash:
        raise DeliveryConflict(
            f"event id {event_id!r} was already used for another event on this job"
        )
    if existing.status != "applied":
        raise DeliveryConflict(f"event {event_id!r} is being applied right now; retry in a moment")


def _claim(workspace: Workspace, job_uuid: str, event_id: str, body_hash: str) -> bool:
    """Claim the delivery; True when it is a replay of an event already applied."""
    row = {
        "job_id": job_uuid,
        "event_id": event_id,
        "body_hash": body_hash,
        "status": "claimed",
        "at": time.time(),
    }
    for _ in range(2):
        try:
            with workspace.write() as conn:
                existing = queries.delivery(conn, job_uuid, event_id)
                if existing is None:
                    queries.claim_delivery(conn, row)
                    return False
                if existing.body_hash != body_hash:
                    raise DeliveryConflict(
                        f"event id {event_id!r} was already used for another event on this job"
                    )
                if existing.status == "applied":
                    return True
                if _event_recorded(workspace, job_uuid, event_id):
                    queries.finish_delivery(conn, job_uuid, event_id, None)
                    return True
                if time.time() - existing.at < STALE_CLAIM_S:
                    raise DeliveryConflict(
                        f"event {event_id!r} is being applied right now; retry in a moment"
                    )
                queries.release_delivery(conn, job_uuid, event_id)  # the claimer died
                queries.claim_delivery(conn, row)
                return False
        except sqlalchemy.exc.IntegrityError:
            continue  # a concurrent claim of the same id won the insert: look again
    raise DeliveryConflict(f"event {event_id!r} is being applied right now; retry in a moment")


def _event_recorded(workspace: Workspace, job_uuid: str, event_id: str) -> bool:
    events = store.list_events(job_uuid, workspace=workspace)
    return any(e.payload.get("event_id") == event_id for e in events)


def _apply(
    workspace: Workspace,
    job: PipelineJob,
    event: str,
    data: dict[str, Any],
    event_id: str | None,
    run_index: bool,
) -> EventOutcome:
    payload: dict[str, Any] = {"data": data}
    if event_id is not None:
        payload["event_id"] = event_id
    if event == "delete":
        with workspace.write() as conn:
            queries.set_deleted(conn, job.uuid)
        store.append_event(job.uuid, "admin", {"event": "delete", **payload}, workspace=workspace)
        return EventOutcome.of(get_pipelinejob(workspace, job.uuid, True), event)
    if event == "reset":
        return _reset(workspace, job, payload)
    if event == "index":
        index_job = index_jobs.begin_index(workspace, job, payload)
        if run_index:
            index_jobs.run_index(workspace, index_job)
        return EventOutcome.of(get_pipelinejob(workspace, job.uuid), event, index_job=index_job)
    raise AssertionError(f"{event!r} is not a multi-step event")


def _fire_info_in(conn: Any, job_uuid: str, state: str, event: str, payload: dict[str, Any]) -> int:
    """Record an info event (``update``, ``resource``, ``create``) inside the caller's write
    transaction, which holds the job row; refused (``InvalidTransition``) when the job's state
    does not allow it. Returns its seq."""
    sources, _ = INFO_EVENTS[event]
    if state not in sources:
        raise InvalidTransition(
            f"job {job_uuid}: cannot {event} a job that is {state}; {event} is allowed "
            f"from {', '.join(sorted(sources))}",
            {"event": event, "state": state, "job_id": job_uuid},
        )
    now = time.time()
    seq = job_queries.allocate_seqs(conn, job_uuid, 1, {"updated": now})
    if seq is None:
        raise JobNotFound(f"no job {job_uuid}", {"job_id": job_uuid})
    job_queries.insert_events(
        conn,
        [
            {
                "job_id": job_uuid,
                "seq": seq,
                "at": now,
                "type": "transition",
                "event": event,
                "from_state": state,
                "to_state": state,
                "payload": dumps(capped(payload)),
            }
        ],
    )
    return seq


def _reset(workspace: Workspace, job: PipelineJob, payload: dict[str, Any]) -> EventOutcome:
    """Check the reset is allowed and safe, move to RESET, then clear the archive folder."""
    PIPELINEJOB_MACHINE.target(job.state, "reset")  # wrong state: refused before any check
    prefix = job.archive_path.rstrip("/") + "/"
    with workspace.read() as conn:
        nested = queries.archive_paths_under(conn, prefix, job.uuid)
    settings = workspace.settings
    archive.check_clearable(job.archive_path, settings, nested)
    store.fire(job.uuid, "reset", payload=payload, workspace=workspace)
    removed = archive.clear_directory(job.archive_path, settings, nested)
    store.append_event(
        job.uuid, "admin", {"event": "reset", "removed_files": removed}, workspace=workspace
    )
    return EventOutcome.of(get_pipelinejob(workspace, job.uuid), "reset", removed_files=removed)


def is_admin_event(event: Any) -> bool:
    return isinstance(event, str) and event in ADMIN_EVENTS
