"""Web UI pages for pipeline runs (with per-task state) and compute environments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError
from assay.jobs.env_status import environment_statuses
from assay.jobs.pages import page_jobs
from assay.pipelines.jobglue import PIPELINE_KIND
from assay.server.api_common import workspace_of
from assay.server.api_pipelines import run_detail
from assay.server.ui import User, error_page, render

router = APIRouter(prefix="/ui", include_in_schema=False)
Space = Annotated[Workspace, Depends(workspace_of)]


@router.get("/pipelines", response_class=HTMLResponse)
def runs_page(
    request: Request, user: User, workspace: Space, cursor: str | None = None
) -> HTMLResponse:
    try:
        found = page_jobs(kind=PIPELINE_KIND, limit=50, cursor=cursor or None, workspace=workspace)
    except AssayError as exc:
        return error_page(request, user, exc, 422)
    return render(request, "pipelines.html", user, page=found)


@router.get("/pipelines/{job_id}", response_class=HTMLResponse)
def run_page(request: Request, job_id: str, user: User, workspace: Space) -> HTMLResponse:
    try:
        run = run_detail(workspace, job_id)
    except AssayError as exc:
        return error_page(request, user, exc, 404)
    return render(request, "pipeline.html", user, run=run)


@router.get("/environments", response_class=HTMLResponse)
def environments_page(request: Request, user: User, workspace: Space) -> HTMLResponse:
    return render(request, "environments.html", user, environments=environment_statuses(workspace))
