"""``Child``: ask a service questions, as Octue's ``Child`` does, on a local backend.

    child = Child(id="examples/elevation:0.1.0", backend={"name": "local"})
    answer, question_uuid = child.ask(input_values={"locations": [[0, 1]]}, timeout=60)
    answer["output_values"], answer["output_manifest"]

Before a question leaves the parent, its service is resolved (``registry``), its twine loaded,
and the input values and the manifest's required datasets checked, so bad input fails at once
and nothing is recorded. ``allow_local_files=False`` (the default, as in Octue) refuses a manifest
naming this machine's files. The caller's manifest is never changed: a ``Manifest`` is immutable
and a dict is read, not kept. Every question is a job of kind ``question`` (``assay.jobs``): its
state, events and outcome are stored in the catalog (``assay questions`` and ``assay jobs``
show it).

``asynchronous=True`` returns ``(None, question_uuid)`` at once; fetch the answer later with
``Child.get_answer(question_uuid)`` (in any process: from this process's running question, or
else from the catalog; a wait ends when the asking process died, see ``assay.jobs.orphans``).
``Child.cancel(question_uuid)`` stops a running question from any process (the job's
``stop_requested`` column, which its supervisor polls). With
``max_retries`` a failed question (the app raised, the child crashed, hung or timed out) is asked
again as a new question; a cancelled one is not.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from assay.bundles.manifest_download import install_downloader
from assay.core.errors import (
    InvalidInput,
    InvalidTransition,
    QuestionCancelled,
    QuestionNotFound,
    QuestionTimeout,
)
from assay.core.manifest import Manifest, local_files_refused
from assay.services import registry
from assay.services.config import LOCAL_SRUID, ServiceConfig, parse_sruid
from assay.services.context import current_question, to_manifest
from assay.services.exceptions import ask_again
from assay.services.twine import Twine, load_twine

install_downloader()  # manifests handed to apps and askers can download their datasets
logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 86_400.0
DEFAULT_HEARTBEAT_INTERVAL = 1.0
DEFAULT_MAXIMUM_HEARTBEAT_INTERVAL = 10.0
_UNKNOWN_GRACE = 1.0
BACKENDS = ("local", "http")
_LOCAL_BACKEND_KEYS = frozenset({"name", "path", "environment"})

#: Asynchronous questions of this process: uuid -> (future, time it was done or None). An entry
#: goes when its answer is fetched, or ``FUTURE_TTL`` seconds after it is done (the answer
#: stays in the catalog), so a long-running process does not keep every answer.
_futures: dict[str, tuple[concurrent.futures.Future[Any], list[float]]] = {}
_futures_lock = threading.Lock()
FUTURE_TTL = 300.0
_reconciled = False
_reconcile_lock = threading.Lock()


def check_backend(backend: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``backend``, checked: ``local`` (a service folder on this machine; with
    ``environment`` naming an ``executor: dask`` environment the question is answered on its
    cluster, see ``assay.services.dask_backend``) or ``http`` (a service behind an Assay
    server: ``url``, ``token``)."""
    if backend is None:
        return {"name": "local"}
    if not isinstance(backend, Mapping) or not isinstance(backend.get("name"), str):
        raise InvalidInput(f"backend: expected a mapping with a 'name', got {backend!r}")
    checked = dict(backend)
    name = checked["name"]
    if name == "http":
        from assay.services import http_backend

        return http_backend.check(checked)
    if name not in BACKENDS:
        raise InvalidInput(
            f"backend {name!r} is not available: use 'local' (a service folder on this machine) "
            "or 'http' (a service behind an Assay server)"
        )
    unknown = sorted(set(checked) - _LOCAL_BACKEND_KEYS)
    if unknown:
        raise InvalidInput(
            f"backend {name!r}: unknown key {unknown[0]!r} (known keys: "
            f"{', '.join(sorted(_LOCAL_BACKEND_KEYS))})"
        )
    if not isinstance(checked.get("environment", ""), str):
        raise InvalidInput("backend 'local': environment must be an environment id")
    return checked


