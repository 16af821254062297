"""Running a job's function in this process: ``run_inline`` and the ``JobContext`` it passes.

Used by pipeline tasks and anything else that runs Python here rather than in a child process.
The catalog is the source of truth: ``run_inline`` fires ``run`` before calling the function and
exactly one terminal event after it, and never raises for the function's own failure (the
caller reads the returned record). A function that records its job's outcome itself (with
its kind's side rows in the same transaction, say) sets ``ctx.ended`` and no further
transition is fired. A stop requested from any process (``request_stop``) is seen
by ``JobContext.stop_requested()``; the function ends STOPPED by raising ``JobStopped`` (or
``ctx.check_stop()`` does it), or by returning after the flag was set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import InvalidInput, InvalidTransition, JobStopped
from assay.jobs import heartbeats, store
from assay.jobs.records import JobRecord

#: Seconds between heartbeats of a running inline job (well under reconcile's 30 s staleness).
HEARTBEAT_INTERVAL = 5.0
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class JobContext:
    """What a job's function may do with its own job: log, heartbeat, see a stop request.

    ``stop_requested`` reads the catalog at most every ``poll_interval`` seconds (the answer is
    cached between reads), so a function may call it in a tight loop.
    """

    def __init__(self, job_id: str, workspace: Workspace, *, poll_interval: float = 0.1) -> None:
        self.job_id = job_id
        self.workspace = workspace
        self.poll_interval = poll_interval
        self._stop = False
        #: Set by a function that recorded its job's terminal transition itself.
        self.ended = False
        self._last_poll = 0.0
        self._lock = threading.Lock()

    def stop_requested(self) -> bool:
        with self._lock:
            if self._stop:
                return True
            now = time.monotonic()
            if now - self._last_poll >= self.poll_interval:
                self._last_poll = now
                self._stop = store.stop_requested(self.job_id, workspace=self.workspace)
            return self._stop

    def check_stop(self) -> None:
        """Raise ``JobStopped`` when a stop was requested."""
        if self.stop_requested():
            raise JobStopped(f"job {self.job_id} was asked to stop")

    def log(self, message: str, level: str = "info", **fields: Any) -> int:
        """Record a log line as a ``log`` event; its seq."""
        if level not in LOG_LEVELS:
            raise InvalidInput(f"log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
        return store.append_event(
            self.job_id,
            "log",
            {"level": level, "message": message, **fields},
            workspace=self.workspace,
        )

    def monitor(self, data: dict[str, Any]) -> int:
        """Record a monitor message (progress, metrics) as a ``monitor`` event; its seq."""
        return store.append_event(self.job_id, "monitor", data, workspace=self.workspace)

    def heartbeat(self) -> None:
        store.heartbeat(self.job_id, os.getpid(), workspace=self.workspace)


def run_inline(
    job_id: str,
    fn: Callable[[JobContext], dict[str, Any] | None],
    *,
    workspace: Workspace | None = None,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
) -> JobRecord:
    """Fire ``run``, call ``fn(ctx)``, then fire exactly one of:

    * ``finish`` with ``result`` = the returned dict (``{}`` for None);
    * ``stop`` when ``fn`` raised ``JobStopped`` or a stop was requested while it ran;
    * ``fail`` with ``error`` = ``"Type: message"`` and the traceback in the event payload.

    The job must be in a state ``run`` leaves from (CREATED, QUEUED, PROVISIONING), else
    ``InvalidTransition`` is raised before ``fn`` is called. A transition lost to another process
    while ``fn`` ran (say, reconciliation failed the job) is not overwritten: the record read
    afterwards is returned. ``KeyboardInterrupt``/``SystemExit`` stop the job and propagate.
    The process's heartbeat thread beats every ``heartbeat_interval`` seconds while ``fn`` runs.
    """
    ws = workspace or open_workspace()
    store.fire(
        job_id, "run", fields=store.this_process() | {"last_seen": time.time()}, workspace=ws
    )
    ctx = JobContext(job_id, ws)
    with heartbeats.beating(job_id, ws, heartbeat_interval):
        return _call(job_id, fn, ctx, ws)


def _call(
    job_id: str,
    fn: Callable[[JobContext], dict[str, Any] | None],
    ctx: JobContext,
    ws: Workspace,
) -> JobRecord:
    try:
        value = fn(ctx)
        if ctx.ended:
            return store.get_job(job_id, workspace=ws)
    except JobStopped as exc:
        return _end(job_id, "stop", ws, payload={"reason": str(exc)})
    except (KeyboardInterrupt, SystemExit) as exc:
        _end(job_id, "stop", ws, payload={"reason": type(exc).__name__})
        raise
    except Exception as exc:
        error, trace = store.format_exception(exc)
        return _end(job_id, "fail", ws, error=error, payload={"traceback": trace})
    if ctx.stop_requested():
        return _end(job_id, "stop", ws, payload={"reason": "stop requested while running"})
    if value is not None and not isinstance(value, dict):
        error = f"TypeError: the job function returned {type(value).__name__}, not a dict or None"
        return _end(job_id, "fail", ws, error=error)
    return _end(job_id, "finish", ws, result=value or {})


def _end(
    job_id: str,
    event: str,
    workspace: Workspace,
    *,
    payload: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> JobRecord:
    try:
        return store.fire(
            job_id, event, payload=payload, result=result, error=error, workspace=workspace
        )
    except InvalidTransition:
        # Another process ended the job first (reconcile, a forced stop): its word stands.
        return store.get_job(job_id, workspace=workspace)
