"""The worker side of a question on Dask: ``answer_job(ctx, spec)``.

Run by the Dask executor's task (``run_job_task(job id, "assay.services.dask_answer:answer_job",
refs)``) inside ``jobs.runner.run_inline``, which has fired ``run`` and heartbeats the job; the
task's log records and prints are the job's ``log`` events (``dask_task``). Here:

- the input manifest's bundles are pulled from their context's remote when this worker's
  store lacks them (verified by content hash);
- the service's app runs in this thread through the same handler a local worker process runs
  (``assay.services.answer``); monitor messages become ``monitor`` events at once;
- a result is published by ``assay.services.publishing`` (the local backend's code): RUNNING
  -> PUBLISHING, every output dataset stored, then ONE transaction writes every output bundle
  with the transition to FINISHED and the answer. When the output context has a remote, the
  bundles are committed and pushed to it complete BEFORE that transaction (an answer never
  names data its remote lacks; a failed push fails the question and writes no bundle);
- the app's exception is recorded as the local backend records it (FAILED, with the
  allow-listed exception payload the asker rebuilds);
- a stop request (``Child.cancel``, ``assay jobs stop``), or the job ending elsewhere (the
  asker's timeout), interrupts the app: an exception is raised in its thread at its next
  Python instruction (code blocked in C runs until it returns); after ``STOP_GRACE_S`` without
  it ending, the job is recorded STOPPED anyway. A stopped question publishes nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import threading
from collections.abc import Iterator
from typing import Any

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidTransition, JobNotFound, JobStopped
from assay.jobs import store
from assay.jobs.payloads import exception_payload
from assay.jobs.recorder import JobRecorder
from assay.jobs.runner import JobContext

logger = logging.getLogger(__name__)
POLL_S = 0.2
STOP_GRACE_S = 2.0


class _Interrupted(BaseException):
    """Raised in the app's thread when its question was stopped (not an ``Exception``, so an
    app's ``except Exception`` does not swallow it)."""


class _MonitorChannel:
    """What the answer handler sends: monitor messages -> ``monitor`` events, at once."""

    def __init__(self, job_id: str, workspace: Workspace) -> None:
        self.job_id = job_id
        self.workspace = workspace

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "monitor_message":
            store.append_event(
                self.job_id, "monitor", {"data": payload.get("data")}, workspace=self.workspace
            )


class _Watch:
    """Interrupts the app's thread when the job is asked to stop or ends elsewhere."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.thread = threading.get_ident()
        self.stopped = False
        self._in_app = False
        self._lock = threading.Lock()
        self._done = threading.Event()

    def _interrupt(self) -> bool:
        """Raise ``_Interrupted`` in the app's thread if it is still in the app."""
        with self._lock:
            if not self._in_app:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread), ctypes.py_object(_Interrupted)
            )
            return True

    def _run(self) -> None:
        job_id, ws = self.ctx.job_id, self.ctx.workspace
        while not self._done.wait(POLL_S):
            try:
                record = store.get_job(job_id, workspace=ws)
            except JobNotFound:
                record = None  # its row was removed: nobody waits for this answer
            except Exception as error:  # the catalog did not answer this time: ask again
                logger.warning("question %s: reading its stop request: %s", job_id, error)
                continue
            if record is not None and not (record.stop_requested or record.terminal):
                continue
            self.stopped = True
            waited = 0.0
            while self._interrupt() and not self._done.wait(POLL_S):
                waited += POLL_S  # again: the app may have caught it in a finally or a handler
                if waited >= STOP_GRACE_S and record is not None and not record.terminal:
                    _fire_stop(job_id, ws, "the app did not stop within the grace period")
                    record = None
            return

    @contextlib.contextmanager
    def app(self) -> Iterator[None]:
        watcher = threading.Thread(
            target=self._run, name=f"assay-stop-{self.ctx.job_id[:8]}", daemon=True
        )
        with self._lock:
            self._in_app = True
        watcher.start()
        try:
            yield
        finally:
            with self._lock:
                self._in_app = False
                # An interrupt set but not yet raised must not surface after the app.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread), None)
            self._done.set()
            watcher.join()


