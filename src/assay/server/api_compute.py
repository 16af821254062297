"""``/api/v1/compute``: start compute-to-data jobs, read their status and results, stop them.

The consumer is always the authenticated token's user: a token for ``alice`` starts jobs as
``alice`` and reads only ``alice``'s jobs (``assay.compute.Compute`` applies the rules: another
consumer's job answers 403 ``not_job_owner``; a dataset's policy refusing the consumer or the
algorithm answers 403 ``not_consumable``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from assay.bundles.workspace import Workspace
from assay.compute import Compute, ComputeInput
from assay.computejobs import lifecycle
from assay.core.errors import InvalidInput
from assay.jobs import store as job_store
from assay.server.api_auth import Principal, scope
from assay.server.api_common import page_json, workspace_of

router = APIRouter(tags=["compute"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]
Space = Annotated[Workspace, Depends(workspace_of)]


class DatasetInput(BaseModel):
    """A dataset: a catalog reference ``assay://context/name[@uuid]``, with Ocean's optional
    ``key`` (its folder under ``/data/inputs``) and ``userdata``."""

    reference: str = Field(min_length=1, max_length=1024)
    key: str | None = Field(default=None, max_length=256)
    userdata: dict[str, Any] | None = None


class ComputeStart(BaseModel):
    dataset: str | DatasetInput
    environment: str = Field(min_length=1, max_length=128)
    algorithm: str | None = Field(default=None, max_length=1024)
    algorithm_meta: dict[str, Any] | None = None
    algocustomdata: dict[str, Any] | None = None
    additional_datasets: list[str | DatasetInput] = Field(default_factory=list, max_length=64)
    force: bool = False


def as_input(value: str | DatasetInput) -> str | ComputeInput:
    if isinstance(value, str):
        return value
    return ComputeInput(value.reference, key=value.key, userdata=value.userdata)


def start_job(
    compute: Compute,
    consumer: str,
    dataset: Any,
    environment: str,
    algorithm: Any,
    algorithm_meta: Any,
    custom: dict[str, Any] | None,
    additional: list[Any],
    force: bool,
) -> dict[str, Any]:
    """Start (the checks first) and return the job's status document."""
    if (algorithm is None) == (algorithm_meta is None):
        raise InvalidInput(
            "give exactly one of algorithm (a service id or assay:// bundle) and algorithm_meta",
            {"field": "algorithm"},
        )
    job_id = compute.start(
        consumer,
        dataset,
        environment,
        algorithm=algorithm,
        algorithm_meta=algorithm_meta,
        algorithm_algocustomdata=custom,
        additional_datasets=additional,
        force=force,
    )
    return compute.status(job_id, consumer)


def result_response(compute: Compute, job_id: str, index: int, consumer: str) -> FileResponse:
    item = compute.result(job_id, index, consumer)
    return FileResponse(
        item["path"],
        media_type="application/octet-stream",
        filename=Path(item["filename"]).name,
        headers={"ETag": f'"{item["content_hash"]}"', "X-Assay-Result-Type": item["type"]},
    )


@router.post("/compute/jobs", status_code=201, summary="Start a compute-to-data job")
def start(body: ComputeStart, principal: Writer, workspace: Space) -> dict[str, Any]:
    return start_job(
        Compute(workspace),
        principal.owner,
        as_input(body.dataset),
        body.environment,
        body.algorithm,
        body.algorithm_meta,
        body.algocustomdata,
        [as_input(d) for d in body.additional_datasets],
        body.force,
    )


@router.get("/compute/jobs", summary="The caller's compute jobs, newest first")
def list_own(
    principal: Reader,
    workspace: Space,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    records = job_store.list_jobs(
        kind=lifecycle.KIND, owner=principal.owner, limit=limit, workspace=workspace
    )
    return page_json([lifecycle.status_of(r, workspace) for r in records], None)


@router.get("/compute/jobs/{job_id}", summary="Status of one of the caller's compute jobs")
def status(job_id: str, principal: Reader, workspace: Space) -> dict[str, Any]:
    return Compute(workspace).status(job_id, principal.owner)


@router.get("/compute/jobs/{job_id}/results", summary="The results of a compute job")
def results(job_id: str, principal: Reader, workspace: Space) -> dict[str, Any]:
    return page_json(Compute(workspace).status(job_id, principal.owner)["results"], None)


@router.get(
    "/compute/jobs/{job_id}/results/{index}",
    summary="Download result ``index`` of a compute job",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def result(job_id: str, index: int, principal: Reader, workspace: Space) -> FileResponse:
    return result_response(Compute(workspace), job_id, index, principal.owner)


@router.post("/compute/jobs/{job_id}/stop", summary="Ask a compute job to stop")
def stop(job_id: str, principal: Writer, workspace: Space) -> dict[str, Any]:
    return Compute(workspace).stop(job_id, principal.owner)


@router.get("/compute/environments", summary="Compute environments (Ocean's keys and Assay's)")
def environments(_: Reader, workspace: Space) -> dict[str, Any]:
    return page_json(Compute(workspace).get_c2d_environments(), None)
