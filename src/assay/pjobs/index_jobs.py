"""Indexing runs as a job of kind ``pipelinejob_index`` (machine ``job``), child of the
managed job it indexes.

``begin_index`` creates the indexing job and moves the managed job to INDEXING (its ``index``
event records the indexing job's id); ``run_index`` runs it in this process through
``jobs.runner.run_inline`` and then moves the managed job on: ``indexed`` (back to FINISHED,
with the bundles made) or ``fail`` (FAILED, with the error). Nothing is dropped silently and
nothing stays in INDEXING: if this process dies mid-index, ``recover`` (run at server start and
by the CLI) lets the job layer's reconciliation fail the indexing job and then fails the managed
job with the reason, or finishes it if the indexing job had finished.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidTransition, JobNotFound
from assay.jobs import store
from assay.jobs.reconcile import reconcile_job
from assay.jobs.runner import JobContext, run_inline
from assay.pjobs import archive
from assay.pjobs.indexer import DEFAULT_INDEX_CONTEXT, IndexTarget, index_archive
from assay.pjobs.machine import PIPELINEJOB_MACHINE
from assay.pjobs.records import PipelineJob
from assay.pjobs.requests import ArchiveIndexRequest, requests_from
from assay.pjobs.service import get_pipelinejob

INDEX_KIND = "pipelinejob_index"
#: What indexes a job that declared no index requests: every file, as the archive, level "1".
DEFAULT_REQUEST = ArchiveIndexRequest([".*"], level="1")


def begin_index(
    workspace: Workspace,
    job: PipelineJob,
    payload: dict[str, Any],
    context: str = DEFAULT_INDEX_CONTEXT,
) -> str:
    """Create the indexing job and fire ``index`` on ``job``; returns the indexing job's id.

    A job whose state does not allow ``index`` is refused before anything is written (and if
    its state changes in between, the indexing job made for it is STOPPED, never run)."""
    PIPELINEJOB_MACHINE.target(job.state, "index")
    requests = [
        *requests_from(job.archive_patterns, "archive"),
        *requests_from(job.product_patterns, "product"),
    ] or [DEFAULT_REQUEST]
    index_job_id = str(uuid.uuid4())
    store.create_job(
        INDEX_KIND,
        index_job_id,
        spec={
            "pipelinejob": job.uuid,
            "pipeline_uuid": job.pipeline_uuid,
            "archive_path": job.archive_path,
            "child_of": list(job.child_of),
            "requests": [r.as_dict() for r in requests],
            "context": context,
        },
        parent_job_id=job.uuid,
        workspace=workspace,
    )
    try:
        store.fire(
            job.uuid, "index", payload={**payload, "index_job": index_job_id}, workspace=workspace
        )
    except InvalidTransition:
        store.request_stop(index_job_id, workspace=workspace)  # never ran: STOPPED at once
        raise
    return index_job_id


def run_index(workspace: Workspace, index_job_id: str) -> PipelineJob:
    """Run the indexing job and settle its managed job (``indexed`` or ``fail``)."""
    index_job = store.get_job(index_job_id, workspace=workspace)
    spec = index_job.spec

    def work(ctx: JobContext) -> dict[str, Any]:
        target = IndexTarget(
            job_id=spec["pipelinejob"],
            pipeline_uuid=spec["pipeline_uuid"],
            folder=archive.local_path(spec["archive_path"], workspace.settings),
            child_of=tuple(spec["child_of"]),
            requests=tuple(
                requests_from([r for r in spec["requests"] if r["kind"] == "archive"], "archive")
                + requests_from([r for r in spec["requests"] if r["kind"] == "product"], "product")
            ),
        )
        ctx.log(f"indexing {spec['archive_path']}")
        return index_archive(workspace, target, context=spec["context"], heartbeat=ctx.heartbeat)

    finished = run_inline(index_job_id, work, workspace=workspace)
    _settle(workspace, spec["pipelinejob"], finished.job_id)
    return get_pipelinejob(workspace, spec["pipelinejob"])


def _settle(workspace: Workspace, pipelinejob_id: str, index_job_id: str) -> None:
    """Move the managed job out of INDEXING according to its finished indexing job."""
    index_job = store.get_job(index_job_id, workspace=workspace)
    payload: dict[str, Any] = {"index_job": index_job_id}
    if index_job.state == "FINISHED":
        store.fire(
            pipelinejob_id,
            "indexed",
            payload={**payload, "result": index_job.result},
            result={"index": index_job.result},
            workspace=workspace,
        )
    else:
        reason = index_job.error or f"the indexing job ended {index_job.state}"
        store.fire(
            pipelinejob_id,
            "fail",
            payload={**payload, "error": reason},
            error=f"indexing failed: {reason}",
            workspace=workspace,
        )


def _latest_index_job(workspace: Workspace, pipelinejob_id: str) -> str | None:
    for event in reversed(store.list_events(pipelinejob_id, workspace=workspace)):
        if event.event == "index" and event.payload.get("index_job"):
            return str(event.payload["index_job"])
    return None


def recover(workspace: Workspace, *, stale_after_s: float = 30.0) -> list[str]:
    """Settle managed jobs left in INDEXING by a dead process; returns their ids.

    For each managed job in INDEXING, its latest indexing job is reconciled by the job layer
    (``jobs.reconcile.reconcile_job``: RUNNING in a process that is gone, or silent for
    ``stale_after_s`` -> FAILED with the reason). An indexing job that never ran (CREATED
    longer than ``stale_after_s``, or re-queued: nobody else runs this kind) is stopped. Then an
    ended indexing job settles its managed job: ``indexed`` if it finished, ``fail`` otherwise.
    """
    settled = []
    jobs = store.list_jobs(kind="pipelinejob", state="INDEXING", limit=None, workspace=workspace)
    for job in jobs:
        index_job_id = _latest_index_job(workspace, job.job_id)
        if index_job_id is None:
            continue
        try:
            reconcile_job(index_job_id, workspace, stale_after_s=stale_after_s)
            index_job = store.get_job(index_job_id, workspace=workspace)
        except JobNotFound:
            continue
        never_ran = index_job.state == "QUEUED" or (
            index_job.state == "CREATED" and index_job.created < time.time() - stale_after_s
        )
        if never_ran:
            index_job = store.request_stop(index_job_id, workspace=workspace)
        if not index_job.terminal:
            continue
        try:
            _settle(workspace, job.job_id, index_job_id)
        except InvalidTransition:
            continue  # another process settled it first
        settled.append(job.job_id)
    return settled
