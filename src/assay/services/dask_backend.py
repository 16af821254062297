"""Questions on Dask: the local backend with an ``executor: dask`` environment.

    child = Child("lab/elevation:1.0.0", backend={"name": "local", "environment": "cluster"})
    answer, question_uuid = child.ask(input_values={...}, handle_monitor_message=print)

(``assay run --env cluster``; a child in a service config: ``backend: {name: local,
environment: cluster}``). The question is checked as for the local backend, then:

- before anything is recorded: the scheduler must answer within ``connect_timeout_s``
  (``SchedulerUnreachable``), the question must pickle (``ParamNotPicklable``), and every
  worker must import ``assay.services.dask_answer`` and see the service's folder
  (``WorkerNotReady``): one line each;
- the question is a job of kind ``question`` in that environment, submitted as ONE
  ``client.submit`` by import path (``DaskExecutor.submit``: ``run_job_task(job id,
  "assay.services.dask_answer:answer_job", refs)``, key ``assay-job-<uuid>``, the
  environment's ``resources=``); the task on the worker runs the service's app and writes the
  job's states, log lines, monitor messages, answer and output bundles to the catalog
  (``assay.services.dask_answer``);
- this process follows the job's events in the catalog (``jobs.store.follow_events``, the
  step the server's SSE stream takes) and delivers them as the local backend does
  (``assay.services.delivery``); the outcome is the catalog's: the answer, the app's
  exception rebuilt from its payload, ``QuestionCancelled``, or ``ChildCrashed`` for a worker
  that was lost;
- ``Child.cancel`` (or ``assay jobs stop``) sets the job's stop request: a queued question
  ends STOPPED at once and its future is cancelled; a running one is interrupted on the
  worker and ends STOPPED, its outputs discarded;
- the asker's ``timeout`` records TIMED_OUT and interrupts the task the same way; a
  question whose heartbeats stop is settled by ``reconcile_dask`` against its scheduler
  (FAILED, or re-queued with ``requeue: true``), never left RUNNING.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from assay.core.errors import (
    InvalidTransition,
    QuestionCancelled,
    QuestionTimeout,
    WorkerNotReady,
)
from assay.jobs.environments import Environment, get_environment
from assay.jobs.executors.dask import DaskExecutor, check_picklable, probe_modules
from assay.jobs.recorder import JobRecorder
from assay.services.config import ServiceConfig
from assay.services.delivery import Delivery
from assay.services.twine import Twine

logger = logging.getLogger(__name__)
ENTRY = "assay.services.dask_answer:answer_job"
#: Seconds without a heartbeat from a running question's task (it beats every 5 s) after
#: which the asker asks the scheduler whether the task still exists (``reconcile_dask``).
SILENT_AFTER_S = 15.0
_executors: dict[str, DaskExecutor] = {}
_lock = threading.Lock()


def dask_environment(backend: Mapping[str, Any]) -> Environment | None:
    """The ``executor: dask`` environment a local backend names; None to ask locally (no
    ``environment``, or one whose executor is local). ``EnvironmentNotFound`` for an unknown
    id."""
    name = backend.get("environment")
    if name is None:
        return None
    environment = get_environment(str(name))
    return environment if environment.executor == "dask" else None


def executor_for(environment: Environment) -> DaskExecutor:
    """This process's executor of ``environment`` (connected: ``SchedulerUnreachable``)."""
    with _lock:
        executor = _executors.get(environment.id)
        if executor is None or executor.environment != environment:
            executor = DaskExecutor(environment)
            _executors[environment.id] = executor
    executor.client  # noqa: B018 - connect now: an unreachable scheduler fails before recording
    return executor


def service_readable(folder: str, app: str) -> str | None:
    """Run on each worker by the submit-time probe: None, or why the service is not there."""
    for path in (folder, app):
        if not os.path.exists(path):
            return f"{path} does not exist on this worker"
    return None


