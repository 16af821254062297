"""API tokens: scopes, expiry, revocation, hashing at rest; domain and CLI, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from assay.auth import tokens
from assay.bundles.workspace import open_workspace
from assay.catalog.schema import api_tokens
from assay.core.errors import (
    InsufficientScope,
    InvalidInput,
    TokenExpired,
    TokenInvalid,
    TokenNotFound,
    TokenRevoked,
)


def _stored_rows() -> list[dict[str, object]]:
    with open_workspace().read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(api_tokens))]


def test_a_token_is_stored_hashed_and_authenticates(assay_home: Path) -> None:
    record, token = tokens.create_token("ada", ["write"], name="laptop")
    assert token.startswith(f"assay_{record.token_id}_")
    rows = _stored_rows()
    assert len(rows) == 1
    # The secret is nowhere in the catalog; only its SHA-256 is.
    assert token not in repr(rows)
    assert token.split("_")[-1] not in repr(rows)
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    checked = tokens.authenticate(token, "read")
    assert (checked.owner, checked.scopes, checked.name) == ("ada", ("write",), "laptop")
    assert tokens.authenticate(token, "write").token_id == record.token_id
    assert _stored_rows()[0]["last_used"] is not None


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (["read"], "read", True),
        (["read"], "write", False),
        (["read"], "admin", False),
        (["write"], "read", True),
        (["write"], "admin", False),
        (["admin"], "write", True),
        (["read", "admin"], "write", True),
    ],
)
def test_scopes_are_ordered(assay_home: Path, held: list[str], needed: str, allowed: bool) -> None:
    _, token = tokens.create_token("ada", held)
    if allowed:
        assert tokens.authenticate(token, needed).owner == "ada"
    else:
        with pytest.raises(InsufficientScope) as caught:
            tokens.authenticate(token, needed)
        assert caught.value.details == {"required_scope": needed}


def test_an_expired_token_is_refused(assay_home: Path) -> None:
    record, token = tokens.create_token("ada", ["admin"], expires_in_s=3600)
    assert tokens.authenticate(token).token_id == record.token_id
    with open_workspace().write() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.token_id == record.token_id)
            .values(expires=time.time() - 1)
        )
    with pytest.raises(TokenExpired, match="expired"):
        tokens.authenticate(token)


def test_a_revoked_token_is_refused_and_kept_for_the_record(assay_home: Path) -> None:
    record, token = tokens.create_token("ada", ["read"])
    _, other = tokens.create_token("bob", ["read"])
    revoked = tokens.revoke_token(record.token_id)
    assert revoked.revoked is not None
    with pytest.raises(TokenRevoked):
        tokens.authenticate(token)
    # Revoking again is harmless and keeps the first time; other tokens are untouched.
    assert tokens.revoke_token(record.token_id).revoked == revoked.revoked
    assert tokens.authenticate(other).owner == "bob"
    assert record.token_id not in [r.token_id for r in tokens.list_tokens()]
    assert record.token_id in [r.token_id for r in tokens.list_tokens(include_revoked=True)]


@pytest.mark.parametrize(
    "presented",
    [None, "", "Bearer x", "assay_zz_notatoken", "assay_0123456789ab_" + "A" * 43],
)
def test_missing_malformed_or_unknown_tokens_are_refused(
    assay_home: Path, presented: str | None
) -> None:
    tokens.create_token("ada", ["read"])
    with pytest.raises(TokenInvalid):
        tokens.authenticate(presented)


def test_a_right_id_with_a_wrong_secret_is_refused(assay_home: Path) -> None:
    _, token = tokens.create_token("ada", ["admin"])
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(TokenInvalid):
        tokens.authenticate(forged)
    assert _stored_rows()[0]["last_used"] is None  # a failed check leaves no trace of use


@pytest.mark.parametrize(
    ("owner", "scopes", "expires"),
    [
        ("", ["read"], None),
        ("a b", ["read"], None),
        ("ada", [], None),
        ("ada", ["root"], None),
        ("ada", ["read"], -5.0),
    ],
)
def test_bad_token_requests_are_refused_and_nothing_is_stored(
    assay_home: Path, owner: str, scopes: list[str], expires: float | None
) -> None:
    with pytest.raises(InvalidInput):
        tokens.create_token(owner, scopes, expires_in_s=expires)
    assert _stored_rows() == []


def test_revoking_an_unknown_token_says_so(assay_home: Path) -> None:
    with pytest.raises(TokenNotFound):
        tokens.revoke_token("0123456789ab")


def test_tokens_are_listed_per_user(assay_home: Path) -> None:
    tokens.create_token("ada", ["read"])
    tokens.create_token("bob", ["write"])
    assert [r.owner for r in tokens.list_tokens("bob")] == ["bob"]
    assert sorted(r.owner for r in tokens.list_tokens()) == ["ada", "bob"]
