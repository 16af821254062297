"""A whole pipeline as one job (kind ``pipeline``) in a named compute environment.

The job id is derived from the context, the root task and its parameters, so a second ``run``
of the same pipeline finds (and, once that ended, recreates) the same job, and two concurrent
runs of it are refused. Its task jobs name it as their parent. Environments whose executor is
``local`` run the pipeline in this process; with the ``dask`` executor this process orchestrates
and each task runs as one Dask task on the cluster (``pipelines.dasktasks``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from assay.bundles.workspace import Workspace
from assay.core.errors import (
    AssayError,
    EnvironmentNotFound,
    JobStopped,
    PipelineInterrupted,
)
from assay.jobs import ids, runner, store
from assay.jobs.environments import load_environments
from assay.pipelines.apply import ApplyRequest, apply_pipeline
from assay.pipelines.jobglue import PIPELINE_KIND


def check_environment(workspace: Workspace, name: str) -> None:
    environments = load_environments(workspace.settings)
    environment = environments.get(name)
    if environment is None:
        known = ", ".join(sorted(environments)) or "none"
        raise EnvironmentNotFound(f"no compute environment {name!r}; known: {known}")


def pipeline_job_id(request: ApplyRequest) -> str:
    root = request.task_class(**request.params)
    return ids.job_id(
        PIPELINE_KIND,
        request.context,
        root.task_identity(),
        root.param_json(),
        request.output_bundle,
    )


def run_pipeline_job(
    workspace: Workspace,
    request: ApplyRequest,
    owner: str = "",
    on_recorded: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``request`` as one job (recorded as ``owner``'s: the server passes the token's
    user); returns the job's id and state and the pipeline's result. ``on_recorded(job_id)``
    is called once the job's row exists, before it runs (the server answers then).

    A failing task raises ``TaskFailed`` (after the job is recorded FAILED); Ctrl-C raises
    ``PipelineInterrupted`` (the job is STOPPED)."""
    check_environment(workspace, request.environment)
    job_id = pipeline_job_id(request)
    spec = {
        "task": request.task_class.task_identity(),
        "params": request.task_class(**request.params).param_json(),
        "context": request.context,
        "output_bundle": request.output_bundle,
        "force": request.force,
        "force_all": request.force_all,
        "workers": request.workers,
        "executor": request.executor,
    }
    _, created = store.create_job(
        PIPELINE_KIND,
        job_id,
        spec=spec,
        environment=request.environment,
        owner=owner,
        workspace=workspace,
    )
    if not created:
        store.create_job(
            PIPELINE_KIND,
            job_id,
            spec=spec,
            environment=request.environment,
            owner=owner,
            force=True,
            workspace=workspace,
        )
    if on_recorded is not None:
        on_recorded(job_id)
    raised: list[AssayError] = []

    def body(ctx: runner.JobContext) -> dict[str, Any]:
        nested = dataclasses.replace(request, parent_job_id=job_id)
        try:
            report = apply_pipeline(workspace, nested)
        except PipelineInterrupted as interrupted:
            raised.append(interrupted)
            raise JobStopped(str(interrupted)) from None
        except AssayError as error:
            raised.append(error)
            if ctx.stop_requested():  # its tasks ended because the pipeline job was stopped
                raise JobStopped(f"the pipeline job was stopped: {error}") from None
            raise
        return {
            "success": report.success,
            "did_work": report.did_work,
            "output_bundle_uuid": report.root_uuid,
            "counts": report.counts(),
        }

    final = runner.run_inline(job_id, body, workspace=workspace)
    if raised:
        raise raised[0]
    result = dict(final.result or {})
    return {"job_id": job_id, "state": final.state, "environment": request.environment, **result}