def prepare(environment: Environment, service: ServiceConfig, question: dict[str, Any]) -> None:
    """The submit-time checks (see the module docstring); nothing is recorded before them."""
    check_picklable("the question (input values, manifest, children)", question)
    executor = executor_for(environment)
    module = ENTRY.partition(":")[0]
    probed = f"service {service.directory} {service.app_source_path}"
    if probed in executor._probed:
        return
    client = executor.client
    if module not in executor._probed:
        probe_modules(client, [module], executor.options.address)
    answers = client.run(service_readable, str(service.directory), str(service.app_source_path))
    for worker, problem in sorted(answers.items()):
        if problem is not None:
            raise WorkerNotReady(
                f"worker {worker} of {executor.options.address} cannot run service "
                f"{service.sruid}: {problem} (workers need the service's folder at the same "
                "path: one machine, a shared file system, or the image 'assay build' makes)",
                {"worker": worker, "service": service.sruid},
            )
    executor._probed.update({module, probed})


def with_output_context(service: dict[str, Any]) -> dict[str, Any]:
    """The service's primitive with ``ASSAY_OUTPUT_CONTEXT`` (``assay run -c``) applied: a
    worker does not get this process's environment variables."""
    from assay.services.outputs import OUTPUT_CONTEXT_VARIABLE

    override = os.environ.get(OUTPUT_CONTEXT_VARIABLE)
    if not override:
        return service
    return {**service, "output_location": f"assay://{override}"}


