"""``/api/v1/lineage``: the bounded lineage graph around a bundle, or PROV-JSON."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from assay.bundles.lineage import to_prov_json
from assay.bundles.lineage_graph import (
    MAX_DEPTH,
    MAX_NODES,
    as_lineage_nodes,
    graph_dict,
    lineage_graph,
)
from assay.bundles.workspace import Workspace
from assay.server.api_auth import Principal, scope
from assay.server.api_common import Json, workspace_of

router = APIRouter(tags=["lineage"])


@router.get(
    "/lineage",
    summary="Nodes with their in/out edges around a bundle, bounded by depth and node count",
)
def lineage(
    _: Annotated[Principal, Depends(scope("read"))],
    workspace: Annotated[Workspace, Depends(workspace_of)],
    node: Annotated[str, Query(description="bundle:<uuid>", max_length=64)],
    direction: Literal["up", "down", "both"] = "both",
    depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = 5,
    max_nodes: Annotated[int, Query(ge=1, le=MAX_NODES)] = 500,
    format: Literal["json", "prov-json"] = "json",
) -> Json:
    graph = lineage_graph(workspace, node, direction=direction, depth=depth, max_nodes=max_nodes)
    if format == "prov-json":
        document = to_prov_json(as_lineage_nodes(workspace, graph))
        document["assay:truncated"] = graph.truncated
        return Json(document)
    return Json(graph_dict(graph))
