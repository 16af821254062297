"""Ocean Provider-shaped compute routes under ``/api/services`` (an Ocean-style client's paths).

| Ocean name | method, path | what |
|---|---|---|
| ``computeStart`` | ``POST /api/services/compute`` | Ocean's payload: ``dataset.documentId`` (an ``assay://`` reference), ``dataset.userdata``, ``environment``, ``algorithm`` (``{documentId, algocustomdata}`` or ``{meta: ...}``), ``additionalInputs`` |
| ``computeStatus`` | ``GET /api/services/compute?jobId=`` | a list of status documents (all the caller's jobs without ``jobId``) |
| ``computeStop`` | ``PUT /api/services/compute?jobId=`` | a list with the status document |
| ``computeResult`` | ``GET /api/services/computeResult?jobId=&index=`` | the result's bytes |
| ``computeEnvironments`` | ``GET /api/services/computeEnvironments?chainId=`` | ``{chainId: [environments]}`` |

``GET /api/services`` lists these as Ocean's ``serviceEndpoints``. Differences from Ocean:
the caller authenticates with ``Authorization: Bearer <token>`` instead of a signature and nonce
(``signature``/``nonce`` are accepted and ignored); the consumer is the token's user, and a
``consumerAddress`` naming anyone else is refused (403 ``not_job_owner``). Errors are the same
problem documents as ``/api/v1`` (bad input is 422 naming the field).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from assay.bundles.workspace import Workspace
from assay.compute import Compute, ComputeInput
from assay.computejobs import lifecycle
from assay.core.errors import InvalidInput, NotJobOwner
from assay.jobs import store as job_store
from assay.server.api_auth import Principal, scope
from assay.server.api_common import workspace_of
from assay.server.api_compute import result_response, start_job

PREFIX = "/api/services"
router = APIRouter(prefix=PREFIX, tags=["ocean"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]
Space = Annotated[Workspace, Depends(workspace_of)]
Text = Annotated[str | None, Query(max_length=1024)]

SERVICE_ENDPOINTS = {
    "computeStart": ["POST", f"{PREFIX}/compute"],
    "computeStatus": ["GET", f"{PREFIX}/compute"],
    "computeStop": ["PUT", f"{PREFIX}/compute"],
    "computeResult": ["GET", f"{PREFIX}/computeResult"],
    "computeEnvironments": ["GET", f"{PREFIX}/computeEnvironments"],
}


def consumer_of(principal: Principal, consumer_address: str | None) -> str:
    """The token's user; a ``consumerAddress`` naming someone else is refused."""
    if consumer_address not in (None, "", principal.owner):
        raise NotJobOwner(
            f"consumerAddress {consumer_address!r} is not the caller ({principal.owner!r}): "
            "the consumer is the token's user"
        )
    return principal.owner


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind):
        raise InvalidInput(f"{name}: expected a JSON {kind.__name__}", {"field": name})
    return value


def _ocean_input(value: Any, where: str) -> ComputeInput:
    if not isinstance(value, dict) or not isinstance(value.get("documentId"), str):
        raise InvalidInput(f"{where}.documentId: give an assay:// reference", {"field": where})
    userdata = value.get("userdata")
    if userdata is not None and not isinstance(userdata, dict):
        raise InvalidInput(f"{where}.userdata: expected an object", {"field": where})
    return ComputeInput(value["documentId"], userdata=userdata)


@router.get("", summary="Ocean's provider root: the service endpoints")
def service_endpoints() -> dict[str, Any]:
    return {"serviceEndpoints": SERVICE_ENDPOINTS, "software": "Assay", "version": "1"}


@router.post("/compute", status_code=200, summary="computeStart (Ocean payload)")
def compute_start(payload: dict[str, Any], principal: Writer, workspace: Space) -> list[Any]:
    consumer = consumer_of(principal, payload.get("consumerAddress"))
    dataset = _ocean_input(payload.get("dataset"), "dataset")
    environment = _field(payload, "environment", str)
    algorithm_doc = _field(payload, "algorithm", dict)
    additional = payload.get("additionalInputs") or []
    if not isinstance(additional, list):
        raise InvalidInput("additionalInputs: expected a list", {"field": "additionalInputs"})
    custom = algorithm_doc.get("algocustomdata")
    if custom is not None and not isinstance(custom, dict):
        raise InvalidInput(
            "algorithm.algocustomdata: expected an object", {"field": "algocustomdata"}
        )
    if "meta" in algorithm_doc:
        algorithm, meta = None, algorithm_doc
    else:
        algorithm, meta = algorithm_doc.get("documentId"), None
        if not isinstance(algorithm, str):
            raise InvalidInput(
                "algorithm: give documentId (a service id or assay:// bundle) or meta",
                {"field": "algorithm"},
            )
    status = start_job(
        Compute(workspace),
        consumer,
        dataset,
        environment,
        algorithm,
        meta,
        custom,
        [_ocean_input(item, "additionalInputs") for item in additional],
        False,
    )
    return [status]


@router.get("/compute", summary="computeStatus")
def compute_status(
    principal: Reader,
    workspace: Space,
    jobId: Text = None,
    consumerAddress: Text = None,
    documentId: Text = None,
) -> list[Any]:
    consumer = consumer_of(principal, consumerAddress)
    compute = Compute(workspace)
    if jobId:
        return [compute.status(jobId, consumer)]
    records = job_store.list_jobs(
        kind=lifecycle.KIND, owner=consumer, limit=None, workspace=workspace
    )
    return [lifecycle.status_of(r, workspace) for r in records]


@router.put("/compute", summary="computeStop")
def compute_stop(
    principal: Writer,
    workspace: Space,
    jobId: Annotated[str, Query(min_length=1, max_length=256)],
    consumerAddress: Text = None,
    documentId: Text = None,
) -> list[Any]:
    return [Compute(workspace).stop(jobId, consumer_of(principal, consumerAddress))]


@router.get(
    "/computeResult",
    summary="computeResult: the bytes of one result",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def compute_result(
    principal: Reader,
    workspace: Space,
    jobId: Annotated[str, Query(min_length=1, max_length=256)],
    index: Annotated[int, Query(ge=0)],
    consumerAddress: Text = None,
) -> FileResponse:
    consumer = consumer_of(principal, consumerAddress)
    return result_response(Compute(workspace), jobId, index, consumer)


@router.get("/computeEnvironments", summary="computeEnvironments, keyed by chainId")
def compute_environments(
    _: Reader,
    workspace: Space,
    chainId: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    return {str(chainId): Compute(workspace).get_c2d_environments()}
