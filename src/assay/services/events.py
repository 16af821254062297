"""Questions and their events, read from the job layer: list them, show them, replay them.

A question is a job of kind ``question`` (``assay.jobs``) with a side row in ``question_jobs``
(service id, backend, parent and originator uuids, error payload, details). This module gives
the question's view of it, as before the move:

- status (from the job's state): CREATED/QUEUED/PROVISIONING ``asked``, RUNNING/PUBLISHING
  ``running``, FINISHED ``succeeded``, FAILED ``failed`` (``crashed`` when the worker died,
  hung or could not start, or the asker died), TIMED_OUT ``timed_out``, STOPPED ``cancelled``;
- event kinds (from the job's events, one for one, so seqs run 1..n): transition ``create``
  ``question``; ``provision`` ``provisioning`` (only for a question that timed out while its
  worker was starting); ``run`` ``delivery``; ``publish`` ``publishing``; ``finish`` ``result``;
  ``fail``/``time_out`` ``exception``; ``stop`` ``cancelled``; type ``log`` ``log_record``;
  ``monitor`` ``monitor_message``; ``stop_request`` as is. Heartbeats are no longer events (they
  update the job's ``last_seen``); ``heartbeat`` stays a known kind for old exports.

Each event's payload carries the question's parent and originator uuids (added on reading).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import question_queries as queries
from assay.core.errors import AmbiguousReference, InvalidInput, QuestionNotFound
from assay.core.manifest import Manifest
from assay.jobs import store as job_store
from assay.jobs.records import JobEvent

EVENT_KINDS = (
    "question",
    "delivery",
    "heartbeat",
    "log_record",
    "monitor_message",
    "exception",
    "result",
    "cancelled",
    "publishing",
    "stop_request",
    "provisioning",
)
#: Statuses a question moves through; the last five are final.
STATUSES = ("asked", "running", "succeeded", "failed", "crashed", "timed_out", "cancelled")
FINAL_STATUSES = frozenset(STATUSES[2:])
_STATE_STATUS = {
    "CREATED": "asked",
    "QUEUED": "asked",
    "PROVISIONING": "asked",
    "RUNNING": "running",
    "PUBLISHING": "running",
    "FINISHED": "succeeded",
    "PROVISION_FAILED": "failed",
    "FAILED": "failed",
    "TIMED_OUT": "timed_out",
    "STOPPED": "cancelled",
}
_STATUS_STATES = {
    status: tuple(state for state, s in _STATE_STATUS.items() if s == status) for status in STATUSES
}
_STATUS_STATES["crashed"] = ("FAILED",)
_TRANSITION_KINDS = {
    "create": "question",
    "recreate": "question",
    "provision": "provisioning",
    "run": "delivery",
    "publish": "publishing",
    "finish": "result",
    "fail": "exception",
    "time_out": "exception",
    "stop": "cancelled",
}
_TYPE_KINDS = {"log": "log_record", "monitor": "monitor_message"}


def dumps_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_of(state: str, error: dict[str, Any] | None) -> str:
    """The question's status for its job's state. FAILED is ``crashed`` when the worker died or
    hung (the error says so) or when no error was recorded at all: only reconciliation fails a
    question without one, because its asker died."""
    status = _STATE_STATUS.get(state, state.lower())
    if status == "failed" and (error is None or error.get("crashed")):
        return "crashed"
    return status


@dataclass(frozen=True)
class QuestionRecord:
    question_uuid: str
    parent_question_uuid: str | None
    originator_question_uuid: str | None
    service_id: str
    backend: str
    status: str
    created: float
    finished: float | None
    input_values: Any
    input_manifest: Any
    output_values: Any
    output_manifest: Any
    error: dict[str, Any] | None
    details: dict[str, Any]
    #: The job's state (``assay jobs`` shows the same job).
    state: str = ""
    #: The job's error text ("Type: message", or why reconciliation failed it).
    reason: str | None = None

    @property
    def answer(self) -> dict[str, Any]:
        manifest = self.output_manifest
        return {
            "output_values": self.output_values,
            "output_manifest": Manifest.deserialise(manifest) if manifest is not None else None,
        }


@dataclass(frozen=True)
class QuestionEvent:
    question_uuid: str
    seq: int
    kind: str
    at: float
    payload: dict[str, Any]


def _record(row: Any) -> QuestionRecord:
    spec = _loads(row.spec) or {}
    result = _loads(row.result) or {}
    error = _loads(row.question_error)
    return QuestionRecord(
        question_uuid=row.job_id,
        parent_question_uuid=row.parent_question_uuid,
        originator_question_uuid=row.originator_question_uuid,
        service_id=row.service_id,
        backend=row.backend,
        status=status_of(row.state, error),
        created=row.created,
        finished=row.finished,
        input_values=spec.get("input_values"),
        input_manifest=spec.get("input_manifest"),
        output_values=result.get("output_values"),
        output_manifest=result.get("output_manifest"),
        error=error,
        details=_loads(row.details) or {},
        state=row.state,
        reason=row.error,
    )


def event_kind(event: JobEvent) -> str:
    """The question's name for one of its job's events."""
    if event.type == "transition":
        return _TRANSITION_KINDS.get(event.event, event.event)
    return _TYPE_KINDS.get(event.type, event.type)


def as_question_event(event: JobEvent, record: QuestionRecord) -> QuestionEvent:
    payload = {
        "parent_question_uuid": record.parent_question_uuid,
        "originator_question_uuid": record.originator_question_uuid,
        **event.payload,
    }
    return QuestionEvent(event.job_id, event.seq, event_kind(event), event.at, payload)


def _error_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An exception event's payload; a reconciled failure (the asker died) has only a reason."""
    if payload.get("type"):
        return payload
    return {
        "type": "assay.core.errors.ChildCrashed",
        "message": str(payload.get("reason") or payload.get("error") or "the question failed"),
        "traceback": "",
    }


