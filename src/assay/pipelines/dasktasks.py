"""Pipeline tasks on a Dask cluster: the launcher ``execute`` uses for a ``dask`` environment.

Each task that runs is one ``client.submit`` of ``run_pipeline_task`` (a top-level function
found by import path on the workers) under the key ``assay-task-<task job id>``, with only
references: the task's module and class name, its parameter values (pickled; refused at plan
time when they cannot be), the run spec (input bundle uuids, bundle name, processing name) and
the catalog URL and home. The worker opens the catalog, reads its inputs as bundles (pulled
from the context's remote by content hash and verified when ``spec.pull``; the planner sets it
when the context has a remote), runs the task, commits its output bundle (pushed when the
context has a remote) and returns the output's uuid and content hash — nothing else travels.

The task's job (kind ``pipeline_task``) is run by the submitting process as for the other
launchers; a stop of that job, or of the pipeline job, is seen by the task on the worker
(``PipeTask.stop_requested()``; before storing its output) and ends it STOPPED, and a task not
yet started is cancelled. A worker that dies mid-task costs that task only: Dask re-runs it
elsewhere with the same spec, whose ``bundle_uuid`` is fixed before submission, so an output
an earlier attempt committed is found by that uuid and returned, not made twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid as uuid_module
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from assay.bundles import remotes
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.errors import WorkerNotReady
from assay.jobs import store
from assay.jobs.environments import Environment
from assay.jobs.executors.dask import (
    DaskExecutor,
    check_picklable,
    probe_modules,
    reconcile_dask,
)
from assay.jobs.executors.dask_task import worker_workspace
from assay.pipelines import jobglue
from assay.pipelines.graph import TaskGraph, TaskNode
from assay.pipelines.taskrun import CommitGate, TaskRunSpec, TaskStopped, run_task
from assay.pipelines.worker import _load_class
from assay.store.remote import RemoteStore

Launcher = Callable[[Workspace, TaskNode, TaskRunSpec, CommitGate], dict[str, Any]]


def task_key(job_id: str) -> str:
    return f"assay-task-{job_id}"


def check_graph(graph: TaskGraph, executor: DaskExecutor) -> None:
    """Before anything runs: every parameter can be pickled, every task module imports on the
    workers (``ParamNotPicklable`` / ``WorkerNotReady``, one line each)."""
    modules = []
    for node in graph:
        for name, value in node.task._assay_values.items():
            check_picklable(f"parameter {name!r} of {node.label}", value)
        modules.append(type(node.task).__module__)
    probe_modules(executor.client, modules, executor.options.address)


def remote_ready(url: str, options: dict[str, Any]) -> str | None:
    """Run on each worker by the submit-time probe: None, or why the remote cannot be used
    there (no credentials, no route)."""
    try:
        RemoteStore(url, options).probe()
    except Exception as exc:  # the probe reports whatever stops this worker using the remote
        return f"{type(exc).__name__}: {exc}"
    return None


def probe_remote(workspace: Workspace, context: str, executor: DaskExecutor) -> bool:
    """``WorkerNotReady`` when a worker cannot use ``context``'s remote; True when there is
    one (tasks then pull inputs and push outputs through it)."""
    bound = remotes.binding(workspace, context)
    if bound is None:
        return False
    answers = executor.client.run(remote_ready, bound.url, dict(bound.options))
    for worker, problem in sorted(answers.items()):
        if problem is not None:
            raise WorkerNotReady(
                f"worker {worker} of {executor.options.address} cannot use remote {bound.url} "
                f"(credentials?): {problem.splitlines()[0]}",
                {"worker": worker, "remote": bound.url},
            )
    return True


def dask_launcher(
    workspace: Workspace, environment: Environment, parent_job_id: str | None
) -> tuple[Launcher, DaskExecutor]:
    executor = DaskExecutor(environment, workspace)
    client = executor.client  # SchedulerUnreachable here, before any task job is made
    reconcile_dask(workspace, {environment.id: environment})  # lost jobs of an earlier run

    def launch(
        ws: Workspace, node: TaskNode, spec: TaskRunSpec, gate: CommitGate
    ) -> dict[str, Any]:
        if gate.closed:
            raise TaskStopped("the run was stopped before this task started")
        if spec.bundle_uuid is None:
            spec = dataclasses.replace(spec, bundle_uuid=str(uuid_module.uuid4()))
        job_id = jobglue.task_job_id(spec.context, spec.processing_name)
        cls = type(node.task)
        future = client.submit(
            run_pipeline_task,
            cls.__module__,
            cls.__qualname__,
            dict(node.task._assay_values),
            spec.as_dict(),
            [job_id, parent_job_id],
            executor.refs(),
            key=task_key(job_id),
            resources=executor.resources(),
            pure=False,
        )
        closer = id(future)
        gate.on_close(closer, lambda: client.cancel([future], force=True))
        try:
            result: dict[str, Any] = future.result()
        except CancelledError:
            raise TaskStopped("the run was stopped while this task was pending") from None
        finally:
            gate.on_close(closer, None)
            future.release()
        return result

    return launch, executor


def run_pipeline_task(
    module: str,
    qualname: str,
    values: dict[str, Any],
    spec_dict: dict[str, Any],
    watch_jobs: list[str | None],
    refs: dict[str, Any],
) -> dict[str, str]:
    """Worker side: run one task, store (and push) its output; ``{"uuid", "content_hash"}``."""
    ws = worker_workspace(refs)
    spec = TaskRunSpec.from_dict(spec_dict)
    if spec.bundle_uuid:
        with ws.read() as conn:
            done = queries.records_by_uuid(conn, [spec.bundle_uuid])
        if spec.bundle_uuid in done:  # an earlier attempt (its worker died afterwards) stored it
            record = done[spec.bundle_uuid]
            return {"uuid": record.uuid, "content_hash": record.content_hash}
    cls = _load_class({"module": module, "qualname": qualname})
    task = cls(**values)
    task._assay_bundle_name = spec.bundle_name
    watched = [job for job in watch_jobs if job]

    def stop_requested() -> bool:
        return any(store.stop_requested(job, workspace=ws) for job in watched)

    task._assay_stop = stop_requested

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        if stop_requested():
            raise TaskStopped("the task's job was asked to stop before its output was stored")
        yield

    record = run_task(ws, task, spec, guard)
    return {"uuid": record.uuid, "content_hash": record.content_hash}
