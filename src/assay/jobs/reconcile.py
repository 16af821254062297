"""Restart safety: find jobs whose supervising process died and end (or re-queue) them.

Called at the start of every process that schedules jobs (``LocalExecutor`` does it when
built; a server, a pipeline run or ``assay jobs ls`` may call it too). A job of the ``job``
machine in QUEUED, PROVISIONING, RUNNING or PUBLISHING with a recorded supervisor is dead when:

* its supervisor (``pid``) ran on this host and is gone, or
* its ``last_seen`` heartbeat is older than ``stale_after_s`` (any host: the supervisor hangs,
  or its machine is gone).

A dead job is moved to FAILED with the reason, or back to QUEUED (with no owner, so the next
executor of its environment adopts it) when its environment says ``requeue: true`` and the job
has a launch spec. Before that, what is left of the job's process group on this host is
killed, once a member is seen to carry the job's marker (a reused pgid is never killed). Each job is
decided in its own transaction on a re-read row, so a heartbeat that arrives meanwhile wins,
and two processes reconciling at once end each job once.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sqlalchemy import Connection

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.core.errors import InvalidTransition
from assay.jobs import process
from assay.jobs.environments import Environment, load_environments
from assay.jobs.records import JobRecord
from assay.jobs.store import HOST, fire_in, get_job

SUPERVISED_STATES = ("QUEUED", "PROVISIONING", "RUNNING", "PUBLISHING")


def _why_dead(row: Any, now: float, stale_after_s: float) -> str | None:
    if row.pid is None:
        return None  # unowned (re-queued): waiting to be adopted, nobody to have died
    # This process counts like any other: a job it supervises but stopped heartbeating (a
    # supervision bug, a lost completion) must not stay active for as long as the process lives.
    if row.host == HOST and row.pid != os.getpid() and not process.pid_alive(row.pid):
        return f"its supervising process {row.pid} on {row.host} is gone"
    seen = row.last_seen if row.last_seen is not None else row.updated
    if now - seen > stale_after_s:
        return f"no heartbeat from its supervisor ({row.pid} on {row.host}) for {now - seen:.0f} s"
    return None


def _on_dask(row: Any, environments: dict[str, Environment] | None = None) -> bool:
    """Jobs submitted by the Dask executor (``launch.executor == "dask"``) are settled against
    their scheduler (``executors.dask.reconcile_dask``): Dask re-runs a dead worker's task
    itself, which a pid check here would race."""
    return dask_launched(row.launch)


def dask_launched(launch: str | None) -> bool:
    if not launch:
        return False
    try:
        spec = json.loads(launch)
    except ValueError:
        return False  # not ours to judge: an unreadable launch spec is the local executor's
    return isinstance(spec, dict) and spec.get("executor") == "dask"


def _settle(
    conn: Connection,
    job_id: str,
    stale_after_s: float,
    environments: dict[str, Environment],
    groups: dict[int, list[int]] | None = None,
) -> JobRecord | None:
    row = queries.job(conn, job_id, for_update=True)
    if row is None or row.machine != "job" or row.state not in SUPERVISED_STATES:
        return None
    reason = _why_dead(row, time.time(), stale_after_s)
    if reason is None:
        return None
    killed: list[int] = []
    if row.pgid and row.host == HOST:
        killed = process.kill_orphans(row.pgid, job_id, groups)
    environment = environments.get(row.environment)
    payload = {"reason": reason, "killed_pids": killed, "reconciled_by": f"{os.getpid()}@{HOST}"}
    unowned = {"pid": None, "pgid": None, "host": None}
    if environment is not None and environment.requeue and row.launch is not None:
        if row.state == "QUEUED":
            queries.update_job(conn, job_id, {**unowned, "updated": time.time()}, states=["QUEUED"])
            return None
        if row.state in ("PROVISIONING", "RUNNING"):
            return fire_in(conn, job_id, "requeue", payload=payload, fields=unowned)
    return fire_in(conn, job_id, "fail", error=f"supervisor died: {reason}", payload=payload)


def reconcile(
    workspace: Workspace | None = None,
    *,
    stale_after_s: float = 30.0,
    environments: dict[str, Environment] | None = None,
) -> list[JobRecord]:
    """End or re-queue every job whose supervisor died; the records changed."""
    ws = workspace or open_workspace()
    if environments is None:
        environments = load_environments(ws.settings)
    with ws.read() as conn:
        candidates = [
            row
            for row in queries.list_jobs(conn, state=SUPERVISED_STATES, limit=None)
            if row.machine == "job"
            and not _on_dask(row, environments)
            and _why_dead(row, time.time(), stale_after_s) is not None
        ]
    changed = []
    # One pass over /proc for all of them (kill_orphans kills whole groups, so a member forked
    # after the snapshot goes too).
    groups = process.process_groups() if candidates else {}
    for row in candidates:
        try:
            with ws.write() as conn:
                record = _settle(conn, row.job_id, stale_after_s, environments, groups)
        except InvalidTransition:
            continue  # another process ended it first
        if record is not None:
            changed.append(record)
    return changed


def reconcile_job(
    job_id: str,
    workspace: Workspace | None = None,
    *,
    stale_after_s: float = 30.0,
    environments: dict[str, Environment] | None = None,
) -> JobRecord | None:
    """``reconcile`` for one job (cheap: one read unless it is dead); the record if changed."""
    ws = workspace or open_workspace()
    with ws.read() as conn:
        row = queries.job(conn, job_id)
    if row is None or row.machine != "job" or row.state not in SUPERVISED_STATES:
        return None
    if _why_dead(row, time.time(), stale_after_s) is None:
        return None
    if environments is None:
        environments = load_environments(ws.settings)
    if _on_dask(row, environments):
        return None
    try:
        with ws.write() as conn:
            return _settle(conn, job_id, stale_after_s, environments)
    except InvalidTransition:
        return None


def wait_job(
    job_id: str,
    timeout: float | None = None,
    *,
    interval: float = 0.05,
    check_every_s: float = 1.0,
    stale_after_s: float = 30.0,
    workspace: Workspace | None = None,
) -> JobRecord:
    """Poll until the job is terminal, reconciling it every ``check_every_s`` so a wait on a
    job whose supervisor died ends (FAILED) instead of polling forever. Returns the record
    (not terminal only when ``timeout`` passed first)."""
    ws = workspace or open_workspace()
    deadline = None if timeout is None else time.monotonic() + timeout
    last_check = time.monotonic()
    while True:
        record = get_job(job_id, workspace=ws)
        if record.terminal or (deadline is not None and time.monotonic() >= deadline):
            return record
        if time.monotonic() - last_check >= check_every_s:
            last_check = time.monotonic()
            reconcile_job(record.job_id, ws, stale_after_s=stale_after_s)
        time.sleep(interval)
