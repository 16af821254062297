"""A real API server for the HTTP tests: ``python -m assay.server.api_app`` under uvicorn, on a
loopback socket this process opened (so the port is known before the server starts and the
first request simply waits in the listen backlog: no polling for readiness).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from assay.auth import tokens
from assay.bundles.workspace import Workspace, open_workspace
from assay.core.settings import Settings
from helpers import make_bundles


@dataclass
class ApiServer:
    url: str
    home: Path
    settings: Settings
    process: subprocess.Popen[bytes]
    admin: str
    writer: str
    reader: str

    @property
    def workspace(self) -> Workspace:
        return open_workspace(self.settings)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def server_env(home: Path, catalog_url: str | None) -> dict[str, str]:
    env = {**os.environ, "ASSAY_HOME": str(home)}
    env.pop("ASSAY_CATALOG_URL", None)
    if catalog_url is not None:
        env["ASSAY_CATALOG_URL"] = catalog_url
    return env


@contextlib.contextmanager
def running_server(
    home: Path, catalog_url: str | None, extra_args: Sequence[str] = ()
) -> Iterator[ApiServer]:
    settings = Settings(
        home=home.absolute(),
        catalog_url=catalog_url or f"sqlite:///{home.absolute() / 'catalog.db'}",
    )
    workspace = open_workspace(settings)  # creates and migrates the catalog before the server
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assay.server.serve_fd",
            "--fd",
            str(listener.fileno()),
            *extra_args,
        ],
        env=server_env(home, catalog_url),
        pass_fds=[listener.fileno()],
    )
    listener.close()
    made = {
        scope: tokens.create_token(
            "ada" if scope != "read" else "bob", [scope], workspace=workspace
        )[1]
        for scope in ("admin", "write", "read")
    }
    try:
        yield ApiServer(
            f"http://127.0.0.1:{port}",
            home,
            settings,
            process,
            made["admin"],
            made["write"],
            made["read"],
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def make_graph(
    workspace: Workspace,
    context: str,
    names: Sequence[str],
    parents: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Bundles with provenance edges written through the catalog's own insert."""
    return make_bundles(context, names, parents, workspace=workspace)
