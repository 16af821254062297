"""Job entry points the Dask tests run on real workers (imported there by module path)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from assay.bundles import operations
from assay.jobs.runner import JobContext


def hello(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("user.task").info("hello from %s", os.getpid())
    return {"pid": os.getpid(), "doubled": 2 * int(spec["n"])}


def wait_for_stop(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Writes its start marker, then runs until asked to stop (or 60 s)."""
    Path(spec["marker"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ctx.check_stop()
        time.sleep(0.02)  # the work loop of a long task; the stop flag is what ends it
    return {"ended": "deadline"}


def once_then_bundle(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """First attempt: write ``<marker>.1`` with this worker's pid and hang (the test kills this
    worker). A later attempt: store the output bundle and finish."""
    marker = Path(spec["marker"])
    attempt = len(list(marker.parent.glob(marker.name + ".*"))) + 1
    Path(f"{marker}.{attempt}").write_text(str(os.getpid()))
    if attempt == 1:
        time.sleep(120)  # killed long before; a hang, not a synchronisation
    record = operations.create_bundle(ctx.workspace, spec["context"], spec["bundle"], {"x": 1})
    return {"uuid": record.uuid, "attempt": attempt}
