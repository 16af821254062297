"""``assay lineage``: table, JSON and PROV-JSON, up and down, bounded depth."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import expect_error, invoke, ok

from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.core.records import Dependency


@pytest.fixture
def chain(lab_any: Path, make_file) -> dict[str, str]:
    """raw <- clean (as 'source') <- report (as 'table'): name -> uuid."""
    workspace = open_workspace()
    raw = ok("add", "raw", make_file("a.txt", "a"), "--json").json()["bundle"]["uuid"]
    clean = operations.create_bundle(
        workspace,
        "lab",
        "clean",
        {"rows": 1},
        dependencies=[Dependency(raw, "depends_on", "source")],
    ).uuid
    report = operations.create_bundle(
        workspace, "lab", "report", [1], dependencies=[Dependency(clean, "depends_on", "table")]
    ).uuid
    return {"raw": raw, "clean": clean, "report": report}


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[2:]]


def test_lineage_table_upstream(chain: dict[str, str]) -> None:
    rows = _rows(ok("lineage", "report").stdout)
    assert [row[:3] for row in rows] == [
        ["0", chain["report"][:8], "report"],
        ["1", chain["clean"][:8], "clean"],
        ["2", chain["raw"][:8], "raw"],
    ]
    assert rows[1][3:] == ["table", chain["report"][:8]]
    assert rows[2][3:] == ["source", chain["clean"][:8]]


def test_lineage_depth_and_downstream(chain: dict[str, str]) -> None:
    assert len(_rows(ok("lineage", "report", "--depth", "1").stdout)) == 2
    assert len(_rows(ok("lineage", "report", "--depth", "0").stdout)) == 1
    nodes = ok("lineage", chain["raw"][:8], "--downstream", "--json").json()
    assert [(n["depth"], n["uuid"], n["direction"]) for n in nodes] == [
        (0, chain["raw"], "downstream"),
        (1, chain["clean"], "downstream"),
        (2, chain["report"], "downstream"),
    ]
    assert nodes[1]["bundle"]["name"] == "clean"
    assert nodes[1]["arg_name"] == "source"


def test_lineage_prov_json(chain: dict[str, str]) -> None:
    for args in (("--format", "prov-json"), ("--format", "prov-json", "--json")):
        document = ok("lineage", "report", *args).json()
        assert set(document["entity"]) == {f"assay:{uuid}" for uuid in chain.values()}
        assert len(document["wasDerivedFrom"]) == 2


def test_lineage_marks_a_missing_bundle(chain: dict[str, str]) -> None:
    ok("rm", "raw", "--force")
    rows = _rows(ok("lineage", "report").stdout)
    assert rows[2][:3] == ["2", chain["raw"][:8], "?"]
    assert rows[2][-1] == "missing"
    nodes = ok("lineage", "report", "--json").json()
    assert nodes[2]["missing"] is True and nodes[2]["bundle"] is None


def test_lineage_bad_inputs(chain: dict[str, str]) -> None:
    expect_error(invoke("lineage", "nope"), 3, "'nope'")
    assert invoke("lineage", "report", "--format", "xml").exit_code == 2
    assert invoke("lineage", "report", "--depth", "-1").exit_code == 2
