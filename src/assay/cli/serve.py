"""``assay serve``: the HTTP server (FastAPI app from ``assay.server``) under uvicorn."""

from __future__ import annotations

import getpass
import os
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
    push_uploads: Annotated[
        bool,
        typer.Option(
            "--push-uploads",
            help="Push a bundle committed through the API to its context's remote (so other "
            "machines sharing the catalog can read its files).",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated "
            "addresses or networks, '*' for any).",
        ),
    ] = "127.0.0.1",
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
    if push_uploads:
        typer.echo("bundles committed through the API are pushed to their context's remote")
    if workers == 1:
        from assay.server import create_app

        app = create_app(auth=not insecure_no_auth, push_uploads=push_uploads)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    else:  # uvicorn starts each worker from an import string; options travel in the env
        # read by assay.server.app.create_app (the cli does not import the server's modules)
        os.environ["ASSAY_SERVER_PUSH_UPLOADS"] = "1" if push_uploads else "0"
        uvicorn.run(
            "assay.server:create_app",
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            workers=workers,
            forwarded_allow_ips=forwarded_allow_ips,
        )
