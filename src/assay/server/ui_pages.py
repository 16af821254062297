"""Web UI pages for pipeline runs (with per-task state), compute environments and questions."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError
from assay.jobs.env_status import environment_statuses
from assay.jobs.pages import page_jobs
from assay.pipelines.jobglue import PIPELINE_KIND
from assay.server.api_common import workspace_of
from assay.server.api_pipelines import run_detail
from assay.server.ui import PREVIEW_CHARS, User, error_page, render
from assay.services import events

router = APIRouter(prefix="/ui", include_in_schema=False)
Space = Annotated[Workspace, Depends(workspace_of)]
QUESTION_EVENTS = 500  # the newest events shown on a question's page


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


# -- questions ------------------------------------------------------------------------------
@router.get("/questions", response_class=HTMLResponse)
def questions_page(
    request: Request,
    user: User,
    workspace: Space,
    service: str | None = None,
    status: str | None = None,
) -> HTMLResponse:
    try:
        found = events.list_questions(
            service_id=service or None, status=status or None, limit=100, workspace=workspace
        )
    except AssayError as exc:
        return error_page(request, user, exc, 422)
    return render(
        request,
        "questions.html",
        user,
        questions=found,
        service=service or "",
        status=status or "",
        statuses=events.STATUSES,
    )


@router.get("/questions/{question_uuid}", response_class=HTMLResponse)
def question_page(
    request: Request, question_uuid: str, user: User, workspace: Space
) -> HTMLResponse:
    try:
        record = events.get_question(question_uuid, workspace=workspace)
        found = events.list_events(record.question_uuid, workspace=workspace)
    except AssayError as exc:
        return error_page(request, user, exc, 404)
    shown = found[-QUESTION_EVENTS:]
    return render(
        request,
        "question.html",
        user,
        q=record,
        final=record.status in events.FINAL_STATUSES,
        events=shown,
        events_cut=len(found) - len(shown),
        inputs=_json_text(record.input_values),
        outputs=_json_text(record.output_values),
    )


def _json_text(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "\n… (cut)"
