"""The ``http`` backend of ``Child.ask``: ask a service that runs behind another Assay server.

    child = Child("lab/elevation:1.0.0",
                  backend={"name": "http", "url": "https://assay.lab.example", "token": TOKEN})
    answer, question_uuid = child.ask(input_values={...}, handle_monitor_message=print)

(``"environment": ENV`` in the backend asks the server to answer in its compute environment
``ENV``; see ``assay.services.dask_backend``.)

The server runs the question through the local backend's own code (``/api/v1/questions``);
this side follows the question's job events over Server-Sent Events
(``/api/v1/jobs/{uuid}/stream``, resumed with ``Last-Event-ID`` after a dropped connection)
and gives the caller what the local backend gives:

- the input values and manifest are checked against the service's twine (fetched from the
  server once per process) before anything is sent; a manifest naming this machine's files is
  refused (the server cannot read them);
- the child's log records are re-emitted on this process's loggers, prefixed
  ``[service id | question uuid]`` (``subscribe_to_logs``);
- monitor messages valid for the twine reach ``handle_monitor_message``; invalid ones are
  logged and skipped; a handler that raises cancels the question and its error is raised;
- the answer is ``{"output_values", "output_manifest"}``; a failed question raises the
  exception the local backend raises (rebuilt from the same payload); a cancelled one
  ``QuestionCancelled``; ``Child.cancel(uuid)`` cancels it on the server;
- ``max_retries`` asks again (a new question) after a failure, as locally;
- HTTP errors are the server's ``AssayError`` classes, by their stable ``code``; a server that
  cannot be reached, or does not answer within ``timeout`` seconds (backend key, default 30),
  is ``Unavailable`` once ``retries`` (backend key, default 3) more tries failed: GETs are
  tried again after connection errors, timeouts and 502/503/504, a POST only when it could
  not be sent at all; a dropped event stream is resumed with ``Last-Event-ID``, so no event is
  lost or delivered twice (``Server``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping
from typing import Any

from assay.core import errors
from assay.core.errors import (
    InvalidInput,
    QuestionCancelled,
    QuestionTimeout,
)
from assay.core.manifest import Manifest, local_files_refused
from assay.services.context import current_question, to_manifest
from assay.services.delivery import Delivery
from assay.services.exceptions import ask_again, rebuild_exception
from assay.services.http_client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, Server
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

KEYS = frozenset({"name", "url", "token", "verify", "timeout", "retries", "environment"})
#: Questions asked over HTTP by this process: uuid -> backend (for cancel and get_answer).
_asked: dict[str, dict[str, Any]] = {}
_asked_lock = threading.Lock()


def check(backend: Mapping[str, Any]) -> dict[str, Any]:
    """A checked copy of an ``http`` backend: ``url`` (http:// or https://), ``token``."""
    checked = dict(backend)
    unknown = sorted(set(checked) - KEYS)
    if unknown:
        raise InvalidInput(
            f"backend 'http': unknown key {unknown[0]!r} (known keys: {', '.join(sorted(KEYS))})"
        )
    url = checked.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInput(f"backend 'http': url must be an http(s):// URL, got {url!r}")
    token = checked.get("token")
    if token is not None and not isinstance(token, str):
        raise InvalidInput("backend 'http': token must be a string")
    timeout = checked.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidInput(
            f"backend 'http': timeout must be a number of seconds > 0, got {timeout!r}"
        )
    retries = checked.get("retries", DEFAULT_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInput(f"backend 'http': retries must be a whole number >= 0, got {retries!r}")
    if not isinstance(checked.get("environment", ""), str):
        raise InvalidInput("backend 'http': environment must be an environment id")
    checked["url"] = url.rstrip("/")
    return checked


def ask(
    child: Any,
    *,
    input_values: Any,
    input_manifest: Any,
    children: Any,
    subscribe_to_logs: bool,
    allow_local_files: bool,
    handle_monitor_message: Callable[[Any], None] | None,
    record_events: bool,
    question_uuid: str | None,
    parent_question_uuid: str | None,
    originator_question_uuid: str | None,
    asynchronous: bool,
    timeout: float | None,
    maximum_heartbeat_interval: float,
    heartbeat_interval: float,
    raise_errors: bool,
    max_retries: int,
    prevent_retries_when: tuple[type[BaseException], ...],
    log_errors: bool,
) -> tuple[Any, str]:
    """``Child.ask`` for a child behind an Assay server (see the module docstring)."""
    server = Server.of(child.backend)
    twine = server.twine(child.id)
    twine.validate_input_values(input_values)
    manifest = to_manifest(input_manifest, "input_manifest")
    if manifest is not None:
        for key, reference in manifest.references.items():
            if reference.uses_local_files:  # the server cannot read this machine's files
                raise local_files_refused(key, reference)
    twine.validate_manifest("input_manifest", manifest, check_files=False)
    context = current_question()
    if parent_question_uuid is None and context is not None:
        parent_question_uuid = context.question_uuid
    if originator_question_uuid is None and context is not None:
        originator_question_uuid = context.originator_question_uuid
    child.received_events = [] if record_events else None
    body = {
        "service_id": child.id,
        "input_values": input_values,
        "input_manifest": manifest.serialise() if manifest is not None else None,
        "children": [dict(c) for c in children] if children is not None else None,
        "subscribe_to_logs": subscribe_to_logs,
        "parent_question_uuid": parent_question_uuid,
        "originator_question_uuid": originator_question_uuid,
        "timeout": timeout,
        "heartbeat_interval": heartbeat_interval,
        "maximum_heartbeat_interval": maximum_heartbeat_interval,
    }
    if child.backend.get("environment") is not None:  # one of the server's environments
        body["environment"] = child.backend["environment"]
    asked = _Asked(child, server, twine, body, handle_monitor_message, subscribe_to_logs, timeout)
    if asynchronous:
        uuid = asked.post(question_uuid or str(uuid_module.uuid4()))
        return None, uuid
    uuid = question_uuid or str(uuid_module.uuid4())
    retry = 0
    while True:
        try:
            asked.post(uuid)
            return asked.follow(uuid), uuid
        except QuestionCancelled:
            raise
        except Exception as error:
            if ask_again(error, retry, max_retries, prevent_retries_when, uuid, child.id, logger):
                retry += 1
                uuid = str(uuid_module.uuid4())
                continue
            if raise_errors:
                raise
            if log_errors:
                logger.error("question %s to %s failed: %s", uuid, child.id, error)
            return error, uuid


class _Asked:
    def __init__(
        self,
        child: Any,
        server: Server,
        twine: Twine,
        body: dict[str, Any],
        handle_monitor_message: Callable[[Any], None] | None,
        subscribe_to_logs: bool,
        timeout: float | None,
    ) -> None:
        self.child = child
        self.server = server
        self.twine = twine
        self.body = body
        self.handle_monitor_message = handle_monitor_message
        self.subscribe_to_logs = subscribe_to_logs
        self.timeout = timeout

    def post(self, uuid: str) -> str:
        answer = self.server.call(
            "POST", "/api/v1/questions", json={**self.body, "question_uuid": uuid}
        )
        found: str = answer["question_uuid"]
        with _asked_lock:
            _asked[found] = {
                "url": self.server.url,
                "token": self.server.token,
                "verify": self.server.verify,
                "timeout": self.server.timeout,
                "retries": self.server.retries,
                "service_id": self.child.id,
            }
        return found

    def follow(self, uuid: str) -> dict[str, Any]:
        # The server ends the question at its timeout; allow a margin for the last events.
        deadline = time.monotonic() + self.timeout + 30.0 if self.timeout is not None else None
        try:
            for kind, data in self.server.events(uuid, deadline):
                self._deliver(uuid, kind, data)
        except QuestionTimeout:
            cancel(uuid)
            raise QuestionTimeout(
                f"{self.child.id}: no answer to question {uuid} within the timeout of "
                f"{self.timeout:g} s; the question was cancelled"
            ) from None
        except KeyboardInterrupt:
            cancel(uuid)
            raise
        return answer_of(self.server, uuid, self.child.id)

    def _deliver(self, uuid: str, kind: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        Delivery(
            self.child.id,
            uuid,
            self.twine,
            self.handle_monitor_message,
            self.subscribe_to_logs,
            self.child.received_events,
            lambda: cancel(uuid),
        ).deliver(kind, data.get("event"), data.get("payload") or {})


def answer_of(server: Server, uuid: str, service_id: str) -> dict[str, Any]:
    """The answer of a finished question, or its exception raised."""
    found = server.call("GET", f"/api/v1/questions/{uuid}/answer")
    if found["status"] == "succeeded":
        manifest = found["answer"]["output_manifest"]
        return {
            "output_values": found["answer"]["output_values"],
            "output_manifest": Manifest.deserialise(manifest) if manifest else None,
        }
    if found["status"] == "cancelled":
        raise QuestionCancelled(f"{service_id}: question {uuid} was cancelled")
    if not found["final"]:
        raise errors.ChildCrashed(f"question {uuid} has no outcome yet ({found['status']})")
    raise rebuild_exception(found["error"] or {}, service_id, uuid)


def asked_here(question_uuid: str) -> bool:
    with _asked_lock:
        return question_uuid in _asked


def cancel(question_uuid: str) -> bool:
    """Cancel a question this process asked over HTTP; False when it had already ended."""
    with _asked_lock:
        backend = _asked.get(question_uuid)
    if backend is None:
        return False
    found = Server.of(backend).call("POST", f"/api/v1/questions/{question_uuid}/cancel")
    return bool(found["cancelled"])


def get_answer(question_uuid: str, wait: bool, timeout: float | None) -> dict[str, Any] | None:
    """``Child.get_answer`` for a question this process asked over HTTP."""
    with _asked_lock:
        backend = dict(_asked[question_uuid])
    server = Server.of(backend)
    deadline = time.monotonic() + timeout if timeout is not None else None
    delay = 0.05
    while True:
        found = server.call("GET", f"/api/v1/questions/{question_uuid}/answer")
        if found["final"]:
            return answer_of(server, question_uuid, backend["service_id"])
        if not wait:
            return None
        if deadline is not None and time.monotonic() >= deadline:
            raise QuestionTimeout(
                f"question {question_uuid} has not been answered within {timeout:g} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
