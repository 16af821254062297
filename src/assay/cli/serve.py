"""``assay serve``: the HTTP server (FastAPI app from ``assay.server``) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8765,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (each opens the catalog).")
    ] = 1,
) -> None:
    """Serve the API (webhooks for managed pipeline jobs, ...) until interrupted."""
    import uvicorn

    if workers == 1:
        from assay.server import create_app

        uvicorn.run(create_app(), host=host, port=port, log_level=log_level)
    else:  # uvicorn starts each worker from an import string
        uvicorn.run(
            "assay.server:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            workers=workers,
        )
