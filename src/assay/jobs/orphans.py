"""One job whose supervisor died: find it and end it, so nothing waits for it forever.

A job supervised by a process (``pid`` and ``host`` on its row, ``last_seen`` touched while it
watches) is an orphan when it is still active and that process is gone: on this host, the pid is dead;
on any host, ``last_seen`` is older than ``stale_after_s`` (a reused pid is caught this way). ``end_orphan`` moves it to
FAILED with the reason, by a guarded transition: if the supervisor was alive after all and
recorded an outcome first, that outcome stands (the ``InvalidTransition`` is swallowed there
because losing that race is the wanted result, and the record returned shows the winner).

Waiting loops (``Child.get_answer`` in another process) call this on each poll, so a wait for
a job whose asker died ends. Reconciling every job at start-up is ``assay.jobs.reconcile``.
"""

from __future__ import annotations

import os
import time

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidTransition
from assay.jobs import store
from assay.jobs.fsm import machine_for
from assay.jobs.records import JobRecord

STALE_AFTER_S = 30.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def orphan_reason(record: JobRecord, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why ``record``'s supervisor is known to be gone, or None (alive, or cannot tell yet)."""
    if machine_for(record.machine).is_terminal(record.state):
        return None
    if isinstance(record.launch, dict) and record.launch.get("executor") == "dask":
        return None  # its task on a Dask worker owns it: settled by reconcile_dask
    if record.pid is not None and record.host == store.HOST and not _pid_alive(record.pid):
        return f"its supervising process {record.pid} on {record.host} died"
    seen = record.last_seen if record.last_seen is not None else record.updated
    if time.time() - seen > stale_after_s:
        return (
            f"its supervisor has not been seen for {time.time() - seen:.0f} s "
            f"(pid {record.pid} on {record.host})"
        )
    return None


def end_orphan(
    record: JobRecord,
    stale_after_s: float = STALE_AFTER_S,
    workspace: Workspace | None = None,
) -> JobRecord:
    """``record`` as it is after failing it if it is an orphan (else as it is now)."""
    reason = orphan_reason(record, stale_after_s)
    if reason is None:
        return record
    try:
        return store.fire(
            record.job_id,
            "fail",
            payload={"reason": reason, "reconciled": True},
            error=f"SupervisorDied: {reason}",
            workspace=workspace,
        )
    except InvalidTransition:
        # The supervisor recorded an outcome between our read and our update: it stands.
        return store.get_job(record.job_id, workspace=workspace)
