"""Helpers for the executor tests: algorithm scripts written on the fly, jobs, waiting."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from assay.jobs import store
from assay.jobs.ids import job_id
from assay.jobs.records import JobRecord

PYTHON = sys.executable


def script(folder: Path, name: str, body: str) -> Path:
    """Write a Python algorithm ``folder/name`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body).strip() + "\n")
    return path


def new_job(name: str, environment: str = "local", kind: str = "compute") -> str:
    jid = job_id("executor-test", name, time.time_ns())
    store.create_job(kind, jid, spec={"name": name}, environment=environment)
    return jid


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    # Members may be zombies waiting for a reaper: they run nothing.
    from assay.jobs.process import group_members

    return group_members(pgid) == []


def log_text(jid: str) -> str:
    return "\n".join(e.payload.get("message", "") for e in store.list_events(jid, types=["log"]))


def transitions(record: JobRecord) -> list[str]:
    return [e.event for e in store.list_events(record.job_id, types=["transition"])]