def error_of(record: QuestionRecord) -> dict[str, Any]:
    """The exception payload of a failed question (its side row's, or the job's reason)."""
    if record.error is not None:
        return record.error
    return _error_payload({"reason": record.reason})


# -- reading ----------------------------------------------------------------------------------
def resolve_question(reference: str, workspace: Workspace | None = None) -> str:
    """A full question uuid from a uuid or a unique prefix (4+ characters)."""
    workspace = workspace or open_workspace()
    reference = reference.strip().lower()
    if len(reference) < 4:
        raise InvalidInput(f"question uuid {reference!r} is too short: give 4 or more characters")
    with workspace.read() as conn:
        if queries.question(conn, reference) is not None:
            return reference
        matches = queries.questions_with_prefix(conn, reference)
    if not matches:
        raise QuestionNotFound(
            f"no question {reference!r} in the catalog (list them with 'assay questions ls')"
        )
    if len(matches) > 1:
        raise AmbiguousReference(
            f"question prefix {reference!r} matches several questions: "
            f"{', '.join(matches[:10])}; give more characters"
        )
    return str(matches[0])


def get_question(question_uuid: str, workspace: Workspace | None = None) -> QuestionRecord:
    workspace = workspace or open_workspace()
    with workspace.read() as conn:
        row = queries.question(conn, question_uuid)
    if row is None:
        raise QuestionNotFound(f"no question {question_uuid} in the catalog")
    return _record(row)


def list_questions(
    service_id: str | None = None,
    status: str | None = None,
    parent_question_uuid: str | None = None,
    limit: int | None = 50,
    workspace: Workspace | None = None,
) -> list[QuestionRecord]:
    """Questions, newest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    workspace = workspace or open_workspace()
    states = _STATUS_STATES[status] if status is not None else None
    split = status in ("failed", "crashed")  # one state, told apart by the error payload
    with workspace.read() as conn:
        rows = queries.list_questions(
            conn, service_id, states, parent_question_uuid, None if split else limit
        )
    records = [_record(row) for row in rows]
    if split:
        records = [record for record in records if record.status == status][:limit]
    return records


def list_events(
    question_uuid: str, kinds: Sequence[str] | None = None, workspace: Workspace | None = None
) -> list[QuestionEvent]:
    """A question's events in order (QuestionNotFound when there is no such question)."""
    for kind in kinds or ():
        if kind not in EVENT_KINDS:
            raise InvalidInput(f"unknown event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    workspace = workspace or open_workspace()
    record = get_question(question_uuid, workspace)
    events = [
        as_question_event(event, record)
        for event in job_store.list_events(question_uuid, workspace=workspace)
    ]
    if kinds:
        wanted = set(kinds)
        events = [event for event in events if event.kind in wanted]
    return events


def iter_replay(question_uuid: str) -> Iterator[QuestionEvent]:
    yield from list_events(question_uuid)


def replay(
    question_uuid: str,
    handle_monitor_message: Callable[[Any], None] | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Replay a question from its stored events, as if it were being answered now.

    Log records go to their loggers again (prefixed as they were the first time), monitor
    messages to ``handle_monitor_message``; the stored result is returned as an answer, or the
    stored exception raised (rebuilt with its type, as ``Child.ask`` does).
    """
    from assay.core.errors import QuestionCancelled
    from assay.services.exceptions import rebuild_exception
    from assay.services.protocol import emit_log_record

    record = get_question(question_uuid)
    answer: dict[str, Any] | None = None
    for event in list_events(question_uuid):
        if event.kind == "log_record":
            emit_log_record(event.payload, record.service_id, question_uuid, log)
        elif event.kind == "monitor_message" and handle_monitor_message is not None:
            handle_monitor_message(event.payload.get("data"))
        elif event.kind == "result":
            answer = record.answer  # the job's result column: event payloads are capped
        elif event.kind == "exception":
            raise rebuild_exception(_error_payload(event.payload), record.service_id, question_uuid)
        elif event.kind == "cancelled":
            raise QuestionCancelled(f"question {question_uuid} was cancelled")
    if answer is None:
        raise QuestionNotFound(
            f"question {question_uuid} has no result yet (status: {record.status})"
        )
    return answer
