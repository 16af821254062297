"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from assay.bundles.workspace import open_workspace
from assay.core.settings import Settings
from assay.pjobs.index_jobs import recover
from assay.server import problems
from assay.server.routers import health, pipelinejobs


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app over the workspace of ``settings`` (default: from the environment).

    At start it opens the workspace (migrating the catalog if needed) and settles what a
    previous server left half-done (``assay.pjobs.index_jobs.recover``).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workspace = open_workspace(settings)
        app.state.workspace = workspace
        recover(workspace)
        yield

    app = FastAPI(title="Assay", lifespan=lifespan)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(pipelinejobs.router)
    return app
