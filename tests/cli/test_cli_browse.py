"""``assay ls``, ``assay search``, ``assay show``, ``assay cat``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok

from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.core.records import Dependency


def _add(name: str, path: Path, *options: str) -> dict:
    return ok("add", name, path, *options, "--json").json()["bundle"]


def test_ls_newest_per_name(lab_any: Path, make_file) -> None:
    _add("raw", make_file("a.txt", "1"))
    newest = _add("raw", make_file("a.txt", "2"), "-t", "stage=two")
    other = _add("other", make_file("b.txt", "b"))
    listing = ok("ls").stdout
    lines = listing.splitlines()
    assert lines[0].split() == [
        "name", "uuid", "created", "commit", "type", "files", "size", "tags",
    ]  # fmt: skip
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["other", "raw"]
    raw_row = rows[1]
    assert raw_row[1] == newest["uuid"][:8]
    created = operations.versions(open_workspace(), "lab", "raw")[0].created
    local = datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
    assert " ".join(raw_row[2:4]) == local
    assert raw_row[4:] == ["no", "file", "1", "1", "B", "stage=two"]
    assert all(len(line) <= 100 for line in lines)

    document = ok("ls", "--json").json()
    assert [(b["name"], b["uuid"]) for b in document] == [
        ("other", other["uuid"]),
        ("raw", newest["uuid"]),
    ]


def test_ls_versions_of_a_name(lab: Path, make_file) -> None:
    first = _add("raw", make_file("a.txt", "1"))
    second = _add("raw", make_file("a.txt", "2"))
    _add("other", make_file("b.txt", "b"))
    assert [b["uuid"] for b in ok("ls", "raw", "--json").json()] == [second["uuid"]]
    assert [b["uuid"] for b in ok("ls", "raw", "--all-versions", "--json").json()] == [
        second["uuid"],
        first["uuid"],
    ]
    assert len(ok("ls", "--all-versions", "--json").json()) == 3
    human = ok("ls", "raw", "-a").stdout
    assert first["uuid"][:8] in human and second["uuid"][:8] in human


def test_ls_empty_and_unknown(lab: Path) -> None:
    assert ok("ls").stdout.strip() == "no bundles in context 'lab'"
    assert ok("ls", "--json").json() == []
    expect_error(invoke("ls", "nope"), 3, "no bundle named 'nope' in context 'lab'")
    expect_error(invoke("ls", "-c", "nope"), 3, "no context named 'nope'")
    expect_error(invoke("ls", "-c", "a/b"), 2, "invalid context name")


def test_ls_wide_values_stay_within_100_columns(lab: Path, make_file) -> None:
    tags = [f"key_number_{i}=a rather long value [bold]{i}[/bold]" for i in range(3)]
    options = [part for tag in tags for part in ("-t", tag)]
    _add("a_fairly_long_bundle_name_for_a_table_cell", make_file("a.txt", "a"), *options)
    output = ok("ls").stdout
    assert all(len(line) <= 100 for line in output.splitlines())
    assert "[bold]" in output  # tag values are shown literally, not as Rich markup


def test_search(lab_any: Path, make_file) -> None:
    raw = _add("raw", make_file("a.txt", "1"), "-t", "stage=raw")
    raw_two = _add("raw_two", make_file("a.txt", "2"), "-t", "stage=raw")
    clean = _add("clean", make_file("a.txt", "3"), "-t", "stage=clean")
    ok("commit", "clean")

    def found(*args: str) -> list[str]:
        return [b["uuid"] for b in ok("search", *args, "--json").json()]

    assert set(found("raw*")) == {raw["uuid"], raw_two["uuid"]}
    assert found("raw") == [raw["uuid"]]
    assert found("--tag", "stage=clean") == [clean["uuid"]]
    assert found("--committed") == [clean["uuid"]]
    assert set(found("--uncommitted")) == {raw["uuid"], raw_two["uuid"]}
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert len(found("--before", tomorrow)) == 3
    assert found("--after", tomorrow) == []
    human = ok("search", "raw*").stdout
    assert "raw_two" in human and "clean" not in human
    assert "no bundles match" in ok("search", "zzz*").stdout


def test_search_bad_inputs(lab: Path) -> None:
    expect_error(invoke("search", "--before", "yesterday"), 2, "cannot read the date")
    expect_error(invoke("search", "--tag", "Bad=1"), 2, "invalid tag key 'Bad'")
    expect_error(invoke("search", "-c", "nope"), 3, "no context named 'nope'")


def test_show(lab_any: Path, data_dir: Path) -> None:
    raw = _add("raw", data_dir, "-t", "stage=raw")
    derived = operations.create_bundle(
        open_workspace(),
        "lab",
        "derived",
        {"rows": 2},
        params={"threshold": 0.5},
        dependencies=[Dependency(raw["uuid"], "depends_on", "source")],
        processing_name="Clean",
        code_version={"git": "abc123"},
    )
    human = ok("show", "derived").stdout
    for expected in (
        derived.uuid,
        "Clean",
        derived.content_hash,
        "threshold",
        "abc123",
        f"source -> {raw['uuid']}",
    ):
        assert expected in human
    document = ok("show", derived.uuid[:8], "--json").json()
    assert document["uuid"] == derived.uuid
    assert document["processing_name"] == "Clean"
    assert document["params"] == {"threshold": 0.5}
    assert document["code_version"] == {"git": "abc123"}
    assert document["dependencies"] == [
        {"uuid": raw["uuid"], "kind": "depends_on", "arg_name": "source"}
    ]
    assert document["files"] == []

    files = ok("show", "raw", "--json").json()["files"]
    assert [(f["path"], f["size"]) for f in files] == [("sub/y.txt", 6), ("x.csv", 8)]
    human = ok("show", raw["uuid"]).stdout
    assert "sub/y.txt" in human and files[0]["blob_hash"][:12] in human


def test_show_unknown(lab: Path) -> None:
    expect_error(invoke("show", "nope"), 3, "'nope'", "'lab'")
    expect_error(invoke("show", "nope", "--json"), 3)
    document = json.loads(invoke("show", "nope", "--json").stdout)
    assert document["error"]["code"] == "bundle_not_found"


def _bundle(name: str, data: object) -> str:
    return operations.create_bundle(open_workspace(), "lab", name, data).uuid


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2]}),
        ([1, "two", None], [1, "two", None]),
        ((1, 2), [1, 2]),
        (42, 42),
        ("text", "text"),
        (None, None),
    ],
)
def test_cat_values(lab: Path, data: object, expected: object) -> None:
    _bundle("value", data)
    assert json.loads(ok("cat", "value").stdout) == expected
    assert ok("cat", "value", "--json").json() == expected


def test_cat_files(lab_any: Path, data_dir: Path, make_file) -> None:
    raw = _add("raw", data_dir)
    paths = ok("cat", "raw").stdout.splitlines()
    assert [Path(p).name for p in paths] == ["y.txt", "x.csv"]
    assert Path(paths[1]).read_text() == "a,b\n1,2\n"
    assert ok("cat", "--uuid", raw["uuid"][:8], "--json").json() == paths

    _add("one", make_file("a.txt", "hello\n"))
    [single] = ok("cat", "one").stdout.splitlines()
    assert Path(single).read_text() == "hello\n"
    assert ok("cat", "one", "--json").json() == single


def test_cat_dataframe(lab: Path) -> None:
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    _bundle("frame", frame)
    assert ok("cat", "frame").stdout == frame.to_string() + "\n"
    assert ok("cat", "frame", "--json").json() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    _bundle("nested", {"table": frame, "rows": 2})
    assert ok("cat", "nested", "--json").json() == {
        "table": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
        "rows": 2,
    }


def test_cat_unknown(lab: Path) -> None:
    expect_error(invoke("cat", "nope"), 3, "'nope'")
    expect_error(invoke("cat", "--uuid", "abcdef12"), 3, "abcdef12")
    expect_error(invoke("cat"), 2, "give a bundle name or --uuid")
    assert catalog_state() == {"lab": []}
