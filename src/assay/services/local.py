"""The local backend: a question is a job of kind ``question`` answered by a job worker.

The job layer (``assay.jobs``) does the generic work: the worker process (``python -m
assay.jobs.worker assay.services.answer:answer``), its supervision (deadline, silence, exit,
stop requests from any process), the pool of reusable workers, the batched, guarded writes of
the job's transitions and events. This module is the question's side of it:

- pool keying by service (folder, code hash, configuration hash; ``ASSAY_WORKER_POOL=N``);
- monitor messages validated against the twine before the asker's handler sees them;
- log records re-emitted on the asker's loggers with the ``[service | question]`` prefix;
- the answer shaped as ``{"output_values", "output_manifest"}``; output datasets published
  by this process while the job is PUBLISHING, in one transaction with its final transition
  (``assay.services.publishing``);
- the failure reported as the question's exception: ``QuestionTimeout`` (TIMED_OUT),
  ``ChildCrashed`` (FAILED: the worker exited, hung, or could not start), the app's own
  exception (FAILED), ``QuestionCancelled`` (STOPPED).

A transition another process won first (a stop request, or reconciliation by a process that
judged this asker dead) is not overwritten: the question reports the recorded outcome.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from typing import Any

from assay.core.errors import (
    AssayError,
    ChildCrashed,
    InvalidMonitorMessage,
    InvalidTransition,
    QuestionCancelled,
    QuestionTimeout,
)
from assay.jobs._json import cap_text
from assay.jobs.forkserver import fork_worker
from assay.jobs.payloads import exception_payload
from assay.jobs.recorder import JobRecorder
from assay.jobs.supervisor import Done, WorkerPool, WorkerProcess, supervise
from assay.jobs.wire import LOG_TEXT_CAP
from assay.services import protocol
from assay.services.config import ServiceConfig
from assay.services.events import dumps_json
from assay.services.exceptions import rebuild_exception
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

ENTRY = "assay.services.answer:answer"
_TEXT_LIMIT = LOG_TEXT_CAP + 100

#: Questions running in this process, by uuid (for cancel and asynchronous answers).
_running: dict[str, LocalQuestion] = {}
_running_lock = threading.Lock()


def running_question(question_uuid: str) -> LocalQuestion | None:
    with _running_lock:
        return _running.get(question_uuid)


def _pool_size() -> int:
    try:
        return max(0, int(os.environ.get("ASSAY_WORKER_POOL", "0") or 0))
    except ValueError:
        return 0


PoolKey = tuple[str, str, str]


def pool_key(service: ServiceConfig) -> PoolKey:
    """What a pool worker is for: the service folder, its code hash (the app folder's ``.py``
    files and the twine) and a hash of its configuration."""
    from assay.core import hashing
    from assay.services import app_loader

    code = app_loader.code_hash(str(service.app_source_path), str(service.twine_path))
    configuration = json.dumps(service.to_primitive(), sort_keys=True, default=str)
    return (str(service.directory), code, hashing.hash_bytes(configuration.encode()))


_pool = WorkerPool(ENTRY, _pool_size)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.forget)


def close_pool() -> None:
    """Stop this process's pool workers (they are also stopped when it exits)."""
    _pool.close()


def pool_pids() -> list[int]:
    """Process ids of this process's pool workers, idle or answering."""
    return _pool.pids()