class Child:
    """A service that can be asked questions (Octue's ``Child``)."""

    def __init__(
        self,
        id: str,
        backend: Mapping[str, Any] | None = None,
        internal_sruid: str = LOCAL_SRUID,
    ) -> None:
        parse_sruid(id)
        self.id = id
        self.backend = check_backend(backend)
        self.internal_sruid = internal_sruid
        self.received_events: list[dict[str, Any]] | None = None
        self._service: ServiceConfig | None = None

    def __repr__(self) -> str:
        return f"<Child({self.id!r})>"

    def service(self) -> ServiceConfig:
        """The local service this child's id resolves to (resolved once)."""
        if self._service is None:
            self._service = registry.resolve(self.id, self.backend.get("path"))
        return self._service

    # -- asking -----------------------------------------------------------------------------
    def ask(
        self,
        input_values: Any = None,
        input_manifest: Any = None,
        children: Sequence[Mapping[str, Any]] | None = None,
        subscribe_to_logs: bool = True,
        allow_local_files: bool = False,
        handle_monitor_message: Callable[[Any], None] | None = None,
        record_events: bool = True,
        question_uuid: str | None = None,
        parent_question_uuid: str | None = None,
        originator_question_uuid: str | None = None,
        asynchronous: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        maximum_heartbeat_interval: float = DEFAULT_MAXIMUM_HEARTBEAT_INTERVAL,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        raise_errors: bool = True,
        max_retries: int = 0,
        prevent_retries_when: Iterable[type[BaseException]] | None = None,
        log_errors: bool = True,
        log_level: int = logging.INFO,
    ) -> tuple[Any, str]:
        """Ask the child; returns ``(answer, question_uuid)`` where ``answer`` is
        ``{"output_values", "output_manifest"}`` (``None`` for an asynchronous question; the
        exception itself when ``raise_errors=False`` and the question failed)."""
        if timeout is not None and timeout <= 0:
            raise InvalidInput(f"timeout must be positive, got {timeout!r}")
        if maximum_heartbeat_interval <= heartbeat_interval:
            raise InvalidInput(
                "maximum_heartbeat_interval must be longer than heartbeat_interval "
                f"({maximum_heartbeat_interval!r} <= {heartbeat_interval!r})"
            )
        if max_retries < 0:
            raise InvalidInput(f"max_retries must be 0 or more, got {max_retries!r}")
        if self.backend["name"] == "http":
            from assay.services import http_backend

            return http_backend.ask(
                self,
                input_values=input_values,
                input_manifest=input_manifest,
                children=children,
                subscribe_to_logs=subscribe_to_logs,
                allow_local_files=allow_local_files,
                handle_monitor_message=handle_monitor_message,
                record_events=record_events,
                question_uuid=question_uuid,
                parent_question_uuid=parent_question_uuid,
                originator_question_uuid=originator_question_uuid,
                asynchronous=asynchronous,
                timeout=timeout,
                maximum_heartbeat_interval=maximum_heartbeat_interval,
                heartbeat_interval=heartbeat_interval,
                raise_errors=raise_errors,
                max_retries=max_retries,
                prevent_retries_when=tuple(prevent_retries_when or ()),
                log_errors=log_errors,
            )
        service = self.service()
        twine = load_twine(service.twine_path)
        twine.validate_input_values(input_values)
        manifest = to_manifest(input_manifest, "input_manifest")
        if manifest is not None and not allow_local_files:
            for key, reference in manifest.references.items():
                if reference.uses_local_files:
                    raise local_files_refused(key, reference)
        twine.validate_manifest("input_manifest", manifest, check_files=False)
        context = current_question()
        if parent_question_uuid is None and context is not None:
            parent_question_uuid = context.question_uuid
        if originator_question_uuid is None and context is not None:
            originator_question_uuid = context.originator_question_uuid
        first_uuid = question_uuid or str(uuid_module.uuid4())
        self.received_events = [] if record_events else None
        attempt = _Attempts(
            child=self,
            service=service,
            twine=twine,
            base={
                "service": service.to_primitive(),
                "input_values": input_values,
                "input_manifest": manifest.serialise() if manifest is not None else None,
                "children": [dict(child) for child in children] if children is not None else None,
                "subscribe_to_logs": subscribe_to_logs,
                "heartbeat_interval": heartbeat_interval,
                "log_level": log_level,
                "parent_question_uuid": parent_question_uuid,
                "originator_question_uuid": originator_question_uuid,
            },
            first_uuid=first_uuid,
            handle_monitor_message=handle_monitor_message,
            timeout=timeout,
            maximum_heartbeat_interval=maximum_heartbeat_interval,
            max_retries=max_retries,
            prevent_retries_when=tuple(prevent_retries_when or ()),
        )
        if self.backend.get("environment") is not None:
            from assay.services import dask_backend  # an executor: dask environment

            attempt.environment = dask_backend.dask_environment(self.backend)
            if attempt.environment is not None:  # checked before anything is recorded
                dask_backend.prepare(attempt.environment, service, attempt.base)
        _reconcile_once()
        if asynchronous:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            done_at: list[float] = []
            future.add_done_callback(lambda _: done_at.append(time.monotonic()))
            with _futures_lock:
                _prune_futures()
                _futures[first_uuid] = (future, done_at)
            started = threading.Event()

            def work() -> None:
                try:
                    future.set_result(attempt.run(started))
                except BaseException as error:
                    future.set_exception(error)
                    started.set()

            threading.Thread(
                target=work, name=f"assay-question-{first_uuid[:8]}", daemon=True
            ).start()
            started.wait()
            return None, first_uuid
        try:
            return attempt.run(), attempt.question_uuid
        except QuestionCancelled:
            raise
        except Exception as error:
            if raise_errors:
                raise
            if log_errors:
                logger.error("question %s to %s failed: %s", attempt.question_uuid, self.id, error)
            return error, attempt.question_uuid

    def ask_multiple(
        self,
        *questions: Mapping[str, Any],
        raise_errors: bool = True,
        max_retries: int = 0,
        prevent_retries_when: Iterable[type[BaseException]] | None = None,
        max_workers: int | None = None,
        log_errors: bool = True,
    ) -> list[tuple[Any, str]]:
        """Ask several questions in parallel (each a dict of ``ask`` arguments); answers come
        back in the order asked. With ``raise_errors=True`` the first failure is raised after
        all questions have finished."""
        if not questions:
            return []
        workers = max_workers or min(32, (os.cpu_count() or 1) + 4, len(questions))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
            futures = []
            for question in questions:
                arguments = {
                    "raise_errors": raise_errors,
                    "max_retries": max_retries,
                    "prevent_retries_when": prevent_retries_when,
                    "log_errors": log_errors,
                    **dict(question),
                }
                context = contextvars.copy_context()
                futures.append(executor.submit(context.run, self._ask_kwargs, arguments))
            concurrent.futures.wait(futures)
        return [future.result() for future in futures]

    def _ask_kwargs(self, arguments: dict[str, Any]) -> tuple[Any, str]:
        return self.ask(**arguments)

    # -- answers later, and cancelling --------------------------------------------------------
    @staticmethod
    def get_answer(
        question_uuid: str, wait: bool = True, timeout: float | None = None
    ) -> dict[str, Any] | None:
        """The answer to a question asked earlier (e.g. with ``asynchronous=True``).

        Raises the question's exception if it failed. With ``wait=False`` returns None while it
        is still running; with ``wait=True`` waits (at most ``timeout`` seconds, then
        ``QuestionTimeout``)."""
        from assay.services import http_backend

        if http_backend.asked_here(question_uuid):
            return http_backend.get_answer(question_uuid, wait, timeout)
        with _futures_lock:
            _prune_futures()
            entry = _futures.get(question_uuid)
        if entry is not None:
            future = entry[0]
            if not wait and not future.done():
                return None
            try:
                result: dict[str, Any] = future.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                raise QuestionTimeout(
                    f"question {question_uuid} has not been answered within {timeout:g} s"
                ) from None
            finally:
                if future.done():
                    with _futures_lock:
                        _futures.pop(question_uuid, None)
            return result
        return _answer_from_catalog(question_uuid, wait, timeout)

    @staticmethod
    def cancel(question_uuid: str) -> bool:
        """Stop a running question (its worker is killed and the job ends STOPPED), from any
        process. Returns False when it had already finished; QuestionNotFound when there is
        none."""
        from assay.services import http_backend
        from assay.services.local import running_question

        if http_backend.asked_here(question_uuid):
            return http_backend.cancel(question_uuid)
        running = running_question(question_uuid)
        if running is not None:
            running.cancel()
            return True
        return _cancel_elsewhere(question_uuid)


