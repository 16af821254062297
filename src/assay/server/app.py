"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI

from assay.bundles.workspace import open_workspace
from assay.core.settings import Settings
from assay.pjobs.index_jobs import recover
from assay.server import api_ocean, problems, ui, ui_jobs, ui_pages
from assay.server.api_app import API_PREFIX, DEFAULT_MAX_UPLOAD_BYTES, api_router
from assay.server.api_auth import TokenCache
from assay.server.routers import health, pipelinejobs

#: Options of ``create_app`` for uvicorn's worker processes (made from an import string).
PUSH_UPLOADS_ENV = "ASSAY_SERVER_PUSH_UPLOADS"
MAX_UPLOAD_ENV = "ASSAY_SERVER_MAX_UPLOAD_BYTES"


def create_app(
    settings: Settings | None = None,
    *,
    auth: bool = True,
    max_upload_bytes: int | None = None,
    push_uploads: bool | None = None,
) -> FastAPI:
    """A new app over the workspace of ``settings`` (default: from the environment).

    At start it opens the workspace (migrating the catalog if needed) and settles what a
    previous server left half-done (``assay.pjobs.index_jobs.recover``). ``auth=False``
    (``--insecure-no-auth``) serves the REST API to anyone as the local user: the caller
    must bind loopback only (``assay.server.api_auth.check_bind``). ``push_uploads``
    (``--push-uploads``; default: ``ASSAY_SERVER_PUSH_UPLOADS=1``, which is how uvicorn's
    worker processes get it) pushes a bundle committed through the API to its context's
    remote, so other machines sharing the catalog can read its files.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workspace = open_workspace(settings)
        app.state.workspace = workspace
        recover(workspace)
        yield

    app = FastAPI(
        title="Assay",
        version="1",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.auth = auth
    app.state.local_user = getpass.getuser()
    if max_upload_bytes is None:
        max_upload_bytes = int(os.environ.get(MAX_UPLOAD_ENV) or DEFAULT_MAX_UPLOAD_BYTES)
    app.state.max_upload_bytes = max_upload_bytes
    if push_uploads is None:
        push_uploads = os.environ.get(PUSH_UPLOADS_ENV, "") == "1"
    app.state.push_uploads = push_uploads
    app.state.token_cache = TokenCache.from_env()
    problems.install(app)
    app.include_router(health.router)
    app.include_router(pipelinejobs.router)
    app.include_router(api_router())
    app.include_router(api_ocean.router)
    ui.install(app)
    app.include_router(ui_jobs.router)
    app.include_router(ui_pages.router)
    return app
