"""``assay tokens create | ls | revoke`` through the real command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))

from cli_helpers import expect_error, invoke, ok

from assay.auth import tokens
from assay.core.errors import TokenRevoked


def test_create_list_revoke_round_trip(sqlite_home: Path) -> None:
    created = ok(
        "tokens", "create", "--user", "ada", "-s", "write", "--name", "ci", "--json"
    ).json()
    assert created["user"] == "ada" and created["scopes"] == ["write"]
    assert created["expires"] is not None  # 90 days by default
    token = created["token"]
    assert tokens.authenticate(token, "write").owner == "ada"

    listed = ok("tokens", "ls", "--json").json()
    assert [t["token_id"] for t in listed] == [created["token_id"]]
    assert "token" not in listed[0]
    assert token not in ok("tokens", "ls").stdout

    ok("tokens", "revoke", created["token_id"])
    assert ok("tokens", "ls", "--json").json() == []
    assert ok("tokens", "ls", "--all", "--json").json()[0]["revoked"] is not None
    with pytest.raises(TokenRevoked):
        tokens.authenticate(token)


def test_human_create_prints_the_token_once(sqlite_home: Path) -> None:
    run = ok("tokens", "create", "-u", "ada", "--expires", "never")
    token = run.stdout.splitlines()[0]
    assert tokens.authenticate(token).expires is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--scope", "root"), "unknown scope"),
        (("--expires", "soon"), "cannot read the lifetime"),
        (("--expires", "0d"), "cannot read the lifetime"),
        (("--user", "a b"), "invalid user"),
    ],
)
def test_bad_create_options_fail_cleanly_and_store_nothing(
    sqlite_home: Path, args: tuple[str, ...], fragment: str
) -> None:
    expect_error(invoke("tokens", "create", *args), 2, fragment)
    assert ok("tokens", "ls", "--all", "--json").json() == []


def test_revoking_an_unknown_token_exits_3(sqlite_home: Path) -> None:
    expect_error(invoke("tokens", "revoke", "0123456789ab"), 3, "no token")


def test_serve_without_auth_is_refused_off_loopback(sqlite_home: Path) -> None:
    expect_error(invoke("serve", "--host", "0.0.0.0", "--insecure-no-auth"), 2, "refused for")
    expect_error(invoke("serve", "--host", "::", "--insecure-no-auth"), 2, "refused for")


def test_a_first_admin_token_is_made_once(sqlite_home: Path) -> None:
    made = tokens.first_admin_token("ada")
    assert made is not None and tokens.authenticate(made[1], "admin").owner == "ada"
    assert tokens.first_admin_token("ada") is None
    tokens.revoke_token(made[0].token_id)
    assert tokens.first_admin_token("ada") is not None
