"""The Disdat-shaped Python API: versioned bundles in named contexts.

Functions take the context explicitly (``local_context``), as ``disdat.api`` does; the CLI's
current context is separate state that ``switch`` changes and ``current_context`` reads.
Remotes: ``remote`` binds a context to object storage, ``push``/``pull`` move committed
bundles, ``localize``/``delocalize`` bring file data in or free it (see docs/remotes.md).
Pipelines: ``apply`` runs a ``PipeTask`` pipeline here, ``run`` runs one as a job in a compute
environment (see docs/pipelines.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from assay.bundle import Bundle, Lineage
from assay.bundles import lineage as lineage_module
from assay.bundles import maintenance, operations, remotes
from assay.bundles.codeversion import code_version
from assay.bundles.ingest import walk_directory
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import ContextNotFound, PathNotFound
from assay.core.names import check_context_name
from assay.core.records import ContextInfo, GcReport, LineageNode, VerifyProblem
from assay.core.remote_records import (
    DelocalizeReport,
    LocalizeReport,
    PullReport,
    PushReport,
    RemoteRemoval,
)

__all__ = [
    "Bundle",
    "ContextInfo",
    "GcReport",
    "Lineage",
    "LineageNode",
    "VerifyProblem",
    "add",
    "cat",
    "commit",
    "context",
    "current_context",
    "delete_context",
    "delocalize",
    "gc",
    "get",
    "lineage",
    "lineage_prov",
    "localize",
    "ls_contexts",
    "pull",
    "push",
    "remote",
    "rm",
    "rm_remote",
    "search",
    "switch",
    "verify",
]


def _workspace() -> Workspace:
    return open_workspace()


def _bundle(record: Any, workspace: Workspace) -> Bundle:
    return Bundle._from_record(record, workspace)


# -- contexts -------------------------------------------------------------------------------
def context(context_name: str) -> int:
    """Create a context. Returns 0 when created, 1 when it already existed (as Disdat)."""
    return 0 if operations.create_context(_workspace(), context_name) else 1


def current_context() -> str | None:
    """The context the CLI works in (set by ``switch``), or None when none is set."""
    path = _workspace().settings.current_context_file
    try:
        name = path.read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def switch(context_name: str) -> None:
    """Make ``context_name`` the current context (shared with the CLI)."""
    workspace = _workspace()
    check_context_name(context_name)
    if context_name not in {c.name for c in operations.list_contexts(workspace)}:
        raise ContextNotFound(
            f"no context named {context_name!r}; create it with 'assay context create {context_name}'"
        )
    path = workspace.settings.current_context_file
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(context_name + "\n")
    os.replace(temp, path)


def ls_contexts() -> list[ContextInfo]:
    """Every context with its bundle counts and its remote (``<remote context>@<url>``)."""
    return operations.list_contexts(_workspace())


def delete_context(context_name: str, force: bool = False) -> None:
    """Delete a context and its bundles; refuses while committed bundles are unpushed."""
    workspace = _workspace()
    operations.delete_context(workspace, context_name, force=force)
    if current_context() == context_name:
        workspace.settings.current_context_file.unlink(missing_ok=True)


# -- making bundles -------------------------------------------------------------------------
def add(
    local_context: str,
    bundle_name: str,
    path: str | os.PathLike[str],
    tags: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Bundle:
    """Make a bundle from a file (presents as one path) or a directory (a list of paths).

    Files keep their names relative to the directory. When the newest version of
    ``bundle_name`` already has exactly this content and these tags, it is returned and no new
    version is made (re-adding unchanged data is a no-op).
    """
    source = Path(path).absolute()
    if not source.exists():
        raise PathNotFound(f"path does not exist: {source}")
    files = list(walk_directory(str(source))) if source.is_dir() else None
    workspace = _workspace()
    record = operations.create_bundle(
        workspace,
        local_context,
        bundle_name,
        source,
        files=files,
        tags=tags,
        code_version=code_version(),
        reuse_identical=True,
        progress=progress,
    )
    return _bundle(record, workspace)


# -- finding and reading --------------------------------------------------------------------
def get(
    local_context: str,
    bundle_name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Bundle | None:
    """The newest bundle named ``bundle_name`` (with ``tags``), or by ``uuid``; else None."""
    workspace = _workspace()
    record = operations.get(workspace, local_context, bundle_name, uuid, tags)
    return _bundle(record, workspace) if record is not None else None


def cat(local_context: str, bundle_name: str | None = None, uuid: str | None = None) -> Any:
    """The data of the newest bundle named ``bundle_name`` (or ``uuid``), as it was saved."""
    workspace = _workspace()
    record = operations.require(workspace, local_context, bundle_name, uuid)
    return operations.load_data(workspace, record)


def search(
    local_context: str,
    search_name: str | None = None,
    search_tags: Mapping[str, Any] | None = None,
    is_committed: bool | None = None,
    before: Any = None,
    after: Any = None,
) -> list[Bundle]:
    """Bundles matching every condition, newest first.

    ``search_name`` may hold ``*`` and ``?`` wildcards; ``before``/``after`` take
    ``YYYY-MM-DD[THH:MM:SS]`` or Disdat's ``MM-DD-YYYY[ HH:MM:SS]`` (local time) or a datetime.
    """
    workspace = _workspace()
    records = operations.search(
        workspace, local_context, search_name, search_tags, is_committed, before, after
    )
    return [_bundle(record, workspace) for record in records]


def commit(
    local_context: str,
    bundle_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    uuid: str | None = None,
) -> None:
    """Commit the newest bundle named ``bundle_name`` (or ``uuid``): kept until removed."""
    operations.commit(_workspace(), local_context, bundle_name, tags, uuid)


def rm(
    local_context: str,
    bundle_name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
    rm_all: bool = False,
    rm_old_only: bool = False,
    force: bool = False,
) -> list[str]:
    """Remove the newest version (default), all versions, or all but the newest.

    Refuses when other bundles depend on a removed one, unless ``force``. Returns the removed
    uuids. Their blobs are freed by ``gc``.
    """
    removed = operations.remove(
        _workspace(), local_context, bundle_name, uuid, tags, rm_all, rm_old_only, force
    )
    return [record.uuid for record in removed]


def lineage(
    local_context: str,
    uuid: str,
    max_depth: int | None = None,
    downstream: bool = False,
) -> list[LineageNode]:
    """Breadth-first lineage from bundle ``uuid`` (depth 0): upstream, or downstream."""
    workspace = _workspace()
    start = operations.resolve(workspace, local_context, uuid)
    return lineage_module.walk(workspace, start, max_depth, downstream)


def lineage_prov(
    local_context: str,
    uuid: str,
    max_depth: int | None = None,
    downstream: bool = False,
) -> dict[str, Any]:
    """The same walk as ``lineage``, as a W3C PROV-JSON document."""
    return lineage_module.to_prov_json(lineage(local_context, uuid, max_depth, downstream))


# -- integrity ------------------------------------------------------------------------------
def verify(
    local_context: str | None = None,
    bundle_name: str | None = None,
    uuid: str | None = None,
) -> list[VerifyProblem]:
    """Re-hash the blobs of one bundle (name or uuid), one context, or everything (no args)."""
    workspace = _workspace()
    if bundle_name is not None or uuid is not None:
        if local_context is None:
            raise ContextNotFound("give the context of the bundle to verify")
        record = operations.require(workspace, local_context, bundle_name, uuid)
        return maintenance.verify(workspace, [record.uuid])
    if local_context is not None:
        records = operations.search(workspace, local_context)
        return maintenance.verify(workspace, [r.uuid for r in records])
    return maintenance.verify(workspace, None)


def gc(grace_seconds: float = maintenance.DEFAULT_GC_GRACE_SECONDS) -> GcReport:
    """Remove blobs no bundle references (older than ``grace_seconds``) and stale temp files."""
    return maintenance.gc(_workspace(), grace_seconds)


# -- remotes --------------------------------------------------------------------------------
def remote(
    local_context: str,
    remote_context: str,
    remote_url: str,
    force: bool = False,
    endpoint_url: str | None = None,
) -> None:
    """Bind ``local_context`` to ``remote_context`` at ``remote_url`` (``s3://bucket/prefix``,
    ``file:///path``, or any installed fsspec protocol). The remote is checked first. A
    context with a different remote needs ``force``. Credentials, region and endpoint come
    from the usual AWS environment; ``endpoint_url`` is stored with the binding (no secrets)."""
    remotes.bind(_workspace(), local_context, remote_context, remote_url, force, endpoint_url)


def push(
    local_context: str,
    bundle_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    uuid: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PushReport:
    """Push committed bundles to the context's remote: the newest version of ``bundle_name``,
    the bundle ``uuid``, or (neither) every committed bundle with ``tags``. An uncommitted
    bundle named explicitly is refused (``NotCommitted``)."""
    return remotes.push(_workspace(), local_context, bundle_name, tags, uuid, progress)


def pull(
    local_context: str,
    bundle_name: str | None = None,
    uuid: str | None = None,
    localize: bool = False,
    tags: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    """Pull bundles from the context's remote (every version of ``bundle_name``, one ``uuid``,
    those with ``tags``, or all): metadata only unless ``localize``."""
    return remotes.pull(_workspace(), local_context, bundle_name, uuid, tags, localize, progress)


def localize(
    local_context: str,
    bundle_name: str | None = None,
    uuid: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LocalizeReport:
    """Download the file data of a pulled bundle (verified by hash) into the local store."""
    return remotes.localize_bundle(_workspace(), local_context, bundle_name, uuid, progress)


def delocalize(
    local_context: str, bundle_name: str | None = None, uuid: str | None = None
) -> DelocalizeReport:
    """Free the local file data of a bundle that is safely on the context's remote."""
    return remotes.delocalize_bundle(_workspace(), local_context, bundle_name, uuid)


