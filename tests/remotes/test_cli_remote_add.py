"""``assay remote add REMOTE_CONTEXT URL`` as the README writes it, against a real moto_server
(issue 7, item 12), and the older form keeping its meaning."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from remote_helpers import make_bucket

from assay import api

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import catalog_state, expect_error, invoke, ok


@pytest.fixture
def bucket_url(aws_env: str) -> str:
    """``s3://<fresh bucket>/team`` on the session's moto_server."""
    return f"s3://{make_bucket(aws_env)}/team"


def test_the_readme_form_binds_the_current_context(
    sqlite_home: Path, bucket_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "wind.csv").write_text("1,2\n")
    ok("context", "create", "analysis")
    ok("context", "switch", "analysis")
    ok("add", "measurements", data)
    ok("commit", "measurements")

    bound = ok("remote", "add", "lab", bucket_url, "--json").json()  # as in the README
    pushed = ok("push", "--json").json()

    assert (bound["context"], bound["remote_context"], bound["url"]) == (
        "analysis",
        "lab",
        bucket_url,
    )
    assert len(pushed["pushed"]) == 1
    assert [info.remote for info in api.ls_contexts()] == [f"lab@{bucket_url}"]
    shown = ok("remote", "show", "-c", "analysis", "--json").json()
    assert shown["remote"]["remote_context"] == "lab"


def test_dash_c_binds_another_context(sqlite_home: Path, bucket_url: str) -> None:
    ok("context", "create", "analysis")
    ok("context", "create", "archive")
    ok("context", "switch", "analysis")

    ok("remote", "add", "shared", bucket_url, "-c", "archive")

    remotes = {info.name: info.remote for info in api.ls_contexts()}
    assert remotes == {"analysis": None, "archive": f"shared@{bucket_url}"}


def test_a_fresh_home_binds_its_default_context(sqlite_home: Path, bucket_url: str) -> None:
    bound = ok("remote", "add", "lab", bucket_url, "--json").json()
    assert (bound["context"], bound["remote_context"]) == ("default", "lab")


def test_older_forms_keep_their_meaning(sqlite_home: Path, bucket_url: str) -> None:
    ok("context", "create", "lab")  # exists, none current: 'remote add lab URL' meant this one
    ok("remote", "add", "lab", bucket_url)
    assert [info.remote for info in api.ls_contexts()] == [f"lab@{bucket_url}"]

    ok("context", "create", "other")
    ok("remote", "add", "other", bucket_url, "--remote-context", "shared")  # old option form
    assert {i.name: i.remote for i in api.ls_contexts()}["other"] == f"shared@{bucket_url}"


def test_an_ambiguous_first_argument_is_refused(sqlite_home: Path, bucket_url: str) -> None:
    ok("context", "create", "lab")
    ok("context", "create", "analysis")
    ok("context", "switch", "analysis")
    before = catalog_state()

    line = expect_error(invoke("remote", "add", "lab", bucket_url), 2, "ambiguous")
    both = invoke("remote", "add", "lab", bucket_url, "-c", "lab", "--remote-context", "x")

    assert "-c lab" in line and "-c analysis" in line
    expect_error(both, 2, "not both")
    assert [info.remote for info in api.ls_contexts()] == [None, None]
    assert catalog_state() == before
