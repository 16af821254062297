"""Managed pipeline jobs on the job layer: create (idempotent), read, list, apply events.

A job is a row of kind ``"pipelinejob"`` on machine ``"pipelinejob"`` in the job layer (its
spec holds everything below) plus a side row (``pipelinejobs`` table: archive path, deleted).

Identity: ``job_id("pipelinejob", pipeline uuid, child_of, data)`` (UUID5 over canonical
JSON). Creating the same job again returns the existing one, whatever else differs (archive
patterns, instancing): the first creation decides where it writes.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc

from assay.bundles.workspace import Workspace
from assay.catalog import pipelinejob_queries as queries
from assay.core.errors import (
    InvalidArchivePath,
    InvalidEvent,
    InvalidInput,
    JobNotFound,
    PermissionDenied,
    PipelineJobNotFound,
)
from assay.jobs import store
from assay.jobs.ids import job_id as make_job_id
from assay.pjobs import archive
from assay.pjobs.identity import is_uuid, resolve_linkage
from assay.pjobs.machine import ADMIN_EVENTS, EVENTS, MACHINE_NAME, PIPELINEJOB_MACHINE
from assay.pjobs.pipelines import get_pipeline
from assay.pjobs.records import PipelineJob
from assay.pjobs.refs import refs_from_data_dict
from assay.pjobs.requests import requests_from

KIND = "pipelinejob"


@dataclass(frozen=True)
class NewJob:
    """What ``create_pipelinejob`` takes (the seed face maps its keyword arguments here)."""

    pipeline: str  # pipeline id or uuid
    experiment_id: str | Sequence[str] | None = None
    sample_id: str | Sequence[str] | None = None
    measurement_id: str | Sequence[str] | None = None
    data: Mapping[str, Any] | None = None
    archive_path: str | None = None
    instanced: bool = False
    session: str | None = None
    archive_patterns: Sequence[Any] = ()
    product_patterns: Sequence[Any] = ()
    inputs: Sequence[str] = ()
    agent: str | None = None
    task: str | None = None
    generated_by: Sequence[str] = ()
    setup_archive_path: bool = True
    owner: str | None = None


def _owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def identity(workspace: Workspace, new: NewJob) -> tuple[str, str, str, list[str]]:
    """(job uuid, pipeline uuid, linkage kind, child_of) of ``new``; validates the linkage and
    the pipeline."""
    kind, child_of = resolve_linkage(
        {
            "experiment_id": new.experiment_id,
            "sample_id": new.sample_id,
            "measurement_id": new.measurement_id,
        }
    )
    pipeline = get_pipeline(workspace, new.pipeline)
    data = dict(new.data or {})
    return make_job_id(KIND, pipeline.uuid, child_of, data), pipeline.uuid, kind, child_of


def create_pipelinejob(workspace: Workspace, new: NewJob) -> tuple[PipelineJob, bool]:
    """Create the job ``new`` describes, or return the existing one; (job, created).

    Everything is checked before anything is written: the linkage, the pipeline, the data
    (a JSON object), the archive path (under the products root, not another job's) and the
    index requests (valid regexes).
    """
    if new.data is not None and not isinstance(new.data, Mapping):
        raise InvalidInput("data must be a JSON object (a mapping)")
    job_uuid, pipeline_uuid, kind, child_of = identity(workspace, new)
    existing = _find(workspace, job_uuid)
    if existing is not None:
        return existing, False
    settings = workspace.settings
    data = dict(new.data or {})
    archive_reqs = [r.as_dict() for r in requests_from(new.archive_patterns, "archive")]
    product_reqs = [r.as_dict() for r in requests_from(new.product_patterns, "product")]
    if new.archive_path is not None:
        archive_path = archive.normalize_archive_path(new.archive_path, settings)
    else:
        archive_path = archive.generated_archive_path(pipeline_uuid, child_of, data)
        if new.instanced:
            archive_path += "/" + archive.instanced_directory(new.session)
    with workspace.read() as conn:
        taken = queries.pipelinejob_by_archive_path(conn, archive_path)
    if taken is not None and taken.job_id != job_uuid:
        raise InvalidArchivePath(
            f"archive path {archive_path} already belongs to job {taken.job_id}"
        )
    inputs = [str(i) for i in new.inputs]
    spec = {
        "pipeline_uuid": pipeline_uuid,
        "linkage_kind": kind,
        "child_of": child_of,
        "data": data,
        "archive_path": archive_path,
        "local_path": str(archive.local_path(archive_path, settings)),
        "instanced": bool(new.instanced),
        "session": new.session,
        "archive_patterns": archive_reqs,
        "product_patterns": product_reqs,
        "acted_on": sorted(set(inputs) | set(refs_from_data_dict(data, "files"))),
        "acted_using": refs_from_data_dict(data, "references"),
        "generated_by": [pipeline_uuid, *[g for g in new.generated_by if g != pipeline_uuid]],
        "agent": new.agent,
        "task": new.task,
    }
    if new.setup_archive_path:
        archive.ensure_directory(archive_path, settings)
    record, created = store.create_job(
        KIND,
        job_uuid,
        spec=spec,
        machine=MACHINE_NAME,
        environment="external",
        owner=new.owner if new.owner is not None else _owner(),
        workspace=workspace,
    )
    _ensure_side_row(workspace, record.job_id, record.spec, record.created)
    return PipelineJob.from_job(record), created


def _ensure_side_row(workspace: Workspace, job_uuid: str, spec: dict[str, Any], at: float) -> None:
    row = {
        "job_id": job_uuid,
        "pipeline_uuid": spec["pipeline_uuid"],
        "archive_path": spec["archive_path"],
        "created": at,
        "deleted": False,
    }
    try:
        with workspace.write() as conn:
            if queries.pipelinejob(conn, job_uuid) is None:
                queries.insert_pipelinejob(conn, row)
    except sqlalchemy.exc.IntegrityError:
        # A concurrent creation of the same job wrote it first (the archive path is unique).
        with workspace.read() as conn:
            if queries.pipelinejob(conn, job_uuid) is None:
                raise InvalidArchivePath(
                    f"archive path {spec['archive_path']} already belongs to another job"
                ) from None


def _find(workspace: Workspace, reference: str) -> PipelineJob | None:
    try:
        job = store.get_job(reference, workspace=workspace)
    except JobNotFound:
        return None
    if job.kind != KIND:
        return None
    with workspace.read() as conn:
        side = queries.pipelinejob(conn, job.job_id)
    if side is None:
        # Created by a process that died before writing the side row: repair it now.
        _ensure_side_row(workspace, job.job_id, job.spec, job.created)
        return PipelineJob.from_job(job)
    return PipelineJob.from_job(job, deleted=bool(side.deleted))


def get_pipelinejob(
    workspace: Workspace, reference: str, include_deleted: bool = False
) -> PipelineJob:
    """The job with uuid (or unique prefix) ``reference``; ``PipelineJobNotFound`` otherwise."""
    found = _find(workspace, reference)
    if found is None or (found.deleted and not include_deleted):
        raise PipelineJobNotFound(f"no managed pipeline job {reference!r}")
    return found


def list_pipelinejobs(
    workspace: Workspace,
    *,
    pipeline: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[PipelineJob]:
    """Newest first; ``pipeline`` is an id or uuid; deleted jobs are left out."""
    pipeline_uuid = get_pipeline(workspace, pipeline).uuid if pipeline else None
    if state is not None:
        PIPELINEJOB_MACHINE.state(state)  # unknown state name -> clear error
    with workspace.read() as conn:
        rows = queries.list_pipelinejobs(conn, pipeline_uuid)
    wanted = {row.job_id for row in rows}
    jobs = store.list_jobs(kind=KIND, state=state, limit=None, workspace=workspace)
    return [PipelineJob.from_job(j) for j in jobs if j.job_id in wanted][:limit]


def check_event(event: Any, data: Any, *, admin: bool) -> dict[str, Any]:
    """Validate an event name and its data; returns the data as a dict."""
    if not isinstance(event, str) or event not in EVENTS:
        raise InvalidEvent(f"unknown event {event!r}; known events: {', '.join(sorted(EVENTS))}")
    if event in ADMIN_EVENTS and not admin:
        raise PermissionDenied(f"the {event!r} event needs the admin token")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidEvent("an event's 'data' must be a JSON object")
    return data


def now() -> float:
    return time.time()


def require_uuid(reference: str) -> str:
    if not is_uuid(reference):
        raise PipelineJobNotFound(f"no managed pipeline job {reference!r} (not a uuid)")
    return reference.lower()
