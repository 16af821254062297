"""``assay context create | ls | switch | rm``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok

from assay import api


def test_context_lifecycle(assay_home: Path) -> None:
    run = ok("context", "create", "lab")
    assert "created context 'lab'" in run.stdout
    ok("context", "create", "other")
    assert api.current_context() is None

    run = ok("context", "switch", "lab")
    assert "switched to context 'lab'" in run.stdout
    assert api.current_context() == "lab"

    listing = ok("context", "ls").stdout.splitlines()
    current = [line.split() for line in listing if line.startswith("*")]
    assert [row[1] for row in current] == ["lab"]
    assert any(line.split()[:1] == ["other"] for line in listing)

    ok("context", "rm", "lab")
    assert api.current_context() is None  # removing the current context unsets it
    assert [c.name for c in api.ls_contexts()] == ["other"]


def test_context_json(assay_home: Path) -> None:
    assert ok("context", "create", "lab", "--json").json() == {"context": "lab", "created": True}
    assert ok("--json", "context", "switch", "lab").json() == {"current_context": "lab"}
    listed = ok("context", "ls", "--json").json()
    assert [(c["name"], c["current"], c["bundles"], c["committed"]) for c in listed] == [
        ("lab", True, 0, 0)
    ]
    assert listed[0]["created"].endswith("+00:00")
    assert ok("context", "rm", "lab", "--json").json() == {"deleted": "lab"}
    assert ok("context", "ls", "--json").json() == []


def test_empty_context_listing_says_what_to_do(sqlite_home: Path) -> None:
    assert "assay context create NAME" in ok("context", "ls").stdout


def test_create_existing_context_is_refused(sqlite_home: Path, make_file) -> None:
    ok("context", "create", "lab")
    ok("add", "raw", make_file("a.txt", "a"), "-c", "lab")
    before = catalog_state()
    expect_error(invoke("context", "create", "lab"), 4, "context 'lab' already exists")
    assert catalog_state() == before


@pytest.mark.parametrize("name", ["a/b", "a\\b", "..", "tab\tname", ""])
def test_bad_context_names_are_refused(sqlite_home: Path, name: str) -> None:
    expect_error(invoke("context", "create", name), 2, "invalid context name")
    expect_error(invoke("context", "switch", name), 2, "invalid context name")
    assert api.ls_contexts() == []
    assert api.current_context() is None


def test_unknown_context(sqlite_home: Path) -> None:
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    expect_error(invoke("context", "switch", "nope"), 3, "no context named 'nope'")
    expect_error(invoke("context", "rm", "nope"), 3, "no context named 'nope'")
    assert api.current_context() == "lab"
    assert [c.name for c in api.ls_contexts()] == ["lab"]


def test_rm_context_with_committed_bundles_needs_force(lab: Path, make_file) -> None:
    ok("add", "raw", make_file("a.txt", "a"))
    ok("commit", "raw")
    before = catalog_state()
    line = expect_error(invoke("context", "rm", "lab"), 4, "committed", "raw@", "--force")
    assert "'lab'" in line
    assert catalog_state() == before
    assert api.current_context() == "lab"

    ok("context", "rm", "lab", "--force")
    assert api.ls_contexts() == []
    assert api.current_context() is None
    assert ok("ls", "--json").json() == []  # no context left: 'default' is made, as on a new home
    assert api.current_context() == "default"