def rm_remote(
    local_context: str,
    bundle_name: str | None = None,
    uuid: str | None = None,
    rm_all: bool = False,
    force: bool = False,
) -> RemoteRemoval:
    """Remove from the remote (only) the newest version of ``bundle_name``, every version
    (``rm_all``), or the bundle ``uuid``; blobs another remote record uses are kept. Refuses,
    unless ``force``, to remove the only copy of a bundle that is here but not localized."""
    return remotes.remove_remote(_workspace(), local_context, bundle_name, uuid, rm_all, force)


# -- pipelines (docs/pipelines.md) ----------------------------------------------------------
__all__ += ["apply", "run"]


def _task_class(transform: Any) -> Any:
    if isinstance(transform, str):  # Disdat accepted "pkg.module.Class" (deprecated there)
        from assay.pipelines.loading import load_task_class

        return load_task_class(transform)
    return transform


def apply(
    local_context: str,
    transform: Any,
    output_bundle: str = "-",
    input_tags: Mapping[str, Any] | None = None,
    output_tags: Mapping[str, Any] | None = None,
    force: bool = False,
    force_all: bool = False,
    params: Mapping[str, Any] | None = None,
    output_bundle_uuid: str | None = None,
    central_scheduler: bool = False,
    workers: int = 1,
    incremental_push: bool = False,
    incremental_pull: bool = False,
    *,
    executor: str = "thread",
    stop_grace_s: float = 5.0,
) -> dict[str, bool]:
    """Run pipeline ``transform`` (a ``PipeTask`` class) in ``local_context``.

    Tasks whose output is cached (same class, params, code and input content) are not re-run;
    ``force`` re-runs the root task, ``force_all`` every task. The root's bundle is named
    ``output_bundle`` (``"-"``: its class name or ``set_bundle_name``). ``workers`` tasks run at
    once, on threads (``executor="thread"``) or in subprocesses (``"subprocess"``).
    ``incremental_push`` commits and pushes each task's bundle to the context's remote as it is
    made; ``incremental_pull`` localizes non-local inputs first. ``central_scheduler`` is
    accepted for Disdat compatibility and ignored (Assay schedules itself).

    Returns ``{"success": True, "did_work": bool}``. A failing task raises ``TaskFailed``
    (naming it, with its traceback in ``details``; finished outputs stay cached); Ctrl-C
    raises ``PipelineInterrupted``. Both carry ``details["result"]`` with ``success`` False.
    """
    from assay.pipelines.apply import ApplyRequest, apply_pipeline

    request = ApplyRequest(
        context=local_context,
        task_class=_task_class(transform),
        params=dict(params or {}),
        output_bundle=output_bundle,
        input_tags=dict(input_tags or {}),
        output_tags=dict(output_tags or {}),
        force=force,
        force_all=force_all,
        output_bundle_uuid=output_bundle_uuid,
        workers=workers,
        executor=executor,
        incremental_push=incremental_push,
        incremental_pull=incremental_pull,
        grace_s=stop_grace_s,
    )
    report = apply_pipeline(_workspace(), request)
    return {"success": report.success, "did_work": report.did_work}


