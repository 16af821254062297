"""Web UI pages for jobs: the list (refreshed by htmx), a job's page with its live log and
state (Server-Sent Events from the same stream the API serves), its state history and
result, and a stop button.

Stopping needs a token with ``write`` scope; the form posts to ``/ui/jobs/{id}/stop`` and is
protected from cross-site posts by the SameSite=Strict cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assay.auth import tokens
from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError
from assay.jobs import store
from assay.jobs.pages import page_jobs
from assay.server.api_common import workspace_of
from assay.server.api_stream import event_stream
from assay.server.ui import COOKIE, User, error_page, render

router = APIRouter(prefix="/ui", include_in_schema=False)
Space = Annotated[Workspace, Depends(workspace_of)]


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    user: User,
    workspace: Space,
    kind: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    found = page_jobs(
        kind=kind or None, state=state or None, limit=50, cursor=cursor or None, workspace=workspace
    )
    return render(request, "jobs.html", user, page=found, kind=kind or "", state=state or "")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, user: User, workspace: Space) -> HTMLResponse:
    try:
        job = store.get_job(job_id, workspace=workspace)
    except AssayError as exc:
        return error_page(request, user, exc, 404)
    history = store.list_events(job.job_id, types=["transition"], workspace=workspace)
    return render(
        request,
        "job.html",
        user,
        job=job,
        history=history,
        stopped=request.query_params.get("stop") == "requested",
    )


@router.get("/jobs/{job_id}/stream")
async def job_events(
    request: Request,
    job_id: str,
    user: User,
    workspace: Space,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    return await event_stream(request, workspace, job_id, last_event_id)


@router.post("/jobs/{job_id}/stop")
async def stop(request: Request, job_id: str, user: User, workspace: Space) -> Response:
    if request.app.state.auth:
        try:
            await run_in_threadpool(
                tokens.authenticate, request.cookies.get(COOKIE), "write", workspace=workspace
            )
        except AssayError as exc:
            return error_page(request, user, exc, 403)
    try:
        job = await run_in_threadpool(store.request_stop, job_id, workspace=workspace)
    except AssayError as exc:
        return error_page(request, user, exc, 409)
    return RedirectResponse(f"/ui/jobs/{job.job_id}?stop=requested", status_code=303)
