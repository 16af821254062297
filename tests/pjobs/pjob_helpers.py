"""Helpers for the managed pipeline job tests: snapshots of what is stored, so a refused
request can be shown to have changed nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from assay.bundles.workspace import Workspace
from assay.catalog.schema import job_events, jobs, pipelinejob_deliveries, pipelinejobs
from assay.pjobs.archive import products_root


def stored(workspace: Workspace) -> dict[str, Any]:
    """Rows of every job table, and every file under the products root."""
    with workspace.read() as conn:
        counts = {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (jobs, job_events, pipelinejobs, pipelinejob_deliveries)
        }
        states = sorted(tuple(row) for row in conn.execute(select(jobs.c.job_id, jobs.c.state)))
    root = products_root(workspace.settings)
    files = sorted(
        str(Path(d, n).relative_to(root)) for d, _, names in os.walk(root) for n in names
    ) if root.exists() else []  # fmt: skip
    dirs = (
        sorted(str(Path(d).relative_to(root)) for d, _, _ in os.walk(root)) if root.exists() else []
    )
    return {"counts": counts, "states": states, "files": files, "dirs": dirs}


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
