"""Managed pipeline jobs: the webhook runners report events to, and a job's state.

``POST /pipelinejobs/{uuid}/events?token=...`` with ``{"event": ..., "data": {...}, "id": ...}``
-> 200 ``{"uuid", "state", "event", "replayed"}`` (202 with ``index_job`` for ``index``: the
indexing runs after the answer). ``GET /pipelinejobs/{uuid}?token=...`` -> the job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from assay.bundles.workspace import Workspace
from assay.core.errors import PayloadTooLarge
from assay.pjobs import index_jobs, webhooks
from assay.pjobs.service import get_pipelinejob
from assay.pjobs.tokens import check_token
from assay.server.deps import token, workspace

router = APIRouter(prefix="/pipelinejobs", tags=["pipelinejobs"])


async def _read_body(request: Request) -> bytes:
    """The body, refused past ``MAX_BODY_BYTES`` without reading the rest."""
    limit = webhooks.MAX_BODY_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the event body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the event body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/{job_uuid}/events")
async def post_event(
    job_uuid: str,
    request: Request,
    background: BackgroundTasks,
    ws: Workspace = Depends(workspace),
    caller_token: str | None = Depends(token),
) -> JSONResponse:
    # The token first: a caller without a valid one learns nothing about the body or the job.
    check_token(job_uuid.lower(), caller_token, ws.settings, admin=False)
    body = await _read_body(request)
    document = webhooks.parse_body(body)
    outcome = await run_in_threadpool(
        webhooks.handle, ws, job_uuid, document, caller_token, run_index=False
    )
    answer: dict[str, Any] = {
        "uuid": outcome.uuid,
        "state": outcome.state,
        "event": outcome.event,
        "replayed": outcome.replayed,
    }
    if outcome.index_job is not None:
        answer["index_job"] = outcome.index_job
        background.add_task(index_jobs.run_index, ws, outcome.index_job)
        return JSONResponse(answer, status_code=202)
    return JSONResponse(answer)


@router.get("/{job_uuid}")
def get_job(
    job_uuid: str,
    ws: Workspace = Depends(workspace),
    caller_token: str | None = Depends(token),
) -> dict[str, Any]:
    check_token(job_uuid.lower(), caller_token, ws.settings, admin=False)
    return get_pipelinejob(ws, job_uuid.lower()).as_dict()