def run(
    local_context: str,
    pipe_cls: Any,
    pipeline_args: Mapping[str, Any] | None = None,
    output_bundle: str = "-",
    input_tags: Mapping[str, Any] | None = None,
    output_tags: Mapping[str, Any] | None = None,
    force: bool = False,
    force_all: bool = False,
    workers: int = 1,
    compute_environment: str = "local",
    *,
    executor: str = "thread",
) -> dict[str, Any]:
    """Run a whole pipeline as one job (kind ``pipeline``) in ``compute_environment``.

    Disdat's ``run`` ran a dockerized pipeline locally or on AWS Batch; here the pipeline runs
    in a named compute environment (``assay env ls``). Returns the job's id, state and the
    pipeline's result (``success``, ``did_work``, ``output_bundle_uuid``); a failing task raises
    ``TaskFailed`` after the job is recorded FAILED.
    """
    from assay.pipelines.apply import ApplyRequest
    from assay.pipelines.pipelinejob import run_pipeline_job

    request = ApplyRequest(
        context=local_context,
        task_class=_task_class(pipe_cls),
        params=dict(pipeline_args or {}),
        output_bundle=output_bundle,
        input_tags=dict(input_tags or {}),
        output_tags=dict(output_tags or {}),
        force=force,
        force_all=force_all,
        workers=workers,
        executor=executor,
        environment=compute_environment,
    )
    return run_pipeline_job(_workspace(), request)
