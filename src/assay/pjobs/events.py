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
from assay.core.errors import DeliveryConflict, InvalidEvent, InvalidTransition, JobNotFound
from assay.jobs import store
from assay.jobs._json import capped, dumps
from assay.pjobs import archive, index_jobs
from assay.pjobs.identity import short_hash
from assay.pjobs.machine import ADMIN_EVENTS, INFO_EVENTS, PIPELINEJOB_MACHINE
from assay.pjobs.records import PipelineJob
from assay.pjobs.service import check_event, get_pipelinejob

STALE_CLAIM_S = 60.0
MAX_EVENT_ID = 128


@dataclass(frozen=True)
class EventOutcome:
    job: PipelineJob
    event: str
    replayed: bool = False
    index_job: str | None = None  # set by "index": the indexing job to run
    removed_files: int | None = None  # set by "reset"


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
    job = get_pipelinejob(workspace, reference)
    if event_id is None:
        return _apply(workspace, job, event, clean, None, run_index)
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID:
        raise InvalidEvent(f"an event id is a string of 1-{MAX_EVENT_ID} characters")
    body_hash = short_hash({"event": event, "data": clean})
    replay = _claim(workspace, job.uuid, event_id, body_hash)
    if replay:
        return EventOutcome(get_pipelinejob(workspace, job.uuid, True), event, replayed=True)
    try:
        outcome = _apply(workspace, job, event, clean, event_id, run_index)
    except BaseException:
        with workspace.write() as conn:
            queries.release_delivery(conn, job.uuid, event_id)
        raise
    with workspace.write() as conn:
        queries.finish_delivery(conn, job.uuid, event_id, None)
    return outcome


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
        return EventOutcome(get_pipelinejob(workspace, job.uuid, True), event)
    if event == "reset":
        return _reset(workspace, job, payload)
    if event == "index":
        index_job = index_jobs.begin_index(workspace, job, payload)
        if run_index:
            index_jobs.run_index(workspace, index_job)
        return EventOutcome(get_pipelinejob(workspace, job.uuid), event, index_job=index_job)
    error = None
    if event == "fail":
        error = str(data.get("error") or data.get("message") or "the job reported a failure")
    if event in INFO_EVENTS:
        fire_info(workspace, job.uuid, event, payload)
    else:
        store.fire(job.uuid, event, payload=payload, error=error, workspace=workspace)
    return EventOutcome(get_pipelinejob(workspace, job.uuid), event)


def fire_info(workspace: Workspace, job_uuid: str, event: str, payload: dict[str, Any]) -> int:
    """Record an info event (``update``, ``resource``, ``create``) if the job's state allows it:
    one transaction holding the job row, like ``jobs.store.fire``; returns its seq."""
    sources, _ = INFO_EVENTS[event]
    now = time.time()
    with workspace.write() as conn:
        row = job_queries.job(conn, job_uuid, for_update=True)
        if row is None:
            raise JobNotFound(f"no job {job_uuid}", {"job_id": job_uuid})
        if row.state not in sources:
            raise InvalidTransition(
                f"job {job_uuid}: cannot {event} a job that is {row.state}; {event} is allowed "
                f"from {', '.join(sorted(sources))}",
                {"event": event, "state": row.state, "job_id": job_uuid},
            )
        seq = job_queries.allocate_seqs(conn, job_uuid, 1, {"updated": now})
        assert seq is not None  # the row is held: it cannot have gone
        job_queries.insert_events(
            conn,
            [
                {
                    "job_id": job_uuid,
                    "seq": seq,
                    "at": now,
                    "type": "transition",
                    "event": event,
                    "from_state": row.state,
                    "to_state": row.state,
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
    return EventOutcome(get_pipelinejob(workspace, job.uuid), "reset", removed_files=removed)


def is_admin_event(event: Any) -> bool:
    return isinstance(event, str) and event in ADMIN_EVENTS
