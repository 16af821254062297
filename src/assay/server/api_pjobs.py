"""``/api/v1/pipelinejobs``: read routes for managed pipeline jobs (the SD2E-shaped jobs that
report through webhooks under ``/pipelinejobs``): list, detail, events. Bearer tokens with the
``read`` scope, like the rest of ``/api/v1`` (the webhook routes keep their own tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from assay.bundles.workspace import Workspace
from assay.jobs.pages import page_events
from assay.pjobs.service import get_pipelinejob, list_pipelinejobs
from assay.server.api_auth import Principal, scope
from assay.server.api_common import page_json, workspace_of
from assay.server.api_jobs import event_json

router = APIRouter(tags=["pipelinejobs"])
Reader = Annotated[Principal, Depends(scope("read"))]
Space = Annotated[Workspace, Depends(workspace_of)]


@router.get("/pipelinejobs", summary="Managed pipeline jobs, newest first")
def list_jobs(
    _: Reader,
    workspace: Space,
    pipeline: Annotated[str | None, Query(max_length=256)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    found = list_pipelinejobs(workspace, pipeline=pipeline, state=state, limit=limit)
    return page_json([job.as_dict() for job in found], None)


@router.get("/pipelinejobs/{job_uuid}", summary="One managed pipeline job")
def detail(job_uuid: str, _: Reader, workspace: Space) -> dict[str, Any]:
    return get_pipelinejob(workspace, job_uuid.lower()).as_dict()


@router.get("/pipelinejobs/{job_uuid}/events", summary="Its events in order")
def events(
    job_uuid: str,
    _: Reader,
    workspace: Space,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    job = get_pipelinejob(workspace, job_uuid.lower())
    page = page_events(job.uuid, limit=limit, cursor=cursor, workspace=workspace)
    return page_json([event_json(e) for e in page.items], page.next_cursor)
