"""The REST API: the ``/api/v1`` routers (mounted by ``assay.server.app.create_app``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from assay.server import api_bundles, api_environments, api_jobs, api_lineage, api_stream
from assay.server.api_auth import Principal, scope

API_PREFIX = "/api/v1"
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(api_bundles.router)
    router.include_router(api_lineage.router)
    router.include_router(api_jobs.router)
    router.include_router(api_environments.router)
    router.include_router(api_stream.router)

    @router.get("/whoami", tags=["auth"], summary="The caller's user and scopes")
    def whoami(principal: Annotated[Principal, Depends(scope("read"))]) -> dict[str, Any]:
        return {
            "user": principal.owner,
            "scopes": list(principal.scopes),
            "token_id": principal.token_id,
        }

    @router.get("/health", tags=["health"], summary="Liveness (no auth)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return router
