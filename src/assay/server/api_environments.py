"""``/api/v1/environments``: the compute environments jobs run in, with their status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from assay.bundles.workspace import Workspace
from assay.jobs.env_status import environment_statuses
from assay.server.api_auth import Principal, scope
from assay.server.api_common import iso, page_json, workspace_of

router = APIRouter(tags=["environments"])


@router.get("/environments", summary="Compute environments with status and job counts")
def list_environments(
    _: Annotated[Principal, Depends(scope("read"))],
    workspace: Annotated[Workspace, Depends(workspace_of)],
) -> dict[str, Any]:
    items = []
    for status in environment_statuses(workspace):
        document = status.as_dict()
        document["last_seen"] = iso(status.last_seen)
        items.append(document)
    return page_json(items, None)
