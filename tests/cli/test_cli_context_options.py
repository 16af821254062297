"""``--json`` and ``--context/-c`` on the commands that touch bundles, questions and remotes
(issue 7, item 6), and what ``-c`` means on the context commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok

from assay import api

#: Every command touching bundles, questions or remotes (gc/verify: see the store binding work).
COMMANDS = [
    ("add",),
    ("ls",),
    ("cat",),
    ("show",),
    ("commit",),
    ("rm",),
    ("search",),
    ("lineage",),
    ("push",),
    ("pull",),
    ("localize",),
    ("delocalize",),
    ("run",),
    ("context", "create"),
    ("context", "ls"),
    ("context", "switch"),
    ("context", "rm"),
    ("remote", "add"),
    ("remote", "show"),
    ("questions", "ls"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_json_and_context_options_exist(sqlite_home: Path, command: tuple[str, ...]) -> None:
    text = " ".join(ok(*command, "--help").stdout.split())
    assert "--json" in text
    assert "--context" in text and "-c" in text


def test_context_commands_take_dash_c(sqlite_home: Path) -> None:
    assert ok("context", "create", "-c", "lab", "--json").json() == {
        "context": "lab",
        "created": True,
    }
    ok("context", "create", "other")
    ok("context", "switch", "-c", "lab")
    assert api.current_context() == "lab"
    listed = ok("context", "ls", "-c", "other", "--json").json()
    assert [entry["name"] for entry in listed] == ["other"]
    expect_error(invoke("context", "ls", "-c", "nope"), 3, "no context named 'nope'")

    before = catalog_state()
    expect_error(invoke("context", "rm", "lab", "-c", "other"), 2, "two context names")
    expect_error(invoke("context", "rm"), 2, "NAME or -c NAME")
    assert catalog_state() == before

    ok("context", "rm", "-c", "other")
    assert [info.name for info in api.ls_contexts()] == ["lab"]
