"""The REST API application: ``/api/v1`` routers, auth, problem+json errors, OpenAPI.

``create_api_app`` builds a FastAPI app over one workspace. ``api_router`` is the same set of
routes for mounting in a larger app (``assay serve``'s). ``python -m assay.server.api_app``
serves it with uvicorn (used by the tests and the benchmark; ``--fd`` takes an already
listening socket, so a caller knows the port before the server starts and need not poll).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from assay.bundles.workspace import open_workspace
from assay.core.errors import AssayError
from assay.core.settings import Settings
from assay.server import api_bundles, api_jobs, api_lineage, api_problems
from assay.server.api_auth import Principal, check_bind, local_user, scope

API_PREFIX = "/api/v1"
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(api_bundles.router)
    router.include_router(api_lineage.router)
    router.include_router(api_jobs.router)

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


def create_api_app(
    settings: Settings | None = None,
    *,
    auth: bool = True,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> FastAPI:
    """The API over the workspace of ``settings`` (default: from the environment)."""
    app = FastAPI(
        title="Assay API",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.workspace = open_workspace(settings)
    app.state.auth = auth
    app.state.local_user = local_user()
    app.state.max_upload_bytes = max_upload_bytes
    api_problems.install(app)
    app.include_router(api_router())
    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m assay.server.api_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fd", type=int, default=None, help="serve on this listening socket")
    parser.add_argument("--insecure-no-auth", action="store_true")
    parser.add_argument("--max-upload-bytes", type=int, default=DEFAULT_MAX_UPLOAD_BYTES)
    args = parser.parse_args(argv)
    host = args.host
    if args.fd is not None:
        host = socket.socket(fileno=socket.dup(args.fd)).getsockname()[0]
    try:
        check_bind(host, auth=not args.insecure_no_auth)
        app = create_api_app(auth=not args.insecure_no_auth, max_upload_bytes=args.max_upload_bytes)
    except AssayError as err:
        sys.stderr.write(f"error: {err.message}\n")
        return err.exit_code
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        fd=args.fd,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
