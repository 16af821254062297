"""Request dependencies shared by the routers: the workspace, the caller's token."""

from __future__ import annotations

from fastapi import Request

from assay.bundles.workspace import Workspace


def workspace(request: Request) -> Workspace:
    """The workspace opened when the app started."""
    found: Workspace = request.app.state.workspace
    return found


def token(request: Request) -> str | None:
    """The token from ``?token=`` or ``Authorization: Bearer ...`` (the query wins)."""
    query = request.query_params.get("token")
    if query:
        return query
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None