class LocalQuestion:
    """One question to a local service: its worker, its job and its outcome."""

    def __init__(
        self,
        service: ServiceConfig,
        twine: Twine,
        question: dict[str, Any],
        recorder: JobRecorder,
        handle_monitor_message: Any = None,
        received_events: list[dict[str, Any]] | None = None,
    ) -> None:
        self.service = service
        self.twine = twine
        self.question = question
        self.question_uuid: str = question["question_uuid"]
        self.recorder = recorder
        self.handle_monitor_message = handle_monitor_message
        self.received_events = received_events
        self.worker: WorkerProcess | None = None
        self._key: PoolKey | None = None
        self._reuse = False
        self._delivered = False
        self._stop = threading.Event()
        self._clock: float | None = None  # when start() began: the question's timeout counts
        self._details: dict[str, Any] = {}
        self._details_written: str | None = None  # the details as the side row holds them

    def create_job(self, details: dict[str, Any], write: bool) -> None:
        """The question's job (kind ``question``, supervised by this process) and its side row
        (written now, or with the first flush)."""
        from assay.catalog import question_queries
        from assay.jobs.store import this_process

        self._details = dict(details)
        question = self.question
        service_id = self.service.sruid

        def insert_side(conn: Any) -> None:
            # The details as they are when written: a delivery in the same batch costs nothing.
            text = dumps_json(self._details)
            question_queries.insert_question(
                conn,
                {
                    "job_id": self.question_uuid,
                    "service_id": service_id,
                    "backend": "local",
                    "parent_question_uuid": question["parent_question_uuid"],
                    "originator_question_uuid": question["originator_question_uuid"],
                    "error": None,
                    "details": text,
                },
            )
            self._details_written = text

        self.recorder.create(
            question_queries.KIND,
            spec={
                "service_id": service_id,
                "input_values": question["input_values"],
                "input_manifest": question["input_manifest"],
                "retry_count": question["retry_count"],
            },
            owner=str(details.get("asker") or ""),
            parent_job_id=question["parent_question_uuid"],
            payload={"service_id": service_id, "backend": "local"},
            fields={**this_process(), "last_seen": time.time()},
            side=insert_side,
            write=write,
        )

    # -- starting ---------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> None:
        """Start the worker; ``timeout`` (the question's) bounds a wait for a fork server's
        imports and counts from now."""
        self._clock = time.monotonic()
        with _running_lock:
            _running[self.question_uuid] = self
        folder = str(self.service.directory)
        task = {**self.question, "env": {"ASSAY_QUESTION_UUID": self.question_uuid}}
        try:
            if _pool_size() > 0:
                # A pool worker may have been started for an earlier question: it takes this
                # process's environment and the service's folder from the task.
                self._key = pool_key(self.service)
                task = {**task, "environment": dict(os.environ), "cwd": folder}
                worker = _pool.acquire(self._key, folder)
            else:  # a fresh process: forked by a fork server where it may be, else spawned
                forked = None
                if not self.service.fresh_interpreter:
                    forked = fork_worker(
                        ENTRY,
                        folder,
                        self.question_uuid,
                        self.service.preload,
                        timeout,
                        hint=str(self.service.twine_path),
                    )
                worker = WorkerProcess(ENTRY, False, folder, self.question_uuid, forked=forked)
        except Exception as error:  # no worker could be started (or the app folder is gone)
            with _running_lock:
                _running.pop(self.question_uuid, None)
            payload = {**exception_payload(error), "origin": "parent", "crashed": True}
            self._record_failure("fail", payload)
            raise
        self.worker = worker
        if self._stop.is_set():
            worker.kill()
        worker.send(task)

    def stderr_tail(self) -> str:
        return self.worker.stderr_tail() if self.worker is not None else ""

    # -- stopping ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the worker now; the loop records STOPPED and raises ``QuestionCancelled``."""
        self._stop.set()
        if self.worker is not None:
            self.worker.kill()

    # -- answering --------------------------------------------------------------------------
    def wait(self, timeout: float | None, maximum_heartbeat_interval: float) -> dict[str, Any]:
        """Handle events until the answer; returns it or raises why there is none."""
        assert self.worker is not None
        try:
            answer: dict[str, Any] = supervise(
                self.worker,
                self,
                self.recorder,
                timeout=timeout,
                max_silence=maximum_heartbeat_interval,
                stop_event=self._stop,
                started=self._clock,
            )
            return answer
        finally:
            worker = self.worker
            if self._reuse and self._key is not None:
                _pool.release(worker, self._key)
            elif worker.reusable:
                _pool.discard(worker)  # it crashed, hung, timed out, was stopped or raised
            else:
                worker.close_later()  # its answer is in: reaping need not delay it
            with _running_lock:
                _running.pop(self.question_uuid, None)

    # -- the supervisor's callbacks (assay.jobs.supervisor.WorkerTask) -------------------------
    def on_event(self, event: dict[str, Any]) -> Done | None:
        kind = event["kind"]
        payload = event["payload"]
        at = event.get("at")
        if self.received_events is not None and len(self.received_events) < 10_000:
            self.received_events.append(event)
        if kind == "delivery":
            self._delivered = True
            self._details.update(
                worker_pid=payload.get("pid"), worker_answered=payload.get("answered")
            )
            self.recorder.fire(
                "run",
                payload={"pid": payload.get("pid"), "answered": payload.get("answered")},
                fields={"pgid": payload.get("pid")},
                side=self._update_details,
            )
        elif kind == "log_record":
            # The worker capped it already (marker included); this guards against other writers.
            payload["message"] = cap_text(str(payload.get("message", "")), _TEXT_LIMIT)
            self.recorder.add("log", payload, at)
            protocol.emit_log_record(payload, self.service.sruid, self.question_uuid)
        elif kind == "monitor_message":
            self._monitor_message(payload, at)
        elif kind == "result":
            return Done(self._succeed(payload))
        elif kind == "exception":
            if not self._record_failure("fail", payload):
                raise self._recorded_outcome()
            raise rebuild_exception(payload, self.service.sruid, self.question_uuid)
        return None  # heartbeats: the supervisor touched the job already

    def on_timeout(self, timeout: float) -> BaseException:
        error = QuestionTimeout(
            f"{self.service.sruid}: no answer to question {self.question_uuid} "
            f"within the timeout of {timeout:g} s; the child was stopped"
        )
        if not self._delivered:
            # The worker was still starting: the job was provisioning when its time ran out.
            self.recorder.fire("provision", payload={"worker_pid": self.worker and self.worker.pid})
        return self._fail("time_out", error)

    def on_silence(self, seconds: float) -> BaseException:
        error = ChildCrashed(
            f"{self.service.sruid}: question {self.question_uuid}: no heartbeat or "
            f"other event for {seconds:g} s; the child is hung and was stopped"
        )
        return self._fail("fail", error)

    def on_exit(self, code: int | None, stderr_tail: str) -> BaseException:
        return self._fail("fail", ChildCrashed(self._exit_message(code, stderr_tail)))

    def on_stop(self, by: str) -> BaseException:
        self._stop.set()
        cancelled = QuestionCancelled(
            f"{self.service.sruid}: question {self.question_uuid} was cancelled"
        )
        try:
            self.recorder.fire("stop", payload={"by": by}, flush=True)
        except InvalidTransition:
            return self._recorded_outcome()
        return cancelled

    def on_lost(self, error: InvalidTransition) -> BaseException:
        logger.info("question %s: %s", self.question_uuid, error.message)
        return self._recorded_outcome()

    # -- helpers ----------------------------------------------------------------------------
    def _update_details(self, conn: Any) -> None:
        """Write the details to a side row written in an earlier batch (in the same batch, the
        insert took them already)."""
        from assay.catalog import question_queries

        text = dumps_json(self._details)
        if self._details_written is not None and text != self._details_written:
            question_queries.update_question(conn, self.question_uuid, {"details": text})
            self._details_written = text

    def _monitor_message(self, payload: dict[str, Any], at: Any) -> None:
        data = payload.get("data")
        self.recorder.add("monitor", {"data": data}, at)
        try:
            self.twine.validate_monitor_message(data)
        except InvalidMonitorMessage as error:
            logger.warning(
                "[%s | %s] monitor message ignored: %s",
                self.service.sruid,
                self.question_uuid,
                error.message,
            )
            return
        if self.handle_monitor_message is not None:
            try:
                self.handle_monitor_message(data)
            except Exception as error:
                if self.worker is not None:
                    self.worker.kill()
                self._record_failure("fail", {**exception_payload(error), "origin": "parent"})
                raise

    def _record_failure(self, event: str, payload: dict[str, Any]) -> bool:
        """Record the question's failure (``event``: fail or time_out) and its error payload in
        one transaction. False when another process recorded an outcome first (it stands)."""
        from assay.services.publishing import record_failure

        return record_failure(self.recorder, self.question_uuid, event, payload)

    def _fail(self, event: str, error: AssayError) -> BaseException:
        error.service_id = self.service.sruid  # type: ignore[attr-defined]
        error.question_uuid = self.question_uuid  # type: ignore[attr-defined]
        crashed = event == "fail"
        payload = {**exception_payload(error), "origin": "parent", "traceback": ""}
        if crashed:
            payload["crashed"] = True
        if not self._record_failure(event, payload):
            return self._recorded_outcome()
        return error

    def _recorded_outcome(self) -> BaseException:
        """The exception for the outcome another process recorded first."""
        from assay.services.events import get_question

        record = get_question(self.question_uuid, self.recorder.workspace)
        if record.status == "cancelled":
            return QuestionCancelled(
                f"{self.service.sruid}: question {self.question_uuid} was cancelled"
            )
        if record.status == "succeeded":
            return ChildCrashed(
                f"{self.service.sruid}: question {self.question_uuid} was answered elsewhere"
            )
        from assay.services.events import error_of

        return rebuild_exception(error_of(record), self.service.sruid, self.question_uuid)

    def _succeed(self, payload: dict[str, Any]) -> dict[str, Any]:
        from assay.core.manifest import Manifest
        from assay.services.publishing import publish

        worker = payload.get("worker")
        publish_info = payload.pop("publish", None)
        try:
            result = publish(self.recorder, self.service, self.question, payload, publish_info)
        except InvalidTransition:
            raise  # the supervisor reports the outcome recorded elsewhere
        except Exception as error:  # publishing failed: the question fails, nothing is half-kept
            self._record_failure("fail", {**exception_payload(error), "origin": "parent"})
            error.service_id = self.service.sruid  # type: ignore[attr-defined]
            error.question_uuid = self.question_uuid  # type: ignore[attr-defined]
            raise
        finally:
            if isinstance(publish_info, dict) and publish_info.get("scratch"):
                shutil.rmtree(str(publish_info["scratch"]), ignore_errors=True)
        if (
            self.worker is not None
            and self.worker.reusable
            and self._key is not None
            and isinstance(worker, dict)
            and worker.get("reusable") is True
            and worker.get("token") == self._key[1]
        ):
            self._reuse = True  # a clean answer from the code this worker was started for
        manifest = result.get("output_manifest")
        return {
            "output_values": result.get("output_values"),
            "output_manifest": Manifest.deserialise(manifest) if manifest else None,
        }

    def _exit_message(self, code: int | None, tail: str) -> str:
        if code is None:
            how = "ended (how is unknown: the fork server that started it died first)"
        elif code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        said = f"; its last output on stderr: {tail}" if tail else ""
        return (
            f"{self.service.sruid}: the child process for question {self.question_uuid} {how} "
            f"before answering (os._exit, a crash, or a kill){said}"
        )
