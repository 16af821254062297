"""Compute-to-data rules at the HTTP face: who may read which bytes.

The library's rules (``assay.computejobs.lifecycle.owned_job``) decide who may read or stop a
compute job. Over HTTP two more doors must stay shut, because the generic bundle routes would
otherwise hand out what the compute routes refuse:

- a dataset published for ``compute`` access never leaves as bytes: its file downloads answer
  403 ``not_consumable``;
- a compute job's output bundle (context ``compute``, name ``job-<id>``) is downloadable only by
  the consumer who started the job (403 ``not_job_owner`` for anyone else).
"""

from __future__ import annotations

from assay.bundles.workspace import Workspace
from assay.computejobs.publishing import OUTPUT_CONTEXT
from assay.core.errors import JobNotFound, NotConsumable, NotJobOwner
from assay.core.records import BundleRecord
from assay.jobs import store as job_store
from assay.jobs.policies import get_policy

_OUTPUT_PREFIX = "job-"


def check_download(workspace: Workspace, record: BundleRecord, user: str) -> None:
    """Raise unless ``user`` may download the files of ``record`` over HTTP."""
    policy = get_policy(record.context, record.name, workspace=workspace)
    if policy.published and policy.access == "compute":
        raise NotConsumable(
            f"{record.context}/{record.name} is published for compute access only: its files "
            "never leave; start a compute job on it instead",
            details={"consumable_code": "COMPUTE_ONLY", "rule": "access=compute"},
        )
    if record.context == OUTPUT_CONTEXT and record.name.startswith(_OUTPUT_PREFIX):
        job_id = record.name[len(_OUTPUT_PREFIX) :]
        owner = _job_owner(workspace, job_id, record.owner)
        if owner != user:
            raise NotJobOwner(
                f"bundle {record.uuid} holds the results of compute job {job_id}, started by "
                f"another consumer; {user!r} may not read them",
                details={"job_id": job_id},
            )


def _job_owner(workspace: Workspace, job_id: str, fallback: str) -> str:
    """The job's owner; the bundle's owner (the consumer it was published for) when the job
    row is gone (``assay jobs prune``)."""
    try:
        return job_store.get_job(job_id, workspace=workspace).owner
    except JobNotFound:
        return fallback
