"""Issue 7's command-line contract: valid JSON only, one-line usage errors, duplicate tags
refused, and a fresh ASSAY_HOME that works without ceremony."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import catalog_state, expect_error, invoke, ok, store_blobs

from assay import api


def strict_json(text: str) -> Any:
    """Parse as RFC 8259 JSON: the tokens NaN, Infinity and -Infinity are refused."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"not valid JSON: {token} in {text!r}")

    return json.loads(text, parse_constant=refuse)


# -- item 4: --json never prints NaN or Infinity ---------------------------------------------
def test_json_output_has_null_for_nan_and_infinity(lab: Path) -> None:
    data = {"mean": float("nan"), "bounds": [float("-inf"), 1.5, float("inf")], "n": 3}
    with api.Bundle("lab", "stats") as bundle:
        bundle.add_data(data)
        bundle.add_params({"threshold": float("nan")})

    cat = strict_json(ok("cat", "stats", "--json").stdout)
    shown = strict_json(ok("show", "stats", "--json").stdout)
    listed = strict_json(ok("ls", "--json").stdout)

    assert cat == {"mean": None, "bounds": [None, 1.5, None], "n": 3}
    assert shown["params"] == {"threshold": None}
    assert [entry["name"] for entry in listed] == ["stats"]
    assert api.cat("lab", "stats")["n"] == 3  # what is stored is unchanged: only the output


# -- item 5: usage errors are one line, exit 2, JSON under --json -----------------------------
USAGE_ERRORS = [
    (("ls", "--bogus"), "No such option: --bogus"),
    (("--bogus", "ls"), "No such option: --bogus"),
    (("add", "raw"), "Missing argument 'PATH'"),
    (("questions", "ls", "--limit", "many"), "Invalid value for '--limit'"),
    (("search", "--before"), "Option '--before' requires an argument"),
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
    (("context", "nosuch"), "No such command 'nosuch'"),
]


@pytest.mark.parametrize(("args", "fragment"), USAGE_ERRORS)
def test_usage_errors_are_one_line(lab: Path, args: tuple[str, ...], fragment: str) -> None:
    run = invoke(*args)
    line = expect_error(run, 2, fragment)
    assert "╭" not in run.stderr and "Usage:" not in run.stderr
    assert run.stdout == ""
    assert line.startswith("error: ")


@pytest.mark.parametrize(("args", "fragment"), USAGE_ERRORS)
@pytest.mark.parametrize("where", ["first", "last"])
def test_usage_errors_under_json(
    lab: Path, args: tuple[str, ...], fragment: str, where: str
) -> None:
    argv = ("--json", *args) if where == "first" else (*args, "--json")
    if args[-1] == "--before" and where == "last":
        argv = ("search", "--json", "--before")  # '--json' would be taken as the value
    run = invoke(*argv)
    expect_error(run, 2, fragment)
    error = strict_json(run.stdout)["error"]
    assert error["code"] == "usage_error"
    assert fragment in error["message"]


def test_help_still_shows(lab: Path) -> None:
    assert "Usage" in ok("ls", "--help").stdout
    group = invoke("context")  # a group alone prints its help, as before
    assert "create" in group.stdout + group.stderr


# -- item 8: a tag key given twice is refused ---------------------------------------------------
def test_duplicate_tag_keys_are_refused_and_nothing_is_written(
    lab: Path, data_dir: Path, sqlite_home: Path
) -> None:
    run = invoke("add", "raw", data_dir, "--tag", "k=v", "--tag", "k=w")
    expect_error(run, 2, "tag 'k' is given twice", "k=v", "k=w")
    assert catalog_state() == {"lab": []}
    assert store_blobs(sqlite_home) == []

    ok("add", "raw", data_dir, "--tag", "k=v")
    before = catalog_state()
    for args in (
        ("search", "-t", "k=v", "-t", "k=v"),  # the same value twice: still one key twice
        ("commit", "raw", "-t", "k=v", "-t", "k=w"),
        ("rm", "raw", "-t", "k=v", "-t", "k=w"),
    ):
        expect_error(invoke(*args, "--json"), 2, "given twice")
    assert catalog_state() == before


# -- item 11: a fresh ASSAY_HOME works without ceremony --------------------------------------
def test_fresh_home_makes_a_default_context(sqlite_home: Path, data_dir: Path) -> None:
    assert not sqlite_home.exists() or api.ls_contexts() == []

    added = ok("add", "x", data_dir, "--json").json()
    listed = ok("ls", "--json").json()

    assert added["bundle"]["context"] == "default"
    assert [entry["name"] for entry in listed] == ["x"]
    assert api.current_context() == "default"
    assert [info.name for info in api.ls_contexts()] == ["default"]


def test_fresh_home_ls_is_empty_not_an_error(sqlite_home: Path) -> None:
    assert ok("ls", "--json").json() == []
    assert ok("context", "ls", "--json").json()[0]["name"] == "default"
