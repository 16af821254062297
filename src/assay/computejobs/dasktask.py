"""Compute jobs on a ``dask`` environment: staged here, run by a local executor on a worker.

The submitting process checks, records and stages the job as for a local environment (so the
working directory must be on a file system the workers share — one machine, NFS, a pod
volume); then one ``client.submit`` of ``run_compute_job`` (a top-level function; the job id,
argv, paths, environment variables and custom data are its only arguments) hands it to a
worker, where the job layer's ``LocalExecutor`` runs it exactly as it would here (QUEUED ->
PROVISIONING -> RUNNING -> PUBLISHING -> FINISHED, limits, logs, stop via the catalog) and
publishes its output bundle into the shared catalog.

Not offered: compute-access datasets (their bubblewrap sandbox is local-only, refused at
start), and re-running a compute job whose worker died (its partial outputs are in the shared
working directory): such a job ends FAILED, whatever ``requeue`` says.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidTransition
from assay.jobs import store
from assay.jobs.environments import Environment
from assay.jobs.executors.dask_task import worker_workspace
from assay.jobs.executors.local import LocalExecutor


def run_compute_job(
    job_id: str,
    argv: list[str],
    workdir: str,
    env: dict[str, str],
    inputs: dict[str, str],
    custom_data: Any,
    environment: Environment,
    refs: dict[str, Any],
    publisher: Callable[[Workspace, str, int, Path], dict[str, Any] | None],
) -> str:
    """Worker side: run compute job ``job_id`` with a local executor; its final state.
    ``publisher`` is ``lifecycle.publish_on_exit`` (passed, not imported: no cycle)."""
    ws = worker_workspace(refs)
    record = store.get_job(job_id, workspace=ws)
    if record.terminal:
        return record.state
    if record.state != "CREATED":
        try:
            store.fire(
                job_id,
                "fail",
                error="worker lost: the worker running this compute job died",
                workspace=ws,
            )
        except InvalidTransition:
            return store.get_job(job_id, workspace=ws).state  # ended meanwhile: that end stands
        return "FAILED"
    local = dataclasses.replace(environment, executor="local", extra={})
    on_exit = functools.partial(publisher, ws)
    executor = LocalExecutor(local, ws, on_exit=on_exit, reconcile_on_start=False)
    try:
        executor.submit(
            job_id,
            argv,
            workdir=Path(workdir),
            env=env,
            inputs={key: Path(path) for key, path in inputs.items()},
            custom_data=custom_data,
        )
        return executor.wait(job_id).state
    finally:
        executor.close()
