"""Scoped bearer tokens: create, list, revoke, and check a presented token.

A token reads ``assay_<token_id>_<secret>``: ``token_id`` (12 hex digits) finds the row, the
secret is 32 random bytes (URL-safe base64). Only the SHA-256 of the whole token is stored,
and the check compares digests in constant time, so a stolen catalog holds no usable token
and timing does not reveal how much of a guess was right. The secret is shown once, when the
token is made.

Scopes are ordered: ``admin`` allows everything ``write`` allows, which allows everything
``read`` allows. A token carries one or more scopes; its strongest one decides.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import token_queries
from assay.core.errors import (
    InsufficientScope,
    InvalidInput,
    TokenExpired,
    TokenInvalid,
    TokenNotFound,
    TokenRevoked,
)

SCOPES = ("read", "write", "admin")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
_PREFIX = "assay_"
_TOKEN_PATTERN = re.compile(r"^assay_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
#: ``last_used`` is written at most this often per token: a read must not cost a write.
_TOUCH_INTERVAL_S = 60.0


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored (never its secret)."""

    token_id: str
    owner: str
    name: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None

    def allows(self, scope: str) -> bool:
        """True when one of this token's scopes is ``scope`` or stronger."""
        needed = _RANK[check_scope(scope)]
        return any(_RANK[held] >= needed for held in self.scopes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "owner": self.owner,
            "name": self.name,
            "scopes": list(self.scopes),
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked,
            "last_used": self.last_used,
        }


def check_scope(scope: str) -> str:
    if scope not in _RANK:
        raise InvalidInput(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        owner=row.owner,
        name=row.name,
        scopes=tuple(row.scopes.split(",")),
        created=row.created,
        expires=row.expires,
        revoked=row.revoked,
        last_used=row.last_used,
    )


def create_token(
    owner: str,
    scopes: tuple[str, ...] | list[str],
    *,
    name: str = "",
    expires_in_s: float | None = None,
    workspace: Workspace | None = None,
) -> tuple[TokenRecord, str]:
    """Make a token for ``owner``; returns its record and the token text (shown only now)."""
    workspace = workspace or open_workspace()
    if not isinstance(owner, str) or not _OWNER_PATTERN.fullmatch(owner):
        raise InvalidInput(
            f"invalid user {owner!r}: use 1-128 letters, digits, '.', '_', '@' or '-'"
        )
    if not scopes:
        raise InvalidInput(f"a token needs at least one scope ({', '.join(SCOPES)})")
    wanted = sorted({check_scope(s) for s in scopes}, key=_RANK.__getitem__)
    if len(name) > 128:
        raise InvalidInput("a token name has at most 128 characters")
    if expires_in_s is not None and expires_in_s <= 0:
        raise InvalidInput("a token's lifetime must be positive")
    now = time.time()
    token_id = secrets.token_hex(6)
    token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    expires = now + expires_in_s if expires_in_s is not None else None
    row = {
        "token_id": token_id,
        "owner": owner,
        "name": name,
        "scopes": ",".join(wanted),
        "token_hash": _digest(token),
        "created": now,
        "expires": expires,
        "revoked": None,
        "last_used": None,
    }
    with workspace.write() as conn:
        token_queries.insert_token(conn, row)
    record = TokenRecord(
        token_id=token_id,
        owner=owner,
        name=name,
        scopes=tuple(wanted),
        created=now,
        expires=expires,
        revoked=None,
        last_used=None,
    )
    return record, token


def list_tokens(
    owner: str | None = None,
    *,
    include_revoked: bool = False,
    workspace: Workspace | None = None,
) -> list[TokenRecord]:
    """Tokens (oldest first), of one owner or all; revoked ones only when asked."""
    workspace = workspace or open_workspace()
    with workspace.read() as conn:
        return [_record(r) for r in token_queries.token_rows(conn, owner, include_revoked)]


def revoke_token(token_id: str, *, workspace: Workspace | None = None) -> TokenRecord:
    """Revoke a token at once (it fails its next check); revoking twice is harmless."""
    workspace = workspace or open_workspace()
    if token_id.startswith(_PREFIX):  # a whole token pasted: take its id, never store it
        match = _TOKEN_PATTERN.fullmatch(token_id)
        token_id = match.group(1) if match else token_id
    with workspace.write() as conn:
        token_queries.set_revoked(conn, token_id, time.time())
        row = token_queries.token_row(conn, token_id)
    if row is None:
        raise TokenNotFound(f"no token with id {token_id!r} (see 'assay tokens ls')")
    return _record(row)


def first_admin_token(
    owner: str, *, workspace: Workspace | None = None
) -> tuple[TokenRecord, str] | None:
    """A new 90-day admin token for ``owner`` when no active admin token exists (a fresh
    server's first token, printed once by ``assay serve``); None otherwise."""
    workspace = workspace or open_workspace()
    now = time.time()
    for record in list_tokens(workspace=workspace):
        if "admin" in record.scopes and (record.expires is None or record.expires > now):
            return None
    return create_token(
        owner,
        ["admin"],
        name="first admin token (assay serve)",
        expires_in_s=90 * 86400.0,
        workspace=workspace,
    )


def authenticate(
    token: str | None, scope: str = "read", *, workspace: Workspace | None = None
) -> TokenRecord:
    """The record of a presented ``token`` that is valid now and allows ``scope``.

    Raises ``TokenInvalid`` (missing, malformed, unknown, wrong secret), ``TokenExpired``,
    ``TokenRevoked`` (all 401) or ``InsufficientScope`` (403).
    """
    check_scope(scope)
    workspace = workspace or open_workspace()
    if not token:
        raise TokenInvalid("a bearer token is required: send 'Authorization: Bearer <token>'")
    match = _TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise TokenInvalid("malformed token: expected 'assay_<id>_<secret>'")
    with workspace.read() as conn:
        row = token_queries.token_row(conn, match.group(1))
    # Compare digests even when the id is unknown, so both paths cost the same.
    stored = row.token_hash if row is not None else "0" * 64
    if not hmac.compare_digest(stored, _digest(token)) or row is None:
        raise TokenInvalid("unknown token")
    record = _record(row)
    now = time.time()
    if record.revoked is not None:
        raise TokenRevoked(f"token {record.token_id} was revoked")
    if record.expires is not None and record.expires <= now:
        raise TokenExpired(f"token {record.token_id} has expired; create a new one")
    if not record.allows(scope):
        raise InsufficientScope(
            f"token {record.token_id} has scope {', '.join(record.scopes)}; this needs {scope!r}",
            {"required_scope": scope},
        )
    if record.last_used is None or now - record.last_used > _TOUCH_INTERVAL_S:
        with workspace.write() as conn:
            token_queries.touch(conn, record.token_id, now)
    return record
