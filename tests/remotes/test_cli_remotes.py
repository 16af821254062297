"""The remote commands on the command line: output, --json, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from remote_helpers import Remote

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import catalog_state, expect_error, invoke, ok


@pytest.fixture
def lab(sqlite_home: Path) -> Path:
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    return sqlite_home


def _data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "b.txt").write_text("beta\n")
    return root


def test_remote_add_show_push_pull_localize(
    lab: Path, remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = ok("remote", "add", "lab", remote.url, "--remote-context", "shared", "--json").json()
    assert (added["remote_context"], added["url"]) == ("shared", remote.url)
    again = ok("remote", "add", "lab", remote.url, "--remote-context", "shared").stdout
    assert "bound to remote" in " ".join(again.split())
    ok("add", "data", _data(tmp_path))
    expect_error(invoke("push", "data"), 4, "not committed", "assay commit data")
    ok("commit", "data")
    pushed = ok("push", "--json").json()
    assert len(pushed["pushed"]) == 1 and pushed["blobs_uploaded"] == 2
    assert "pushed 0 bundle(s)" in ok("push").stdout
    shown = ok("remote", "show", "--json").json()["remote"]
    assert (shown["remote_context"], shown["pushed"], shown["not_localized"]) == ("shared", 1, [])
    assert "shared@" in ok("context", "ls").stdout

    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home-b"))
    from assay.bundles.workspace import close_workspaces

    close_workspaces()
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    ok("remote", "add", "lab", remote.url, "--remote-context", "shared")
    pulled = ok("pull", "--json").json()
    assert pulled["pulled"] == pushed["pushed"]
    expect_error(invoke("cat", "data"), 4, "not localized", "assay localize data")
    assert ok("remote", "show", "--json").json()["remote"]["not_localized"] == pulled["pulled"]
    assert ok("localize", "data", "--json").json()["blobs_downloaded"] == 2
    assert "alpha" in Path(ok("cat", "data", "--json").json()[0]).read_text()
    assert ok("delocalize", "data", "--json").json()["blobs_removed"] == 2
    expect_error(invoke("cat", "data"), 4, "not localized")
    ok("pull", "data", "--localize")
    state = catalog_state()
    removed = ok("rm", "data", "--remote", "--json").json()
    assert removed["removed"][0]["name"] == "data"
    assert catalog_state() == state  # the local copy stays
    expect_error(invoke("rm", "data", "--remote", "--old"), 2, "--old cannot be used with --remote")


def test_cli_errors_are_one_line(lab: Path, remote: Remote, tmp_path: Path) -> None:
    expect_error(invoke("push"), 3, "has no remote", "assay remote add lab URL")
    expect_error(
        invoke("remote", "add", "lab", f"file://{tmp_path}/no/such/dir"), 3, "does not exist"
    )
    ok("remote", "add", "lab", remote.url)
    other = tmp_path / "other"
    other.mkdir()
    expect_error(
        invoke("remote", "add", "lab", f"file://{other}"), 4, "already has remote", "--force"
    )
    ok("remote", "add", "lab", f"file://{other}", "--force")
    expect_error(invoke("localize"), 2, "give a bundle name or --uuid")
    expect_error(invoke("pull", "nothing"), 3, "no bundle with name 'nothing' on remote")
    assert ok("remote", "show", "--json").json()["remote"]["url"] == f"file://{other}"


def test_remote_show_without_a_remote(lab: Path) -> None:
    assert ok("remote", "show", "--json").json() == {"context": "lab", "remote": None}
    assert "has no remote" in ok("remote", "show").stdout
