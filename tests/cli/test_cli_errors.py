"""The error contract: one line on stderr, a stable exit code, JSON errors, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok

from assay.bundles import operations
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.cli.main import main

NO_CONTEXT = "error: no current context: run 'assay context switch NAME' or pass --context NAME"


@pytest.mark.parametrize(
    "args",
    [
        ("ls",),
        ("add", "raw", "."),
        ("cat", "raw"),
        ("show", "raw"),
        ("commit", "raw"),
        ("rm", "raw"),
        ("search",),
        ("lineage", "raw"),
        ("verify",),
    ],
)
def test_no_current_context(sqlite_home: Path, args: tuple[str, ...]) -> None:
    ok("context", "create", "lab")  # exists, but is not current
    line = expect_error(invoke(*args), 2)
    assert line == NO_CONTEXT
    assert catalog_state() == {"lab": []}


def test_unknown_context_on_bundle_commands(lab: Path) -> None:
    for args in (("ls",), ("show", "x"), ("cat", "x"), ("rm", "x"), ("lineage", "x")):
        expect_error(invoke(*args, "-c", "nope"), 3, "no context named 'nope'")
        expect_error(invoke(*args, "-c", "no/pe"), 2, "invalid context name 'no/pe'")


@pytest.fixture
def twins(lab: Path) -> tuple[str, str]:
    """Two bundles whose uuids share their first four hex digits."""
    workspace = open_workspace()
    first = "abcd0000-0000-4000-8000-000000000001"
    second = "abcd1111-0000-4000-8000-000000000002"
    operations.create_bundle(workspace, "lab", "first", {"n": 1}, bundle_uuid=first)
    operations.create_bundle(workspace, "lab", "second", {"n": 2}, bundle_uuid=second)
    return first, second


def test_ambiguous_uuid_prefix(twins: tuple[str, str]) -> None:
    first, second = twins
    before = catalog_state()
    for args in (
        ("show", "abcd"),
        ("cat", "--uuid", "abcd"),
        ("commit", "--uuid", "abcd"),
        ("rm", "--uuid", "abcd"),
        ("lineage", "abcd"),
        ("verify", "abcd"),
    ):
        expect_error(invoke(*args), 4, "'abcd' matches several bundles", first, second)
    assert catalog_state() == before
    assert ok("show", "abcd0", "--json").json()["uuid"] == first
    assert ok("cat", "--uuid", "abcd1").json() == {"n": 2}
    expect_error(invoke("show", "abc"), 3)  # too short to be a prefix: just not found


def test_json_errors_go_to_stdout_as_one_document(twins: tuple[str, str]) -> None:
    for args, code, exit_code in (
        (("show", "abcd", "--json"), "ambiguous_reference", 4),
        (("--json", "show", "nope"), "bundle_not_found", 3),
        (("add", "x", "/no/such/path", "--json"), "path_not_found", 2),
        (("add", "x", ".", "--tag", "Bad=1", "--json"), "invalid_tag", 2),
        (("context", "create", "lab", "--json"), "context_exists", 4),
        (("ls", "-c", "nope", "--json"), "context_not_found", 3),
    ):
        run = invoke(*args)
        line = expect_error(run, exit_code)
        document = json.loads(run.stdout)
        assert document["error"]["code"] == code
        assert f"error: {document['error']['message']}" == line


def test_unreachable_catalog(sqlite_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_CATALOG_URL", "postgresql+psycopg://u:secretpw@127.0.0.1:1/x")
    close_workspaces()
    for args in (("context", "ls"), ("ls", "-c", "lab"), ("gc",)):
        line = expect_error(invoke(*args), 6, "cannot reach the catalog", "127.0.0.1:1")
        assert "secretpw" not in line
        assert "***" in line
    run = invoke("context", "ls", "--json")
    assert run.json()["error"]["code"] == "catalog_unavailable"
    assert "secretpw" not in run.stdout


def test_bad_settings_are_one_line(sqlite_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_MAX_UNCOMMITTED", "lots")
    expect_error(invoke("context", "ls"), 2, "ASSAY_MAX_UNCOMMITTED")


def _damage_catalog(home: Path) -> None:
    """A real fault no Assay error describes: a table dropped behind Assay's back."""
    with sqlite3.connect(home / "catalog.db") as conn:
        conn.execute("DROP TABLE bundle_files")
        conn.execute("DROP TABLE tags")
        conn.execute("DROP TABLE links")
        conn.execute("DROP TABLE bundles")


def test_unexpected_exception_is_one_line_exit_70(
    sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("context", "create", "lab").exit_code == 0
    _damage_catalog(sqlite_home)
    run = invoke("context", "ls")
    assert run.exit_code == 70
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("internal error: OperationalError")
    assert "ASSAY_DEBUG=1" in lines[0]
    assert "Traceback" not in run.stderr

    run = invoke("context", "ls", "--json")
    assert run.exit_code == 70
    assert run.json()["error"]["code"] == "internal_error"

    monkeypatch.setenv("ASSAY_DEBUG", "1")
    run = invoke("context", "ls")
    assert run.exit_code == 70
    assert "Traceback" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("internal error: OperationalError")


def test_usage_errors_keep_exit_2(lab: Path) -> None:
    for args in (("ls", "--bogus"), ("nosuchcommand",), ("add", "onlyname"), ("context",)):
        run = invoke(*args)
        assert run.exit_code == 2, str(run)
        assert "Traceback" not in run.stderr


def test_version(sqlite_home: Path) -> None:
    run = ok("--version")
    assert run.stdout.startswith("assay ")


def test_main_returns_exit_codes(sqlite_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("assay ")
    assert main(["context", "create", "lab", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"context": "lab", "created": True}
    assert main(["ls"]) == 2  # a context exists but none is current
    captured = capsys.readouterr()
    assert captured.err == NO_CONTEXT + "\n"
    assert captured.out == ""
    assert main(["show", "nope", "-c", "lab"]) == 3
    assert main(["ls", "--bogus"]) == 2