def _fire_stop(job_id: str, workspace: Workspace, reason: str) -> None:
    try:
        store.fire(job_id, "stop", payload={"reason": reason}, workspace=workspace)
    except InvalidTransition:
        pass  # ended meanwhile (by the app's own end, or elsewhere): that outcome stands


def _localize_inputs(workspace: Workspace, manifest: Any) -> None:
    """Pull the input manifest's bundles that this worker's store lacks from their context's
    remote (none bound: the app reads what the store has)."""
    from assay.bundles import operations, remotes
    from assay.core.manifest import Manifest

    if not manifest:
        return
    for reference in Manifest.deserialise(manifest).references.values():
        if reference.kind != "catalog" or reference.context is None:
            continue
        record = operations.require(workspace, reference.context, reference.name, reference.uuid)
        if remotes.binding(workspace, record.context) is not None and not remotes.is_localized(
            workspace, record
        ):
            remotes.localize_bundle(workspace, record.context, uuid=record.uuid)


class _PushFirst:
    """``before_commit`` of publishing on a worker: when the output context has a remote, the
    output bundles (committed) are pushed to it complete BEFORE the transaction that writes
    their rows and the answer, so an answer never names data its remote lacks."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.bound: Any = None
        self.uuids: list[str] = []

    def __call__(self, outputs: Any) -> Any:
        import dataclasses

        from assay.bundles import remotes

        if not outputs.prepared:
            return None
        context = outputs.prepared[0].record.context
        if remotes.binding(self.workspace, context) is None:
            return None
        prepared = [
            dataclasses.replace(p, record=dataclasses.replace(p.record, committed=True))
            for p in outputs.prepared
        ]
        self.bound = remotes.push_prepared(
            self.workspace, context, [(p.record, p.entries) for p in prepared]
        )
        self.uuids = [p.record.uuid for p in prepared]
        return dataclasses.replace(outputs, prepared=prepared)

    def mark(self) -> None:
        """Record the push in the catalog (after the answer's transaction wrote the rows)."""
        from assay.bundles import remotes

        if self.bound is not None and self.uuids:
            remotes.mark_pushed(self.workspace, self.bound, self.uuids)


def answer_job(ctx: JobContext, spec: dict[str, Any]) -> None:
    """Answer the question of job ``ctx.job_id`` (see the module docstring); records its
    outcome itself (``ctx.ended``)."""
    from assay.services.answer import answer
    from assay.services.config import ServiceConfig
    from assay.services.publishing import publish, record_failure

    question = dict(spec["question"])
    ws = ctx.workspace
    recorder = JobRecorder(ctx.job_id, ws)
    service = ServiceConfig.from_primitive(question["service"])
    watch = _Watch(ctx)
    publish_info: dict[str, Any] | None = None
    try:
        with watch.app():
            try:
                _localize_inputs(ws, question.get("input_manifest"))
                kind, payload, _ = answer(question, _MonitorChannel(ctx.job_id, ws), None)
            except _Interrupted:
                kind, payload = "exception", {"type": "stopped"}
            except Exception as error:  # pulling the inputs failed: the question fails
                kind, payload = "exception", exception_payload(error)
        if kind == "result":
            publish_info = payload.pop("publish", None)
        if watch.stopped or ctx.stop_requested():
            raise JobStopped(f"question {ctx.job_id} was stopped; its outputs were discarded")
        ctx.ended = True
        if kind == "exception":
            record_failure(recorder, ctx.job_id, "fail", payload)
            return
        push_first = _PushFirst(ws)
        try:
            publish(recorder, service, question, payload, publish_info, push_first)
        except InvalidTransition:
            return  # stopped or ended elsewhere meanwhile: that outcome stands
        except Exception as error:  # publishing failed: the question fails, no bundle is kept
            record_failure(recorder, ctx.job_id, "fail", exception_payload(error))
            return
        push_first.mark()
    finally:
        if isinstance(publish_info, dict) and publish_info.get("scratch"):
            shutil.rmtree(str(publish_info["scratch"]), ignore_errors=True)
