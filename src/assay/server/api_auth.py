"""Who is calling: bearer tokens checked against the catalog, per route scope.

Auth is on by default. A route declares the scope it needs with ``Depends(scope("write"))``
and receives the ``Principal``. With auth turned off (``--insecure-no-auth``, loopback only)
every caller is the local user with every scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assay.auth import tokens
from assay.core.errors import TokenInvalid


@dataclass(frozen=True)
class Principal:
    owner: str
    scopes: tuple[str, ...]
    token_id: str | None  # None when auth is off


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenInvalid("malformed Authorization header: use 'Bearer <token>'")
    return value.strip()


def scope(needed: str) -> Callable[[Request], object]:
    """A dependency that authenticates the request and requires ``needed``."""
    tokens.check_scope(needed)

    async def dependency(request: Request) -> Principal:
        state = request.app.state
        if not state.auth:
            return Principal(state.local_user, tuple(tokens.SCOPES), None)
        token = bearer(request)
        record = await run_in_threadpool(
            tokens.authenticate, token, needed, workspace=state.workspace
        )
        return Principal(record.owner, record.scopes, record.token_id)

    return dependency
