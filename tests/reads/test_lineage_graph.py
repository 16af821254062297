"""The bounded lineage graph: nodes with in/out edges, depth and node caps, truncation counts,
removed upstreams, bad requests; SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_helpers import make_bundles

from assay.bundles import operations
from assay.bundles.lineage_graph import graph_dict, lineage_graph, node_id
from assay.bundles.workspace import open_workspace
from assay.catalog import lineage_queries
from assay.core.errors import BundleNotFound, InvalidInput

#   raw1   raw2
#     \    /  \
#     clean    other
#       |
#     model
#     /   \
#  report  score
DIAMOND = {
    "clean": ["raw1", "raw2"],
    "other": ["raw2"],
    "model": ["clean"],
    "report": ["model"],
    "score": ["model"],
}
NAMES = ["raw1", "raw2", "clean", "other", "model", "report", "score"]


def _graph(uuids: dict[str, str], start: str, **kwargs: object) -> dict[str, object]:
    return graph_dict(lineage_graph(open_workspace(), node_id(uuids[start]), **kwargs))  # type: ignore[arg-type]


def _names(document: dict[str, object], uuids: dict[str, str]) -> dict[str, int]:
    by_uuid = {v: k for k, v in uuids.items()}
    return {by_uuid[n["id"].split(":")[1]]: n["depth"] for n in document["nodes"]}  # type: ignore[attr-defined,index]


def test_both_directions_with_edges_the_way_data_flows(assay_home: Path) -> None:
    uuids = make_bundles("lab", NAMES, DIAMOND)
    document = _graph(uuids, "model", direction="both", depth=5)
    assert _names(document, uuids) == {
        "model": 0,
        "clean": -1,
        "raw1": -2,
        "raw2": -2,
        "report": 1,
        "score": 1,
    }
    assert document["truncated"] is False
    nodes = {n["id"]: n for n in document["nodes"]}  # type: ignore[attr-defined]
    model = nodes[node_id(uuids["model"])]
    assert [e["origin"] for e in model["in_edges"]] == [node_id(uuids["clean"])]
    assert sorted(e["destination"] for e in model["out_edges"]) == sorted(
        node_id(uuids[n]) for n in ("report", "score")
    )
    # raw2 also feeds `other`, a sibling branch: not part of the model's lineage, not "cut".
    raw2 = nodes[node_id(uuids["raw2"])]
    assert [e["destination"] for e in raw2["out_edges"]] == [node_id(uuids["clean"])]
    assert document["cut"] == {
        "edges": 0,
        "nodes_at_boundary": 0,
        "by_max_nodes": False,
        "by_depth": False,
    }


def test_up_and_down_only(assay_home: Path) -> None:
    uuids = make_bundles("lab", NAMES, DIAMOND)
    assert set(_names(_graph(uuids, "clean", direction="up"), uuids)) == {"clean", "raw1", "raw2"}
    assert set(_names(_graph(uuids, "raw2", direction="down"), uuids)) == {
        "raw2",
        "clean",
        "other",
        "model",
        "report",
        "score",
    }


def test_depth_cuts_and_says_so(assay_home: Path) -> None:
    uuids = make_bundles("lab", NAMES, DIAMOND)
    document = _graph(uuids, "report", direction="up", depth=1)
    assert _names(document, uuids) == {"report": 0, "model": -1}
    assert document["truncated"] is True
    assert document["cut"] == {
        "edges": 1,
        "nodes_at_boundary": 1,
        "by_max_nodes": False,
        "by_depth": True,
    }
    assert set(_names(_graph(uuids, "report", direction="up", depth=0), uuids)) == {"report"}


def test_max_nodes_keeps_the_nearest(assay_home: Path) -> None:
    # A fan: one source feeding 50 bundles, each feeding one more.
    names = ["src"] + [f"mid{i}" for i in range(50)] + [f"leaf{i}" for i in range(50)]
    parents = {f"mid{i}": ["src"] for i in range(50)} | {f"leaf{i}": [f"mid{i}"] for i in range(50)}
    uuids = make_bundles("lab", names, parents)
    document = _graph(uuids, "src", direction="down", depth=5, max_nodes=20)
    depths = _names(document, uuids)
    assert len(depths) == 20 and depths["src"] == 0
    assert all(d == 1 for name, d in depths.items() if name != "src")  # nearest first
    assert document["truncated"] is True
    cut = document["cut"]
    assert cut["by_max_nodes"] is True  # type: ignore[index]
    # 31 mids were left out (edges from src) and the 19 mids kept lose their leaf.
    assert cut["edges"] == 50 and cut["nodes_at_boundary"] == 50  # type: ignore[index]


def test_a_long_chain_reads_a_bounded_number_of_rows(assay_home: Path) -> None:
    names = [f"n{i}" for i in range(3000)]
    uuids = make_bundles("lab", names, {f"n{i}": [f"n{i - 1}"] for i in range(1, 3000)})
    with open_workspace().read() as conn:
        reached, exhausted = lineage_queries.reach(
            conn, uuids["n0"], downstream=True, max_depth=100, budget=41
        )
    assert len(reached) == 41 and exhausted
    assert [depth for _, depth in reached] == list(range(41))
    document = _graph(uuids, "n0", direction="down", depth=100, max_nodes=10)
    assert len(document["nodes"]) == 10 and document["truncated"] is True  # type: ignore[arg-type]


def test_a_removed_upstream_is_a_missing_node(assay_home: Path) -> None:
    uuids = make_bundles("lab", ["raw", "derived"], {"derived": ["raw"]})
    operations.remove(open_workspace(), "lab", uuid=uuids["raw"], force=True)
    document = _graph(uuids, "derived", direction="up")
    missing = [n for n in document["nodes"] if n["missing"]]  # type: ignore[attr-defined]
    assert [n["id"] for n in missing] == [node_id(uuids["raw"])]
    assert missing[0]["data"] is None


@pytest.mark.parametrize(
    ("node", "kwargs", "field"),
    [
        ("bundle:nope", {}, "node"),
        ("job:123e4567-e89b-12d3-a456-426614174000", {}, "node"),
        (None, {"direction": "sideways"}, "direction"),
        (None, {"depth": -1}, "depth"),
        (None, {"depth": 101}, "depth"),
        (None, {"max_nodes": 0}, "max_nodes"),
        (None, {"max_nodes": 5001}, "max_nodes"),
    ],
)
def test_bad_requests_name_the_field(
    assay_home: Path, node: str | None, kwargs: dict[str, object], field: str
) -> None:
    uuids = make_bundles("lab", ["a"])
    with pytest.raises(InvalidInput) as caught:
        lineage_graph(open_workspace(), node or node_id(uuids["a"]), **kwargs)  # type: ignore[arg-type]
    assert caught.value.details["field"] == field


def test_unknown_bundle(assay_home: Path) -> None:
    make_bundles("lab", ["a"])
    with pytest.raises(BundleNotFound):
        lineage_graph(open_workspace(), "bundle:123e4567-e89b-12d3-a456-426614174000")
