"""``/api/v1/pipelines``: plan (dry run) and apply a pipeline; read pipeline runs and their
tasks.

A pipeline is named ``module:Task`` and **imported by the server process**: the module must be
importable there (installed in the server's environment, or on its ``PYTHONPATH``, or in the
directory the server was started from). Nothing is uploaded: a client names code the server
already has. Importing runs a module's top-level code, so the server imports only modules
under the packages listed in ``ASSAY_SERVER_PIPELINE_MODULES`` (comma-separated top-level
names, e.g. ``mypipes,lab_tasks``); unset, pipelines over HTTP are off (422
``task_import_failed`` saying how to turn them on). Parameters are JSON values; a JSON string is read the way ``--param k=v`` reads
its text (so ``"3"`` suits an ``IntParameter``).

``apply`` runs the pipeline as one job of kind ``pipeline`` (``assay.api.run``'s job, recorded
as the token's user) on a server thread and answers 202 with the job's id at once; every check
that needs no run (import, parameters, cycles, missing inputs, the environment) happens first
and answers 4xx with nothing started. The run's per-task jobs name it as their parent:
``GET /pipelines/{job_id}`` shows them with their state.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError, InvalidInput, JobNotFound, TaskImportFailed
from assay.core.names import check_context_name
from assay.jobs import store as job_store
from assay.jobs.pages import page_jobs
from assay.pipelines.apply import ApplyRequest, parse_cli_params, plan_pipeline
from assay.pipelines.jobglue import PIPELINE_KIND, TASK_KIND
from assay.pipelines.loading import load_task_class
from assay.pipelines.pipelinejob import check_environment, pipeline_job_id, run_pipeline_job
from assay.server.api_auth import Principal, scope
from assay.server.api_common import page_json, workspace_of
from assay.server.api_jobs import job_json

log = logging.getLogger(__name__)
router = APIRouter(tags=["pipelines"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]
Space = Annotated[Workspace, Depends(workspace_of)]


class PipelineBody(BaseModel):
    context: str = Field(min_length=1, max_length=128)
    task: str = Field(min_length=3, max_length=512, description="module:Task")
    params: dict[str, Any] = Field(default_factory=dict)
    output_bundle: str = Field(default="-", min_length=1, max_length=256)
    input_tags: dict[str, str] | None = None
    output_tags: dict[str, str] | None = None
    force: bool = False
    force_all: bool = False
    workers: int = Field(default=1, ge=1, le=64)
    executor: str = Field(default="thread", max_length=32)
    environment: str = Field(default="local", min_length=1, max_length=128)


MODULES_VARIABLE = "ASSAY_SERVER_PIPELINE_MODULES"


def check_module_allowed(task: str) -> None:
    """Refuse a task whose module is outside the server's allowed packages (before importing:
    importing runs the module's code)."""
    allowed = {p.strip() for p in os.environ.get(MODULES_VARIABLE, "").split(",") if p.strip()}
    module = task.partition(":")[0] if ":" in task else task.rpartition(".")[0]
    if not allowed:
        raise TaskImportFailed(
            f"pipelines over HTTP are off on this server: start it with {MODULES_VARIABLE} "
            "listing the packages whose tasks it may import (e.g. mypipes,lab_tasks)",
            {"field": "task"},
        )
    if module.split(".")[0] not in allowed:
        raise TaskImportFailed(
            f"module {module!r} is not under the packages this server may import "
            f"({', '.join(sorted(allowed))}; {MODULES_VARIABLE})",
            {"field": "task"},
        )


def request_of(body: PipelineBody, owner: str) -> ApplyRequest:
    if body.force and body.force_all:
        raise InvalidInput("give force or force_all, not both", {"field": "force_all"})
    check_context_name(body.context)
    check_module_allowed(body.task)
    task_class = load_task_class(body.task)
    texts = {k: v for k, v in body.params.items() if isinstance(v, str)}
    params = {k: v for k, v in body.params.items() if not isinstance(v, str)}
    params.update(parse_cli_params(task_class, texts))
    return ApplyRequest(
        context=body.context,
        task_class=task_class,
        params=params,
        output_bundle=body.output_bundle,
        input_tags=body.input_tags,
        output_tags=body.output_tags,
        force=body.force,
        force_all=body.force_all,
        workers=body.workers,
        executor=body.executor,
        environment=body.environment,
        owner=owner,
    )


@router.post("/pipelines/plan", summary="What apply would run and why (runs nothing)")
def plan(body: PipelineBody, principal: Reader, workspace: Space) -> dict[str, Any]:
    decisions = plan_pipeline(workspace, request_of(body, principal.owner))
    rows = [
        {
            "task": d.node.label,
            "bundle_name": d.node.bundle_name,
            "action": d.action,
            "reason": d.reason,
            "processing_name": d.processing_name,
            "cached_uuid": d.output.uuid if d.output else None,
        }
        for d in decisions
    ]
    return {"plan": rows, "to_run": sum(r["action"] == "run" for r in rows)}


@router.post("/pipelines/apply", status_code=202, summary="Run a pipeline as a job")
def apply(body: PipelineBody, principal: Writer, workspace: Space) -> dict[str, Any]:
    request = request_of(body, principal.owner)
    check_environment(workspace, request.environment)
    plan_pipeline(workspace, request)  # every planning error before anything starts
    recorded = threading.Event()
    before_run: list[AssayError] = []  # an error raised before the job row exists

    def run() -> None:
        try:
            run_pipeline_job(
                workspace, request, owner=principal.owner, on_recorded=lambda _: recorded.set()
            )
        except AssayError as error:
            if not recorded.is_set():
                before_run.append(error)  # e.g. the same run is active: answered as 409
            else:  # recorded on the job (FAILED/STOPPED) by the job layer
                log.info("pipeline run %s ended: %s: %s", job_id, error.code, error.message)
        finally:
            recorded.set()

    job_id = pipeline_job_id(request)
    threading.Thread(target=run, name=f"pipeline-{job_id[:12]}", daemon=True).start()
    recorded.wait()
    if before_run:
        raise before_run[0]
    return {"job_id": job_id, "status_url": f"/api/v1/pipelines/{job_id}"}


@router.get("/pipelines", summary="Pipeline runs (jobs of kind pipeline), newest first")
def list_runs(
    _: Reader,
    workspace: Space,
    state: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    page = page_jobs(
        kind=PIPELINE_KIND, state=state, limit=limit, cursor=cursor, workspace=workspace
    )
    return page_json([job_json(j) for j in page.items], page.next_cursor)


def run_detail(workspace: Workspace, job_id: str) -> dict[str, Any]:
    """A pipeline run with its task jobs (oldest first) and a count per task state."""
    record = job_store.get_job(job_id, workspace=workspace)
    if record.kind != PIPELINE_KIND:
        raise JobNotFound(f"job {record.job_id} is a {record.kind}, not a pipeline run")
    tasks = job_store.list_jobs(
        kind=TASK_KIND, parent_job_id=record.job_id, limit=None, workspace=workspace
    )
    tasks.sort(key=lambda t: (t.created, t.job_id))
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    return {**job_json(record), "tasks": [job_json(t) for t in tasks], "task_states": counts}


@router.get("/pipelines/{job_id}", summary="A pipeline run with the state of each task")
def run(job_id: str, _: Reader, workspace: Space) -> dict[str, Any]:
    return run_detail(workspace, job_id)