class DaskQuestion:
    """One question to a service, answered by a task on a Dask worker (the asker's side)."""

    def __init__(
        self,
        service: ServiceConfig,
        twine: Twine,
        question: dict[str, Any],
        recorder: JobRecorder,
        handle_monitor_message: Any = None,
        received_events: list[dict[str, Any]] | None = None,
        *,
        environment: Environment,
    ) -> None:
        self.service = service
        self.twine = twine
        self.question = {**question, "service": with_output_context(question["service"])}
        self.question_uuid: str = question["question_uuid"]
        self.recorder = recorder
        self.handle_monitor_message = handle_monitor_message
        self.received_events = received_events
        self.environment = environment
        self.executor = executor_for(environment)

    def create_job(self, details: dict[str, Any], write: bool) -> None:
        """The question's job in the dask environment (nobody here supervises it: its task
        does) and its side row, written now (``write`` is ignored: the task needs the row)."""
        from assay.catalog import question_queries
        from assay.services.events import dumps_json

        del write
        question = self.question
        service_id = self.service.sruid
        text = dumps_json({**details, "environment": self.environment.id})

        def insert_side(conn: Any) -> None:
            question_queries.insert_question(
                conn,
                {
                    "job_id": self.question_uuid,
                    "service_id": service_id,
                    "backend": "dask",
                    "parent_question_uuid": question["parent_question_uuid"],
                    "originator_question_uuid": question["originator_question_uuid"],
                    "error": None,
                    "details": text,
                },
            )

        self.recorder.create(
            question_queries.KIND,
            spec={
                "service_id": service_id,
                "input_values": question["input_values"],
                "input_manifest": question["input_manifest"],
                "retry_count": question["retry_count"],
                "question": question,
            },
            environment=self.environment.id,
            owner=str(details.get("asker") or ""),
            parent_job_id=question["parent_question_uuid"],
            payload={"service_id": service_id, "backend": "dask"},
            side=insert_side,
            write=True,
        )

    def start(self, timeout: float | None = None) -> None:
        """Submit the question's task (queued: ``assay-job-<uuid>``); ``timeout`` is the
        local backend's (a wait for a fork server), unused here: ``wait`` applies it."""
        del timeout
        try:
            self.executor.submit(self.question_uuid, ENTRY, probe=False)
        except Exception as error:  # could not queue it: the question fails, saying why
            from assay.jobs.payloads import exception_payload
            from assay.services.publishing import record_failure

            payload = {**exception_payload(error), "origin": "parent", "crashed": True}
            record_failure(self.recorder, self.question_uuid, "fail", payload)
            raise

    # -- waiting ----------------------------------------------------------------------------
    def wait(self, timeout: float | None, maximum_heartbeat_interval: float) -> dict[str, Any]:
        """Follow the job's events until it ends; the answer, or the question's exception."""
        from assay.jobs import store

        del maximum_heartbeat_interval  # the task beats every 5 s; silence: see SILENT_AFTER_S
        workspace = self.recorder.workspace
        delivery = Delivery(
            self.service.sruid,
            self.question_uuid,
            self.twine,
            self.handle_monitor_message,
            bool(self.question.get("subscribe_to_logs", True)),
            self.received_events,
            lambda: _request_stop(self.question_uuid, workspace),
        )
        deadline = time.monotonic() + timeout if timeout is not None else None
        checked = [time.monotonic()]

        def idle(record: Any) -> None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _Deadline
            seen = record.last_seen if record.last_seen is not None else record.updated
            if time.time() - seen > SILENT_AFTER_S and now - checked[0] > SILENT_AFTER_S / 3:
                checked[0] = now
                self._reconcile()

        try:
            for event in store.follow_events(self.question_uuid, idle=idle, workspace=workspace):
                delivery.deliver(event.type, event.event, event.payload)
                if deadline is not None and time.monotonic() >= deadline:
                    raise _Deadline  # a chatty app: its events never leave the follower idle
        except _Deadline:
            self._time_out(timeout)
        except BaseException:
            _request_stop(self.question_uuid, workspace)  # KeyboardInterrupt, a handler raised
            self._cancel_future()
            raise
        return self._outcome()

    def _reconcile(self) -> None:
        from assay.jobs.executors.dask import reconcile_dask

        reconcile_dask(self.recorder.workspace, {self.environment.id: self.environment})

    def _time_out(self, timeout: float | None) -> None:
        from assay.jobs import store
        from assay.jobs.payloads import exception_payload
        from assay.services.publishing import record_failure

        error = QuestionTimeout(
            f"{self.service.sruid}: no answer to question {self.question_uuid} "
            f"within the timeout of {timeout:g} s; its task was stopped"
        )
        recorder = JobRecorder(self.question_uuid, self.recorder.workspace)
        if store.get_job(self.question_uuid, workspace=recorder.workspace).state in (
            "CREATED",
            "QUEUED",
        ):
            try:
                recorder.fire("provision", payload={"reason": "timed out in the queue"})
            except InvalidTransition:
                pass  # it started meanwhile: the time-out below applies to it running
        payload = {**exception_payload(error), "origin": "parent", "traceback": ""}
        record_failure(recorder, self.question_uuid, "time_out", payload)
        self._cancel_future()

    def _cancel_future(self) -> None:
        """Cancel the task's future (a pending one then never runs); best effort."""
        try:
            self.executor.cancel(self.question_uuid)
        except Exception as error:  # the scheduler is gone: nothing will run the task anyway
            logger.info("question %s: cancelling its task: %s", self.question_uuid, error)

    def _outcome(self) -> dict[str, Any]:
        from assay.services.events import error_of, get_question
        from assay.services.exceptions import rebuild_exception

        record = get_question(self.question_uuid, self.recorder.workspace)
        if record.status == "succeeded":
            return record.answer
        self._cancel_future()
        if record.status == "cancelled":
            raise QuestionCancelled(
                f"{self.service.sruid}: question {self.question_uuid} was cancelled"
            )
        raise rebuild_exception(error_of(record), self.service.sruid, self.question_uuid)


class _Deadline(Exception):
    """The asker's timeout passed (internal to ``DaskQuestion.wait``)."""


def _request_stop(question_uuid: str, workspace: Any) -> None:
    from assay.jobs import store

    try:
        store.request_stop(question_uuid, workspace=workspace)
    except InvalidTransition:
        pass  # it ended meanwhile: that outcome stands
