"""``assay serve``: the HTTP server (FastAPI app from ``assay.server``) under uvicorn."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from assay.auth import tokens
from assay.auth.network import check_bind
from assay.core.errors import InvalidInput


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8765,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (each opens the catalog).")
    ] = 1,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve the REST API without tokens (refused unless HOST is loopback).",
        ),
    ] = False,
) -> None:
    """Serve the API (REST API and web UI, webhooks for managed pipeline jobs) until
    interrupted. Prints the URL, and a first admin token when none exists."""
    import uvicorn

    check_bind(host, auth=not insecure_no_auth)
    if insecure_no_auth and workers > 1:
        raise InvalidInput("--insecure-no-auth runs one worker: drop --workers")
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"Assay API: http://{shown}:{port}/api/v1 (web UI: /ui/, OpenAPI: /api/v1/openapi.json)"
    )
    if insecure_no_auth:
        typer.echo("auth is OFF (--insecure-no-auth): every caller acts as the local user")
    else:
        made = tokens.first_admin_token(getpass.getuser())
        if made is not None:
            typer.echo(f"first admin token (shown once; see 'assay tokens'): {made[1]}")
    if workers == 1:
        from assay.server import create_app

        app = create_app(auth=not insecure_no_auth)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    else:  # uvicorn starts each worker from an import string
        uvicorn.run(
            "assay.server:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            workers=workers,
        )
