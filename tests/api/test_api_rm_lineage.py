"""rm (latest, all, old only, dependents, force) and lineage (BFS, downstream, PROV-JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay import api
from assay.bundle import Bundle
from assay.core.errors import BundleNotFound, HasDependents, InvalidInput
from helpers import catalog_counts, set_created

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path) -> str:
    api.context(CTX)
    return CTX


def _make(name: str, value: object, *upstream: Bundle, ctx: str = CTX) -> Bundle:
    with Bundle(ctx, name) as bundle:
        bundle.add_data(value)
        for dependency in upstream:
            bundle.add_dependency(dependency)
    return bundle


def _versions(ctx: str, name: str, count: int) -> list[str]:
    """``count`` versions of ``name``, oldest first, with distinct creation times."""
    uuids = [_make(name, i).uuid for i in range(count)]
    for offset, uuid in enumerate(uuids):
        set_created(uuid, 1_700_000_000 + offset)
    return uuids


# -- rm -------------------------------------------------------------------------------------
def test_rm_removes_the_newest_version_by_default(ctx: str) -> None:
    uuids = _versions(ctx, "m", 3)

    assert api.rm(ctx, "m") == [uuids[2]]
    assert [b.uuid for b in api.search(ctx, "m")] == [uuids[1], uuids[0]]


def test_rm_all(ctx: str) -> None:
    uuids = _versions(ctx, "m", 3)
    _make("other", 1)

    assert sorted(api.rm(ctx, "m", rm_all=True)) == sorted(uuids)
    assert api.search(ctx, "m") == []
    assert [b.name for b in api.search(ctx)] == ["other"]
    assert catalog_counts()["bundles"] == 1


def test_rm_old_only_keeps_the_newest(ctx: str) -> None:
    uuids = _versions(ctx, "m", 3)

    assert sorted(api.rm(ctx, "m", rm_old_only=True)) == sorted(uuids[:2])
    assert [b.uuid for b in api.search(ctx, "m")] == [uuids[2]]
    assert api.rm(ctx, "m", rm_old_only=True) == []  # nothing old left


def test_rm_by_uuid_and_by_tags(ctx: str) -> None:
    uuids = _versions(ctx, "m", 3)
    api.get(ctx, uuid=uuids[0]).add_tags({"keep": "no"})

    assert api.rm(ctx, uuid=uuids[1]) == [uuids[1]]
    assert api.rm(ctx, "m", tags={"keep": "no"}) == [uuids[0]]
    assert [b.uuid for b in api.search(ctx)] == [uuids[2]]


def test_rm_removes_the_view(ctx: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    bundle = api.add(ctx, "f", source)
    view = Path(bundle.data)
    assert view.exists()

    api.rm(ctx, "f")

    assert not view.parent.exists()


def test_bundle_rm_shortcut(ctx: str) -> None:
    bundle = _make("m", 1)
    bundle.rm()
    assert api.get(ctx, "m") is None


def test_rm_all_with_rm_old_only_is_refused(ctx: str) -> None:
    _versions(ctx, "m", 2)
    rows = catalog_counts()

    with pytest.raises(InvalidInput, match="choose either all versions or old versions only"):
        api.rm(ctx, "m", rm_all=True, rm_old_only=True)

    assert catalog_counts() == rows


def test_rm_unknown_bundle(ctx: str) -> None:
    with pytest.raises(BundleNotFound, match="no bundle named 'ghost' in context 'work'"):
        api.rm(ctx, "ghost")
    with pytest.raises(BundleNotFound):
        api.rm(ctx, uuid="00000000-0000-4000-8000-000000000000")
    with pytest.raises(InvalidInput, match="give a bundle name or a uuid"):
        api.rm(ctx)


def test_rm_refuses_while_others_depend_and_names_them(ctx: str) -> None:
    raw = _make("raw", 1)
    clean = _make("clean", 2, raw)
    report = _make("report", 3, raw)
    rows = catalog_counts()

    with pytest.raises(HasDependents) as caught:
        api.rm(ctx, "raw")

    message = str(caught.value)
    assert f"raw@{raw.uuid[:8]}" in message
    assert f"clean@{clean.uuid[:8]}" in message
    assert f"report@{report.uuid[:8]}" in message
    assert "force=True" in message
    assert catalog_counts() == rows
    assert api.get(ctx, "raw").uuid == raw.uuid


def test_rm_all_of_a_chain_within_the_same_name_is_allowed(ctx: str) -> None:
    first = _make("m", 1)
    _make("m", 2, first)  # a newer version made from the older one

    assert len(api.rm(ctx, "m", rm_all=True)) == 2


def test_forced_rm_leaves_lineage_reporting_the_missing_upstream(ctx: str) -> None:
    raw = _make("raw", 1)
    clean = _make("clean", 2, raw)

    assert api.rm(ctx, "raw", force=True) == [raw.uuid]

    nodes = api.lineage(ctx, clean.uuid)
    assert [(n.uuid, n.depth, n.missing) for n in nodes] == [
        (clean.uuid, 0, False),
        (raw.uuid, 1, True),
    ]
    assert api.get(ctx, "clean").lineage.depends_on == {"raw": raw.uuid}
    prov = api.lineage_prov(ctx, clean.uuid)
    assert prov["entity"][f"assay:{raw.uuid}"]["assay:missing"] is True


# -- lineage ----------------------------------------------------------------------------------
@pytest.fixture
def diamond(ctx: str) -> dict[str, Bundle]:
    """top <- left, right <- base, and a shortcut top <- base; plus unrelated noise."""
    base = _make("base", 0)
    left = _make("left", 1, base)
    right = _make("right", 2, base)
    top = _make("top", 3, left, right, base)
    below = _make("below", 4, top)
    _make("noise", 5)
    return {"base": base, "left": left, "right": right, "top": top, "below": below}


def _walk(nodes: list[object]) -> list[tuple[str, int]]:
    """(name, depth) in BFS order; within one depth the order is not part of the contract."""
    pairs = [(n.record.name, n.depth) for n in nodes]  # type: ignore[attr-defined]
    assert [depth for _, depth in pairs] == sorted(depth for _, depth in pairs), "not BFS order"
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def test_upstream_bfs_each_node_once_at_min_depth(ctx: str, diamond: dict[str, Bundle]) -> None:
    nodes = api.lineage(ctx, diamond["below"].uuid)

    assert _walk(nodes) == [("below", 0), ("top", 1), ("base", 2), ("left", 2), ("right", 2)]
    assert [n.direction for n in nodes] == ["upstream"] * 5
    by_name = {n.record.name: n for n in nodes}
    assert by_name["top"].via_uuid == diamond["below"].uuid
    assert by_name["base"].via_uuid == diamond["top"].uuid
    assert by_name["left"].kind == "depends_on"
    assert by_name["left"].arg_name == "left"


def test_upstream_max_depth(ctx: str, diamond: dict[str, Bundle]) -> None:
    below = diamond["below"].uuid
    assert _walk(api.lineage(ctx, below, max_depth=0)) == [("below", 0)]
    assert _walk(api.lineage(ctx, below, max_depth=1)) == [("below", 0), ("top", 1)]
    assert len(api.lineage(ctx, below, max_depth=2)) == 5
    assert len(api.lineage(ctx, below, max_depth=50)) == 5


def test_downstream(ctx: str, diamond: dict[str, Bundle]) -> None:
    nodes = api.lineage(ctx, diamond["base"].uuid, downstream=True)

    assert _walk(nodes) == [("base", 0), ("left", 1), ("right", 1), ("top", 1), ("below", 2)]
    assert {n.direction for n in nodes} == {"downstream"}
    assert _walk(api.lineage(ctx, diamond["base"].uuid, max_depth=1, downstream=True)) == [
        ("base", 0),
        ("left", 1),
        ("right", 1),
        ("top", 1),
    ]


def test_lineage_by_name_and_unknown(ctx: str, diamond: dict[str, Bundle]) -> None:
    assert api.lineage(ctx, "left")[0].uuid == diamond["left"].uuid
    with pytest.raises(BundleNotFound):
        api.lineage(ctx, "ghost")


def test_long_chain(ctx: str) -> None:
    bundles = [_make("step0", 0)]
    for i in range(1, 12):
        bundles.append(_make(f"step{i}", i, bundles[-1]))

    nodes = api.lineage(ctx, bundles[-1].uuid)

    assert [n.depth for n in nodes] == list(range(12))
    assert [n.uuid for n in nodes] == [b.uuid for b in reversed(bundles)]


def test_lineage_across_contexts(ctx: str) -> None:
    api.context("upstream-ctx")
    source = _make("source", 1, ctx="upstream-ctx")
    derived = _make("derived", 2, source)

    nodes = api.lineage(ctx, derived.uuid)

    assert [(n.record.context, n.record.name) for n in nodes] == [
        (ctx, "derived"),
        ("upstream-ctx", "source"),
    ]


def test_lineage_prov_is_valid_prov_json(ctx: str, diamond: dict[str, Bundle]) -> None:
    document = api.lineage_prov(ctx, diamond["top"].uuid)
    json.dumps(document)  # serialisable as is

    assert set(document) >= {"prefix", "entity", "activity", "used", "wasDerivedFrom"}
    assert document["prefix"]["assay"].startswith("http")
    names = {e["prov:label"] for e in document["entity"].values()}
    assert names == {"top", "left", "right", "base"}
    for entity in document["entity"].values():
        assert entity["prov:type"] == "assay:bundle"
        assert entity["assay:content_hash"]
    for activity in document["activity"].values():
        assert {"prov:startTime", "prov:endTime"} <= set(activity)
    for generation in document["wasGeneratedBy"].values():
        assert generation["prov:entity"] in document["entity"]
        assert generation["prov:activity"] in document["activity"]
    for use in document["used"].values():
        assert use["prov:activity"] in document["activity"]
        assert use["prov:entity"] in document["entity"]
    derived = {
        (
            document["entity"][d["prov:generatedEntity"]]["prov:label"],
            document["entity"][d["prov:usedEntity"]]["prov:label"],
        )
        for d in document["wasDerivedFrom"].values()
    }
    assert derived == {
        ("top", "left"),
        ("top", "right"),
        ("top", "base"),
        ("left", "base"),
        ("right", "base"),
    }
    assert len(document["used"]) == 5


def test_lineage_prov_respects_max_depth(ctx: str, diamond: dict[str, Bundle]) -> None:
    document = api.lineage_prov(ctx, diamond["below"].uuid, max_depth=1)

    assert {e["prov:label"] for e in document["entity"].values()} == {"below", "top"}
    # Edges leave the walk only to bundles inside it.
    assert len(document["wasDerivedFrom"]) == 1


def test_reading_a_removed_bundle_through_an_old_handle(ctx: str, tmp_path: Path) -> None:
    source = tmp_path / "d"
    source.mkdir()
    (source / "f.txt").write_text("x")
    stale = api.add(ctx, "d", source)
    api.rm(ctx, "d")

    with pytest.raises(BundleNotFound):
        _ = stale.data