class _Attempts:
    """One question and its retries."""

    def __init__(
        self,
        child: Child,
        service: ServiceConfig,
        twine: Twine,
        base: dict[str, Any],
        first_uuid: str,
        handle_monitor_message: Callable[[Any], None] | None,
        timeout: float | None,
        maximum_heartbeat_interval: float,
        max_retries: int,
        prevent_retries_when: tuple[type[BaseException], ...],
    ) -> None:
        self.child = child
        self.service = service
        self.twine = twine
        self.base = base
        self.question_uuid = first_uuid
        self.handle_monitor_message = handle_monitor_message
        self.timeout = timeout
        self.maximum_heartbeat_interval = maximum_heartbeat_interval
        self.max_retries = max_retries
        self.prevent_retries_when = prevent_retries_when
        self.environment: Any = None  # a dask environment: see assay.services.dask_backend

    def run(self, started: threading.Event | None = None) -> dict[str, Any]:
        retry = 0
        while True:
            try:
                return self._once(retry, started)
            except QuestionCancelled:
                raise
            except Exception as error:
                if not ask_again(
                    error,
                    retry,
                    self.max_retries,
                    self.prevent_retries_when,
                    self.question_uuid,
                    self.service.sruid,
                    logger,
                ):
                    raise
                retry += 1
                self.question_uuid = str(uuid_module.uuid4())

    def _once(self, retry: int, started: threading.Event | None) -> dict[str, Any]:
        from assay.jobs.recorder import JobRecorder
        from assay.services.local import LocalQuestion

        question = {
            **self.base,
            "question_uuid": self.question_uuid,
            "retry_count": retry,
        }
        originator = question["originator_question_uuid"] or self.question_uuid
        question["originator_question_uuid"] = originator
        arguments = (
            self.service,
            self.twine,
            question,
            JobRecorder(self.question_uuid),
            self.handle_monitor_message,
            self.child.received_events,
        )
        if self.environment is not None:
            from assay.services.dask_backend import DaskQuestion

            local: Any = DaskQuestion(*arguments, environment=self.environment)
        else:
            local = LocalQuestion(*arguments)
        local.create_job(
            {
                "asker_pid": os.getpid(),
                "asker": self.child.internal_sruid,
                "service_folder": str(self.service.directory),
                "retry_count": retry,
                "timeout": self.timeout,
            },
            # An asynchronous question's uuid goes back to the caller at once: its row must be
            # findable at once. Otherwise the row is written with the first batch of events
            # (with the outcome, for a quick question: one transaction).
            write=started is not None and retry == 0,
        )
        local.start(self.timeout)
        if started is not None:
            started.set()
        return local.wait(self.timeout, self.maximum_heartbeat_interval)


