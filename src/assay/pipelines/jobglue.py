"""Pipeline tasks as jobs (kind ``pipeline_task``).

PRE-MERGE STAND-IN: runs the body directly with the same contract the job layer gives
(``run_inline``: never raises for the body's own failure; a stop ends STOPPED). Replaced by the
job layer once branch ``jobs`` lands.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace
from assay.pipelines.taskrun import TaskStopped

TASK_KIND = "pipeline_task"


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    state: str  # FINISHED, FAILED or STOPPED
    result: dict[str, Any] | None
    error: str | None
    traceback: str | None


def task_job_id(context: str, processing_name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"assay:{TASK_KIND}:{context}:{processing_name}"))


def prepare(workspace: Workspace) -> None:
    """Called once before a run schedules tasks."""


def run_task_job(
    workspace: Workspace,
    job_id: str,
    spec: dict[str, Any],
    body: Callable[[Callable[[], bool]], dict[str, Any]],
    *,
    environment: str = "local",
    parent_job_id: str | None = None,
) -> JobOutcome:
    """Run ``body(stop_requested)`` as job ``job_id``; the outcome says how it ended."""
    try:
        result = body(lambda: False)
    except TaskStopped as stopped:
        return JobOutcome(job_id, "STOPPED", None, str(stopped), None)
    except Exception as error:
        return JobOutcome(job_id, "FAILED", None, describe_error(error), traceback_of(error))
    return JobOutcome(job_id, "FINISHED", result, None, None)


def mark_stopped(workspace: Workspace, job_id: str) -> None:
    """Record that a job the run gave up waiting for was stopped."""


def describe_error(error: BaseException) -> str:
    return (
        str(error)
        if type(error).__name__ == "RemoteTaskError"
        else (f"{type(error).__name__}: {error}")
    )


def traceback_of(error: BaseException) -> str:
    remote = getattr(error, "remote_traceback", None)
    return remote or "".join(traceback.format_exception(error))
