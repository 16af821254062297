"""``apply``: plan a pipeline from its root task, then run what is not cached.

``apply_pipeline`` is the one entry the API and the CLI use; ``plan_pipeline`` is the same
planning without running (``--dry-run``). Both refuse bad input before anything runs: unknown
or ill-typed parameters, a dependency cycle, a missing external bundle, two tasks writing one
bundle name, and (for the subprocess executor) a parameter with no JSON form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from assay.bundles.codeversion import code_version
from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidInput, InvalidPipeline, ParamNotSerializable
from assay.core.names import bundle_tags, check_bundle_name
from assay.jobs.environments import load_environments
from assay.pipelines import planner
from assay.pipelines.execute import Progress, RunReport, RunSettings, execute
from assay.pipelines.graph import TaskGraph, build_graph
from assay.pipelines.params import portable_json
from assay.pipelines.task import TaskBase

EXECUTORS = ("thread", "subprocess")


@dataclass(frozen=True)
class ApplyRequest:
    context: str
    task_class: type[TaskBase]
    params: dict[str, Any]
    output_bundle: str | None = None  # None or "-": the root task's own bundle name
    input_tags: dict[str, Any] | None = None
    output_tags: dict[str, Any] | None = None
    force: bool = False
    force_all: bool = False
    output_bundle_uuid: str | None = None
    workers: int = 1
    executor: str = "thread"
    environment: str = "local"
    parent_job_id: str | None = None
    grace_s: float = 5.0
    incremental_push: bool = False
    incremental_pull: bool = False
    #: Who the run's bundles and task jobs are recorded for (None: this process's user); the
    #: server passes the token's user.
    owner: str | None = None


def _graph(workspace: Workspace, request: ApplyRequest) -> tuple[TaskGraph, int]:
    if not (isinstance(request.task_class, type) and issubclass(request.task_class, TaskBase)):
        raise InvalidPipeline(f"apply needs a PipeTask subclass, got {request.task_class!r}")
    if request.executor not in EXECUTORS:
        raise InvalidInput(
            f"unknown executor {request.executor!r}: use one of {', '.join(EXECUTORS)}"
        )
    if request.workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {request.workers}")
    scope = planner.CatalogScope(workspace, request.context, request.input_tags)
    root = request.task_class(**dict(request.params or {}))
    output_bundle = request.output_bundle
    name = check_bundle_name(output_bundle) if output_bundle not in (None, "-") else None
    graph = build_graph(root, scope, name)
    if request.executor == "subprocess":
        _check_portable(graph)
    return graph, scope.ctx_id


def _check_portable(graph: TaskGraph) -> None:
    for node in graph:
        for name, value in node.task._assay_values.items():
            if value is not None and portable_json(value) is None:
                raise ParamNotSerializable(
                    f"parameter {name!r} of {node.label} holds a {type(value).__name__}, which "
                    "cannot be sent to the subprocess executor (it needs JSON values); use "
                    "executor='thread' or pass a JSON value"
                )


def plan_pipeline(workspace: Workspace, request: ApplyRequest) -> list[planner.Decision]:
    """What would run and why, in dependency order; runs nothing, writes nothing."""
    graph, ctx_id = _graph(workspace, request)
    return planner.plan(workspace, ctx_id, graph, request.force, request.force_all)


def apply_pipeline(
    workspace: Workspace,
    request: ApplyRequest,
    progress: Callable[[Progress], None] | None = None,
) -> RunReport:
    """Run the pipeline; returns the report, or raises ``TaskFailed`` /
    ``PipelineInterrupted`` (whose ``details["result"]`` is Disdat's result dict)."""
    graph, ctx_id = _graph(workspace, request)
    launcher: Any = None
    workers, push, pull = request.workers, request.incremental_push, request.incremental_pull
    if request.executor == "subprocess":
        from assay.pipelines.subproc import launch

        launcher = launch
    environment = load_environments(workspace.settings).get(request.environment)
    if environment is not None and environment.executor == "dask":
        from assay.pipelines.dasktasks import check_graph, dask_launcher, probe_remote

        launcher, dask_executor = dask_launcher(workspace, environment, request.parent_job_id)
        check_graph(graph, dask_executor)
        # Tasks wait on the cluster, not on this machine: as many in flight as the
        # environment allows. Through a remote, inputs are pulled and outputs pushed.
        workers = max(workers, environment.max_jobs)
        if probe_remote(workspace, request.context, dask_executor):
            push = pull = True
    settings = RunSettings(
        context=request.context,
        ctx_id=ctx_id,
        force=request.force,
        force_all=request.force_all,
        workers=workers,
        output_tags=bundle_tags(request.output_tags or {}),
        output_bundle_uuid=request.output_bundle_uuid,
        code_version=code_version(_module_dir(request.task_class)),
        environment=request.environment,
        parent_job_id=request.parent_job_id,
        grace_s=request.grace_s,
        push=push,
        pull=pull,
        progress=progress,
        launcher=launcher,
        owner=request.owner,
    )
    return execute(workspace, graph, settings)


def _module_dir(cls: type) -> str | None:
    """The folder of the task's module: its git repository is the one that matters."""
    import os
    import sys

    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else None


def parse_cli_params(task_class: type[TaskBase], pairs: Mapping[str, str]) -> dict[str, Any]:
    """``--param k=v`` texts as values, read by each parameter's ``parse``."""
    from assay.core.errors import InvalidParameter

    declared = task_class._assay_parameters
    values: dict[str, Any] = {}
    for name, text in pairs.items():
        parameter = declared.get(name)
        if parameter is None:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidParameter(
                f"{task_class.task_family()} has no parameter {name!r} (its parameters: {known})"
            )
        values[name] = parameter.parse(text, task_class.task_family())
    return values