def _prune_futures() -> None:
    """Drop answers done more than ``FUTURE_TTL`` seconds ago (caller holds the lock)."""
    now = time.monotonic()
    for key in [k for k, (_, done) in _futures.items() if done and now - done[0] > FUTURE_TTL]:
        del _futures[key]


def _reconcile_once() -> None:
    """Once per process, before its first question: fail the questions of this host whose
    asking process died (they would otherwise stay running for ever)."""
    global _reconciled
    with _reconcile_lock:
        if _reconciled:
            return
        _reconciled = True
    from assay.catalog import question_queries
    from assay.jobs import orphans
    from assay.jobs import store as job_store

    active = ("CREATED", "QUEUED", "PROVISIONING", "RUNNING", "PUBLISHING")
    for record in job_store.list_jobs(kind=question_queries.KIND, state=active, limit=None):
        orphans.end_orphan(record)


def _answer_from_catalog(
    question_uuid: str, wait: bool, timeout: float | None
) -> dict[str, Any] | None:
    from assay.jobs import orphans
    from assay.jobs import store as job_store
    from assay.services import events
    from assay.services.exceptions import rebuild_exception

    deadline = time.monotonic() + timeout if timeout is not None else None
    # A synchronous question's row is written within a quarter of a second of its asking: a
    # waiting caller given its uuid (``ask(question_uuid=...)``) allows for that.
    unknown_until = time.monotonic() + _UNKNOWN_GRACE
    delay = 0.01
    next_orphan_check = time.monotonic()
    while True:
        try:
            record = events.get_question(question_uuid)
        except QuestionNotFound:
            if not wait or time.monotonic() >= unknown_until:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        if record.status not in events.FINAL_STATUSES and time.monotonic() >= next_orphan_check:
            # The asker supervises the question: if it died, nobody will record an outcome.
            next_orphan_check = time.monotonic() + 1.0
            job = orphans.end_orphan(job_store.get_job(question_uuid))
            if job.terminal:
                record = events.get_question(question_uuid)
        if record.status == "succeeded":
            return record.answer
        if record.status in events.FINAL_STATUSES:
            if record.status == "cancelled":
                raise QuestionCancelled(f"question {question_uuid} was cancelled")
            raise rebuild_exception(events.error_of(record), record.service_id, question_uuid)
        if not wait:
            return None
        if deadline is not None and time.monotonic() >= deadline:
            raise QuestionTimeout(
                f"question {question_uuid} has not been answered within {timeout:g} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _cancel_elsewhere(question_uuid: str) -> bool:
    """Cancel a question asked by another process (or another thread's question whose handle
    this thread lacks): set the job's stop request, which the asker's supervisor polls; a
    question that has not started is stopped at once; an orphan (its asker died) is stopped
    here."""
    from assay.jobs import orphans
    from assay.jobs import store as job_store
    from assay.services import events

    record = events.get_question(question_uuid)
    if record.status in events.FINAL_STATUSES:
        return False
    try:
        job = job_store.request_stop(question_uuid)
    except InvalidTransition:
        return False  # it finished meanwhile
    reason = orphans.orphan_reason(job)
    if reason is not None:
        try:
            job_store.fire(
                question_uuid, "stop", payload={"by": f"pid {os.getpid()}", "reason": reason}
            )
        except InvalidTransition:
            return False
    return True


def get_answer(question_uuid: str, wait: bool = True, timeout: float | None = None) -> Any:
    """Module-level spelling of ``Child.get_answer``."""
    return Child.get_answer(question_uuid, wait=wait, timeout=timeout)


def cancel(question_uuid: str) -> bool:
    """Module-level spelling of ``Child.cancel``."""
    return Child.cancel(question_uuid)


__all__ = ["Child", "Manifest", "cancel", "get_answer"]
