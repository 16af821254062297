"""Pipeline tasks as jobs (kind ``pipeline_task``) through the job layer.

A task that runs is a job whose id is derived from its context and processing name
(``assay.jobs.ids.job_id``), so the same work always has the same job: a re-run of work whose
job ended (FINISHED with its bundle since removed, FAILED, STOPPED, or forced) recreates that
job; work still active under a live supervisor is refused, and a job whose supervisor died
(``assay.jobs.reconcile``: its process is gone, or its heartbeats stopped) is failed first,
then recreated. A cached task never reaches the job layer (its
bundle is found by processing name), so a no-op re-run writes nothing.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidTransition, JobStopped
from assay.jobs import ids, runner, store
from assay.jobs.reconcile import reconcile, reconcile_job
from assay.pipelines.taskrun import TaskStopped

TASK_KIND = "pipeline_task"
PIPELINE_KIND = "pipeline"


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    state: str  # FINISHED, FAILED or STOPPED
    result: dict[str, Any] | None
    error: str | None
    traceback: str | None


def task_job_id(context: str, processing_name: str) -> str:
    return ids.job_id(TASK_KIND, context, processing_name)


def prepare(workspace: Workspace) -> None:
    """Called once before a run schedules its first task job: jobs whose supervisor died
    are ended (the job layer's reconciliation), as anything that schedules does."""
    reconcile(workspace)


def _claim(
    workspace: Workspace,
    job_id: str,
    spec: dict[str, Any],
    environment: str,
    parent_job_id: str | None,
) -> None:
    record, created = store.create_job(
        TASK_KIND,
        job_id,
        spec=spec,
        environment=environment,
        owner=str(spec.get("owner") or ""),
        parent_job_id=parent_job_id,
        workspace=workspace,
    )
    if created:
        return
    if not record.terminal and reconcile_job(job_id, workspace) is None:
        raise InvalidTransition(
            f"task {spec.get('task', job_id)} is already running as job {job_id} "
            f"(pid {record.pid} on {record.host}); wait for it or stop it "
            f"('assay jobs stop {job_id}')",
            {"job_id": job_id, "state": record.state},
        )
    store.create_job(
        TASK_KIND,
        job_id,
        spec=spec,
        environment=environment,
        owner=str(spec.get("owner") or ""),
        parent_job_id=parent_job_id,
        force=True,
        workspace=workspace,
    )


def run_task_job(
    workspace: Workspace,
    job_id: str,
    spec: dict[str, Any],
    body: Callable[[Callable[[], bool]], dict[str, Any]],
    *,
    environment: str = "local",
    parent_job_id: str | None = None,
) -> JobOutcome:
    """Run ``body(stop_requested)`` as job ``job_id`` with ``runner.run_inline``."""
    _claim(workspace, job_id, spec, environment, parent_job_id)
    failure: dict[str, str] = {}

    def fn(ctx: runner.JobContext) -> dict[str, Any]:
        try:
            return body(ctx.stop_requested)
        except TaskStopped as stopped:
            raise JobStopped(str(stopped)) from None
        except Exception as error:
            failure["error"] = describe_error(error)
            failure["traceback"] = traceback_of(error)
            raise

    final = runner.run_inline(job_id, fn, workspace=workspace)
    return JobOutcome(
        job_id,
        final.state,
        final.result,
        failure.get("error", final.error),
        failure.get("traceback"),
    )


def mark_stopped(workspace: Workspace, job_id: str) -> None:
    """Record STOPPED for a task the run gave up waiting for (its thread never stores)."""
    try:
        store.fire(job_id, "stop", payload={"reason": "interrupted"}, workspace=workspace)
    except InvalidTransition:
        return  # it ended meanwhile: the state it reached stands


def describe_error(error: BaseException) -> str:
    if type(error).__name__ == "RemoteTaskError":
        return str(error)
    return f"{type(error).__name__}: {error}"


def traceback_of(error: BaseException) -> str:
    remote = getattr(error, "remote_traceback", None)
    return remote or "".join(traceback.format_exception(error))
