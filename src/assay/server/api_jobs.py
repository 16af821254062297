"""``/api/v1/jobs``: list, detail, stop and events of jobs of every kind."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from assay.bundles.workspace import Workspace
from assay.jobs import store
from assay.jobs.pages import page_events, page_jobs
from assay.jobs.records import JobEvent, JobRecord
from assay.server.api_auth import Principal, scope
from assay.server.api_common import iso, page_json, workspace_of

router = APIRouter(tags=["jobs"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]
Space = Annotated[Workspace, Depends(workspace_of)]


def job_json(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.job_id,
        "kind": record.kind,
        "machine": record.machine,
        "state": record.state,
        "state_code": record.state_code,
        "terminal": record.terminal,
        "environment": record.environment,
        "owner": record.owner,
        "spec": record.spec,
        "result": record.result,
        "error": record.error,
        "created": iso(record.created),
        "updated": iso(record.updated),
        "started": iso(record.started),
        "finished": iso(record.finished),
        "last_seen": iso(record.last_seen),
        "stop_requested": record.stop_requested,
        "parent_job_id": record.parent_job_id,
    }


def event_json(event: JobEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "type": event.type,
        "event": event.event,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "payload": event.payload,
    }


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(
    _: Reader,
    workspace: Space,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    environment: Annotated[str | None, Query(max_length=128)] = None,
    owner: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    page = page_jobs(
        kind=kind,
        state=state,
        environment=environment,
        owner=owner,
        limit=limit,
        cursor=cursor,
        workspace=workspace,
    )
    return page_json([job_json(j) for j in page.items], page.next_cursor)


@router.get("/jobs/{job_id}", summary="One job")
def job_detail(job_id: str, _: Reader, workspace: Space) -> dict[str, Any]:
    return job_json(store.get_job(job_id, workspace=workspace))


@router.post("/jobs/{job_id}/stop", summary="Ask a job to stop")
def stop_job(job_id: str, _: Writer, workspace: Space) -> dict[str, Any]:
    return job_json(store.request_stop(job_id, workspace=workspace))


@router.get("/jobs/{job_id}/events", summary="A job's events in order (transitions, logs)")
def job_events(
    job_id: str,
    _: Reader,
    workspace: Space,
    type: Annotated[list[str] | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    full_id = store.get_job(job_id, workspace=workspace).job_id
    page = page_events(full_id, types=type, limit=limit, cursor=cursor, workspace=workspace)
    return page_json([event_json(e) for e in page.items], page.next_cursor)
