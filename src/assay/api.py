"""The Disdat-shaped Python API: versioned bundles in named contexts.

Functions take the context explicitly (``local_context``), as ``disdat.api`` does, so nothing
here needs a current context: ``current_context`` is None until ``switch`` (or the CLI) sets
one, and this module never creates one (the CLI makes a ``default`` context on a fresh home).
Names and signatures follow Disdat 1.2; the deliberate differences are in docs/porting.md.
Remotes: ``remote`` binds a context to object storage, ``push``/``pull`` move committed
bundles, ``localize``/``delocalize`` bring file data in or free it (see docs/remotes.md).
Pipelines: ``apply`` runs a ``PipeTask`` pipeline here, ``run`` runs one as a job in a compute
environment (see docs/pipelines.md).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from assay.bundle import Bundle, Lineage
from assay.bundles import current, maintenance, operations, remotes
from assay.bundles import lineage as lineage_module
from assay.bundles.codeversion import code_version
from assay.bundles.ingest import scan, walk_directory
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import ContextNotFound, InvalidInput, PathNotFound
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
    "init",
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
    "set_aws_profile",
    "switch",
    "verify",
]


def _workspace() -> Workspace:
    return open_workspace()


def _bundle(record: Any, workspace: Workspace) -> Bundle:
    return Bundle._from_record(record, workspace)


# -- set-up ---------------------------------------------------------------------------------
def init() -> None:
    """Make ``ASSAY_HOME`` (catalog and store) if it does not exist yet (Disdat's ``init``)."""
    _workspace()


def set_aws_profile(aws_profile: str) -> None:
    """Use this AWS profile for remotes from now on (sets ``AWS_PROFILE``, as Disdat does)."""
    os.environ["AWS_PROFILE"] = aws_profile


# -- contexts -------------------------------------------------------------------------------
def context(context_name: str) -> int:
    """Create a context. Returns 0 when created, 1 when it already existed (as Disdat)."""
    return 0 if operations.create_context(_workspace(), context_name) else 1


def current_context() -> str | None:
    """The context the CLI works in (set by ``switch``), or None when none is set."""
    return current.current_context(_workspace())


def switch(context_name: str) -> None:
    """Make ``context_name`` the current context (shared with the CLI)."""
    current.switch(_workspace(), context_name)


def ls_contexts() -> list[ContextInfo]:
    """Every context with its bundle counts and its remote (``<remote context>@<url>``)."""
    return operations.list_contexts(_workspace())


def delete_context(context_name: str, remote: bool = False, force: bool = False) -> None:
    """Delete a context and its bundles; refuses while committed bundles are unpushed.

    A context that does not exist is a no-op, as in Disdat (code calls this before creating
    one); an invalid name is still an error. The CLI's ``assay context rm`` reports it.
    ``remote=True`` (Disdat: delete the remote copy too) is refused: remove remote bundles
    explicitly with ``rm_remote``, so one call cannot erase the shared copy.
    """
    workspace = _workspace()
    check_context_name(context_name)
    if remote:
        raise InvalidInput(
            "delete_context(remote=True) is not supported: remove the remote's bundles with "
            "api.rm_remote(context, bundle_name, rm_all=True) first"
        )
    if context_name not in {c.name for c in operations.list_contexts(workspace)}:
        return
    operations.delete_context(workspace, context_name, force=force)
    if current_context() == context_name:
        workspace.settings.current_context_file.unlink(missing_ok=True)


# -- making bundles -------------------------------------------------------------------------
def add(
    local_context: str,
    bundle_name: str,
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    tags: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Bundle:
    """Make a bundle from a file (presents as one path), a directory, or a list of files and
    directories (Disdat's ``add``; both present as a list of paths).

    Files keep their names relative to their directory (a listed file: its base name). A value
    (a DataFrame, a dict) is not a path: ``add`` refuses it with ``InvalidInput`` and says to use
    ``Bundle.add_data``, as Disdat's ``add`` takes paths only. When the newest version of
    ``bundle_name`` already has exactly this content and these tags, it is returned and no new
    version is made (re-adding unchanged data is a no-op).
    """
    sources = _add_sources(path)
    workspace = _workspace()
    if len(sources) == 1 and not sources[0].is_dir():
        data: Any = sources[0]
        files = None
    else:
        data = sources[0]
        files = _walk_sources(sources)
    record = operations.create_bundle(
        workspace,
        local_context,
        bundle_name,
        data,
        files=files,
        tags=tags,
        code_version=code_version(),
        reuse_identical=True,
        progress=progress,
    )
    return _bundle(record, workspace)


def _add_sources(path: Any) -> list[Path]:
    """The existing files and directories ``add`` was given; a clear error for anything else."""
    if isinstance(path, str | os.PathLike):
        given = [path]
    elif (
        isinstance(path, list | tuple)
        and path
        and all(isinstance(p, str | os.PathLike) for p in path)
    ):
        given = list(path)
    else:
        raise InvalidInput(
            f"api.add takes a path to a file or directory (or a list of them), not a "
            f"{type(path).__name__}; to store a value such as a DataFrame or dict, use a "
            "Bundle: 'with api.Bundle(context, name) as b: b.add_data(value)' "
            "(or api.Bundle(context, name=name, data=value))"
        )
    sources = [Path(p).absolute() for p in given]
    for source in sources:
        if not source.exists():
            raise PathNotFound(f"path does not exist: {source}")
    return sources


def _walk_sources(sources: list[Path]) -> list[Any]:
    """Every file below the sources: a directory's at their relative paths, a file by name."""
    found: dict[str, Any] = {}
    for source in sources:
        if source.is_dir():
            entries = list(walk_directory(str(source)))
        else:
            entries = scan({source.name: source})
        for entry in entries:
            if entry.bundle_path in found:
                raise InvalidInput(
                    f"two of the given paths both hold {entry.bundle_path!r} "
                    f"({found[entry.bundle_path].source} and {entry.source}); add them separately"
                )
            found[entry.bundle_path] = entry
    return [found[key] for key in sorted(found)]


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
    human_name: str | None = None,
    processing_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    is_committed: bool | None = None,
    find_intermediates: bool = False,
    find_roots: bool = False,
    before: Any = None,
    after: Any = None,
    *,
    search_name: str | None = None,
    search_tags: Mapping[str, Any] | None = None,
) -> list[Bundle]:
    """Bundles matching every condition, newest first (Disdat 1.2's signature).

    ``human_name`` and ``processing_name`` may hold ``*`` and ``?`` wildcards; ``before`` /
    ``after`` take ``YYYY-MM-DD[THH:MM:SS]`` or Disdat's ``MM-DD-YYYY[ HH:MM:SS]`` (local time)
    or a datetime. ``find_roots`` / ``find_intermediates`` keep bundles with / without the
    ``root_task`` tag, as Disdat's pipelines set it. ``search_name`` and ``search_tags`` are the
    older keyword names of ``human_name`` and ``tags``.
    """
    name = human_name if human_name is not None else search_name
    wanted_tags = dict(tags if tags is not None else search_tags or {})
    workspace = _workspace()
    records = operations.search(
        workspace, local_context, name, wanted_tags or None, is_committed, before, after
    )
    if processing_name is not None:
        records = [r for r in records if fnmatch.fnmatchcase(r.processing_name, processing_name)]
    if find_roots:
        records = [r for r in records if "root_task" in r.tags]
    if find_intermediates:
        records = [r for r in records if "root_task" not in r.tags]
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
    force: bool = True,
    endpoint_url: str | None = None,
) -> None:
    """Bind ``local_context`` to ``remote_context`` at ``remote_url`` (``s3://bucket/prefix``,
    ``file:///path``, or any installed fsspec protocol). The remote is checked first.

    As in Disdat, a context already bound elsewhere is re-bound (bundles pulled from the old
    remote and not localized can be localized again only once it is bound back); pass
    ``force=False`` to refuse instead (``RemoteExists``), as ``assay remote add`` does without
    ``--force``. Credentials, region and endpoint come from the usual AWS environment;
    ``endpoint_url`` is stored with the binding (no secrets)."""
    remotes.bind(_workspace(), local_context, remote_context, remote_url, force, endpoint_url)


def push(
    local_context: str,
    bundle_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    uuid: str | None = None,
    delocalize: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PushReport:
    """Push committed bundles to the context's remote: the newest version of ``bundle_name``,
    the bundle ``uuid``, or (neither) every committed bundle with ``tags``. An uncommitted
    bundle named explicitly is refused (``NotCommitted``). With ``delocalize`` (Disdat's
    keyword) the pushed bundles' local file data is freed afterwards."""
    workspace = _workspace()
    report = remotes.push(workspace, local_context, bundle_name, tags, uuid, progress)
    if delocalize:
        if bundle_name is not None or uuid is not None:
            remotes.delocalize_bundle(workspace, local_context, bundle_name, uuid)
        else:
            for record in operations.search(workspace, local_context, None, tags, True):
                remotes.delocalize_bundle(workspace, local_context, uuid=record.uuid)
    return report


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
    compute_environment: str = "local",
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
    ``compute_environment`` naming a ``dask`` environment runs each task as one Dask task on
    its cluster (see docs/scale-out.md); its task jobs are recorded in that environment.
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
        environment=compute_environment,
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
