"""A bounded lineage graph around one bundle: nodes with their in- and out-edges.

This is the shape a lineage UI or an API client wants (Marquez-style): a set of nodes, each
listing the edges into and out of it that stay inside the graph. Edges point the way data
flows: ``origin`` is the upstream bundle (the input), ``destination`` the bundle made from it.

The graph is bounded twice: by ``depth`` (edges from the start) and by ``max_nodes``. Nodes
are kept nearest first. When either bound cuts something off, ``truncated`` is true and
``cut`` says how much was cut at the boundary: the edges leading from kept nodes to nodes left
out, and how many distinct nodes those edges reach. (How many nodes lie further beyond is not
counted: counting them is exactly the whole-graph walk the bounds avoid.)

``direction="both"`` joins the upstream and the downstream walks (ancestors and descendants);
it does not zig-zag into siblings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assay.bundles.workspace import Workspace
from assay.catalog import lineage_queries, queries
from assay.catalog.lineage_queries import NodeRow
from assay.core.errors import BundleNotFound, InvalidInput
from assay.core.records import LineageNode

DIRECTIONS = ("up", "down", "both")
MAX_DEPTH = 100
MAX_NODES = 5000
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Rows a walk may read per node it may keep: a node reached by several paths appears once
#: per depth it is reached at, so a few rows per node leave room for diamonds.
_ROWS_PER_NODE = 4


@dataclass(frozen=True)
class GraphEdge:
    origin: str  # node id of the upstream bundle
    destination: str  # node id of the bundle made from it
    kind: str
    arg_name: str


@dataclass(frozen=True)
class GraphNode:
    id: str  # "bundle:<uuid>"
    uuid: str
    depth: int  # edges from the start: negative upstream, positive downstream, 0 the start
    record: NodeRow | None  # None: the bundle was removed (forced) but edges remain
    in_edges: list[GraphEdge] = field(default_factory=list)
    out_edges: list[GraphEdge] = field(default_factory=list)


@dataclass(frozen=True)
class LineageGraph:
    root: str
    direction: str
    depth: int
    max_nodes: int
    nodes: list[GraphNode]
    truncated: bool
    cut: dict[str, Any]


def node_id(uuid: str) -> str:
    return f"bundle:{uuid}"


def parse_node(node: str) -> str:
    """The bundle uuid in a node id ``bundle:<uuid>``."""
    kind, _, uuid = node.partition(":")
    if kind != "bundle" or not _UUID.fullmatch(uuid):
        raise InvalidInput(
            f"invalid node {node!r}: use bundle:<uuid> (the full uuid)", {"field": "node"}
        )
    return uuid


def _check(direction: str, depth: int, max_nodes: int) -> None:
    if direction not in DIRECTIONS:
        raise InvalidInput(
            f"invalid direction {direction!r}: use up, down or both", {"field": "direction"}
        )
    if not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be between 0 and {MAX_DEPTH}", {"field": "depth"})
    if not 1 <= max_nodes <= MAX_NODES:
        raise InvalidInput(f"max_nodes must be between 1 and {MAX_NODES}", {"field": "max_nodes"})


def lineage_graph(
    workspace: Workspace,
    node: str,
    *,
    direction: str = "both",
    depth: int = 5,
    max_nodes: int = 500,
) -> LineageGraph:
    """The graph around ``node`` (``bundle:<uuid>``), bounded by ``depth`` and ``max_nodes``."""
    start = parse_node(node)
    _check(direction, depth, max_nodes)
    budget = _ROWS_PER_NODE * (max_nodes + 1) + 1
    with workspace.read() as conn:
        if not lineage_queries.node_rows(conn, [start]):
            raise BundleNotFound(f"no bundle with uuid {start}")
        walks: list[tuple[int, list[tuple[str, int]], bool]] = []
        for sign, downstream in ((-1, False), (1, True)):
            if direction == ("down" if sign < 0 else "up"):
                continue
            reached, exhausted = lineage_queries.reach(
                conn, start, downstream=downstream, max_depth=depth, budget=budget
            )
            walks.append((sign, reached, exhausted))
        depth_of = _nearest_first(walks, max_nodes)
        kept = list(depth_of)
        records = lineage_queries.node_rows(conn, kept)
        edges = lineage_queries.edges_touching(conn, kept)
    return _assemble(start, direction, depth, max_nodes, depth_of, records, edges, walks)


def _nearest_first(
    walks: list[tuple[int, list[tuple[str, int]], bool]], max_nodes: int
) -> dict[str, int]:
    """Up to ``max_nodes`` nodes, nearest first (upstream before downstream at equal depth)."""
    candidates = sorted(
        (
            (abs_depth, sign, position, uuid)
            for sign, reached, _ in walks
            for position, (uuid, abs_depth) in enumerate(reached)
        ),
    )
    depth_of: dict[str, int] = {}
    for abs_depth, sign, _, uuid in candidates:
        if uuid in depth_of:
            continue
        if len(depth_of) == max_nodes:
            break
        depth_of[uuid] = sign * abs_depth
    return depth_of


def _assemble(
    start: str,
    direction: str,
    depth: int,
    max_nodes: int,
    depth_of: dict[str, int],
    records: dict[str, NodeRow],
    edges: list[Any],
    walks: list[tuple[int, list[tuple[str, int]], bool]],
) -> LineageGraph:
    nodes = {
        uuid: GraphNode(node_id(uuid), uuid, d, records.get(uuid)) for uuid, d in depth_of.items()
    }
    cut_edges = 0
    cut_nodes: set[str] = set()
    cut_at_depth_limit = False
    for row in edges:
        upstream, downstream = row.target_uuid, row.bundle_uuid
        edge = GraphEdge(node_id(upstream), node_id(downstream), row.kind, row.arg_name)
        if upstream in nodes and downstream in nodes:
            nodes[upstream].out_edges.append(edge)
            nodes[downstream].in_edges.append(edge)
            continue
        # An edge leaving the graph counts as cut only in a direction that was walked: the
        # other dependents of an upstream node are not part of an upstream question.
        walked_up = direction != "down" and downstream in nodes and depth_of[downstream] <= 0
        walked_down = direction != "up" and upstream in nodes and depth_of[upstream] >= 0
        if walked_up or walked_down:
            cut_edges += 1
            cut_nodes.add(upstream if walked_up else downstream)
            inside = downstream if walked_up else upstream
            cut_at_depth_limit |= abs(depth_of[inside]) == depth
    exhausted = any(flag for _, _, flag in walks)
    reached_total = len({uuid for _, reached, _ in walks for uuid, _ in reached})
    truncated = cut_edges > 0 or exhausted
    cut = {
        "edges": cut_edges,
        "nodes_at_boundary": len(cut_nodes),
        "by_max_nodes": reached_total > len(depth_of) or exhausted,
        "by_depth": cut_at_depth_limit,
    }
    ordered = sorted(nodes.values(), key=lambda n: (abs(n.depth), n.depth, n.uuid))
    return LineageGraph(node_id(start), direction, depth, max_nodes, ordered, truncated, cut)


def as_lineage_nodes(workspace: Workspace, graph: LineageGraph) -> list[LineageNode]:
    """The graph's nodes with their full records, in the shape ``lineage.to_prov_json`` reads."""
    with workspace.read() as conn:
        records = queries.records_by_uuid(conn, [node.uuid for node in graph.nodes])
    return [
        LineageNode(
            node.uuid,
            abs(node.depth),
            "upstream" if node.depth <= 0 else "downstream",
            None,
            "",
            "",
            records.get(node.uuid),
        )
        for node in graph.nodes
    ]


def graph_dict(graph: LineageGraph) -> dict[str, Any]:
    """The JSON document of the API's lineage route."""
    return {
        "root": graph.root,
        "direction": graph.direction,
        "depth": graph.depth,
        "max_nodes": graph.max_nodes,
        "truncated": graph.truncated,
        "cut": graph.cut,
        "nodes": [
            {
                "id": node.id,
                "type": "bundle",
                "depth": node.depth,
                "missing": node.record is None,
                "data": _node_data(node.record),
                "in_edges": [_edge_dict(e) for e in node.in_edges],
                "out_edges": [_edge_dict(e) for e in node.out_edges],
            }
            for node in graph.nodes
        ],
    }


def _edge_dict(edge: GraphEdge) -> dict[str, str]:
    return {
        "origin": edge.origin,
        "destination": edge.destination,
        "kind": edge.kind,
        "arg_name": edge.arg_name,
    }


def _node_data(record: NodeRow | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "uuid": record.uuid,
        "name": record.name,
        "context": record.context,
        "created": record.created,
        "committed": record.committed,
        "presentation": record.presentation,
        "tags": dict(record.tags),
    }
