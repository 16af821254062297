"""Questions and their events in the catalog: record them, list them, replay them.

Event kinds: ``question`` (asked), ``delivery`` (the child took it), ``heartbeat``,
``log_record``, ``monitor_message``, ``exception``, ``result``, ``cancelled``. Each event row holds
the question's uuid and, in its JSON payload, the parent and originator question uuids too.
Events are written in batches with the question's row and status (see ``EventRecorder``): a
quick question costs one transaction, a child printing megabytes a few, not one per line; each
stored payload is capped at ``PAYLOAD_CAP`` characters of text (with a truncation marker) and at
most ``MAX_LOG_EVENTS`` log records are stored per question (the rest still reach the logger;
their count is stored).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import question_queries as queries
from assay.core.errors import AmbiguousReference, InvalidInput, QuestionNotFound
from assay.core.manifest import Manifest

EVENT_KINDS = (
    "question",
    "delivery",
    "heartbeat",
    "log_record",
    "monitor_message",
    "exception",
    "result",
    "cancelled",
)
#: Statuses a question moves through; the last five are final.
STATUSES = ("asked", "running", "succeeded", "failed", "crashed", "timed_out", "cancelled")
FINAL_STATUSES = frozenset(STATUSES[2:])
PAYLOAD_CAP = 64 * 1024
MAX_LOG_EVENTS = 10_000
_FLUSH_EVENTS = 500
_FLUSH_SECONDS = 0.25
_HEARTBEAT_FLUSH_SECONDS = 5.0


def cap_text(text: str, limit: int = PAYLOAD_CAP) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated {len(text) - limit} characters]"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


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
    return QuestionRecord(
        question_uuid=row.question_uuid,
        parent_question_uuid=row.parent_question_uuid,
        originator_question_uuid=row.originator_question_uuid,
        service_id=row.service_id,
        backend=row.backend,
        status=row.status,
        created=row.created,
        finished=row.finished,
        input_values=_loads(row.input_values),
        input_manifest=_loads(row.input_manifest),
        output_values=_loads(row.output_values),
        output_manifest=_loads(row.output_manifest),
        error=_loads(row.error),
        details=_loads(row.details) or {},
    )


# -- writing ----------------------------------------------------------------------------------
class EventRecorder:
    """Stores one question's row and events; thread-safe, batched.

    Writes are deferred and grouped: the question's row (unless ``create(write=True)``), its
    status changes and its events are held until the outcome, which writes them all in one
    transaction, or until something has waited ``_FLUSH_SECONDS`` (or ``_FLUSH_EVENTS`` events
    are pending). Heartbeats alone wait ``_HEARTBEAT_FLUSH_SECONDS``. So a quick question costs
    one transaction, and a running one shows in the catalog within a quarter of a second.
    The answer loop calls ``flush_due_in`` and ``flush`` to keep that promise while events are
    sparse.
    """

    def __init__(
        self,
        question_uuid: str,
        parent_question_uuid: str | None,
        originator_question_uuid: str | None,
        workspace: Workspace | None = None,
    ) -> None:
        self.question_uuid = question_uuid
        self.parent_question_uuid = parent_question_uuid
        self.originator_question_uuid = originator_question_uuid
        self.workspace = workspace or open_workspace()
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._row: dict[str, Any] | None = None  # the question's row, not written yet
        self._changes: dict[str, Any] = {}  # changes to a written row, not written yet
        self._details: dict[str, Any] = {}
        self._dirty_since: float | None = None  # when something other than a heartbeat waited
        self._seq = 0
        self._last_flush = time.monotonic()
        self._log_events = 0
        self.dropped_log_events = 0
        self._marker_added = False

    def create(
        self,
        service_id: str,
        backend: str,
        input_values: Any,
        input_manifest: Any,
        details: dict[str, Any],
        write: bool = True,
    ) -> None:
        """The question's row and its ``question`` event: written now in one transaction, or
        with ``write=False`` held for the next flush (at the latest ``_FLUSH_SECONDS`` later)."""
        now = time.time()
        self._details = dict(details)
        row = {
            "question_uuid": self.question_uuid,
            "parent_question_uuid": self.parent_question_uuid,
            "originator_question_uuid": self.originator_question_uuid,
            "service_id": service_id,
            "backend": backend,
            "status": "asked",
            "created": now,
            "finished": None,
            "input_values": dumps(input_values),
            "input_manifest": dumps(input_manifest) if input_manifest is not None else None,
            "output_values": None,
            "output_manifest": None,
            "error": None,
            "details": dumps(self._details),
        }
        event = self._event("question", {"service_id": service_id, "backend": backend}, now)
        if not write:
            with self._lock:
                self._row = row
                self._pending.append(event)
                self._dirty_since = time.monotonic()
            return
        with self.workspace.write() as conn:
            queries.insert_question(conn, row)
            queries.insert_events(conn, [event])
        self._last_flush = time.monotonic()

    def _event(self, kind: str, payload: dict[str, Any], at: float | None = None) -> dict[str, Any]:
        self._seq += 1
        body = {
            "parent_question_uuid": self.parent_question_uuid,
            "originator_question_uuid": self.originator_question_uuid,
            **payload,
        }
        return {
            "question_uuid": self.question_uuid,
            "seq": self._seq,
            "kind": kind,
            "at": at if at is not None else time.time(),
            "payload": dumps(body),
        }

    def add(self, kind: str, payload: dict[str, Any], at: float | None = None) -> None:
        """Queue an event; written at the next flush (soon, or at ``finish``)."""
        with self._lock:
            if kind == "log_record":
                self._log_events += 1
                if self._log_events > MAX_LOG_EVENTS:
                    self.dropped_log_events += 1
                    return
            if kind in ("result", "exception", "cancelled"):
                self._add_dropped_marker()
            self._pending.append(self._event(kind, payload, at))
            if kind != "heartbeat" and self._dirty_since is None:
                self._dirty_since = time.monotonic()
            due = len(self._pending) >= _FLUSH_EVENTS
        if due:
            self.flush()
        elif self._dirty_since is not None:
            due_in = self.flush_due_in()
            if due_in is not None and due_in <= 0:
                self.flush()

    def flush_due_in(self) -> float | None:
        """Seconds until what is held must be written (0 or less: now); None when nothing is."""
        with self._lock:
            if self._dirty_since is not None:
                return self._dirty_since + _FLUSH_SECONDS - time.monotonic()
            if self._pending:
                return self._last_flush + _HEARTBEAT_FLUSH_SECONDS - time.monotonic()
            return None

    def _add_dropped_marker(self) -> None:
        """Say (once, before the outcome) how many log records were not stored."""
        if not self.dropped_log_events or self._marker_added:
            return
        self._marker_added = True
        self._pending.append(
            self._event(
                "log_record",
                {
                    "name": "assay.services",
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "message": f"[{self.dropped_log_events} further log records were not "
                    f"stored: at most {MAX_LOG_EVENTS} are kept per question]",
                    "dropped": self.dropped_log_events,
                },
            )
        )

    def _change(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to the row at the next flush (caller holds the lock)."""
        if self._row is not None:
            self._row.update(changes)
        else:
            self._changes.update(changes)
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def flush(self, changes: dict[str, Any] | None = None) -> None:
        """Write what is held (and ``changes`` to the row) in one transaction."""
        with self._lock:
            if changes:
                self._change(changes)
            pending, self._pending = self._pending, []
            row, self._row = self._row, None
            updates, self._changes = self._changes, {}
            self._dirty_since = None
            self._last_flush = time.monotonic()
        if row is None and not pending and not updates:
            return
        with self.workspace.write() as conn:
            if row is not None:
                queries.insert_question(conn, row)
            queries.insert_events(conn, pending)
            if updates:
                queries.update_question(conn, self.question_uuid, updates)

    def finish_cancelled_elsewhere(self) -> None:
        """Another process recorded ``cancelled`` and the status, then killed the worker: store
        what this recorder holds (it happened before), keeping ``cancelled`` last."""
        with self._lock:
            pending, self._pending = self._pending, []
            row, self._row = self._row, None
            updates, self._changes = self._changes, {}
            self._dirty_since = None
        updates.pop("status", None)
        with self.workspace.write() as conn:
            if row is not None:
                queries.insert_question(conn, row)
            queries.insert_events(conn, pending)
            if updates:
                queries.update_question(conn, self.question_uuid, updates)
            queries.move_events_last(conn, self.question_uuid, "cancelled")

    def set_status(self, status: str) -> None:
        """Record a status (written with the next flush)."""
        with self._lock:
            self._change({"status": status})

    def add_details(self, **values: Any) -> None:
        """Add keys to the question's ``details`` (written with the next flush)."""
        with self._lock:
            self._details.update(values)
            self._change({"details": dumps(self._details)})

    def finish(
        self,
        status: str,
        output_values: Any = None,
        output_manifest: Any = None,
        error: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Write the last events and the question's outcome in one transaction (the question's
        row too, if it was not written yet)."""
        with self._lock:
            self._add_dropped_marker()
        changes: dict[str, Any] = {"status": status, "finished": time.time()}
        if output_values is not None:
            changes["output_values"] = dumps(output_values)
        if output_manifest is not None:
            changes["output_manifest"] = dumps(output_manifest)
        if error is not None:
            changes["error"] = dumps(error)
        if details is not None:
            with self._lock:
                self._details.update(details)
            changes["details"] = dumps(self._details)
        self.flush(changes)


def append_event(
    question_uuid: str, kind: str, payload: dict[str, Any], status: str | None = None
) -> None:
    """Add one event to a question from outside its recorder (e.g. a cancel from elsewhere)."""
    workspace = open_workspace()
    with workspace.write() as conn:
        row = queries.question(conn, question_uuid)
        if row is None:
            raise QuestionNotFound(f"no question {question_uuid}")
        seq = queries.last_seq(conn, question_uuid) + 1
        body = {
            "parent_question_uuid": row.parent_question_uuid,
            "originator_question_uuid": row.originator_question_uuid,
            **payload,
        }
        queries.insert_events(
            conn,
            [
                {
                    "question_uuid": question_uuid,
                    "seq": seq,
                    "kind": kind,
                    "at": time.time(),
                    "payload": dumps(body),
                }
            ],
        )
        if status is not None:
            queries.update_question(
                conn, question_uuid, {"status": status, "finished": time.time()}
            )


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
    with workspace.read() as conn:
        rows = queries.list_questions(conn, service_id, status, parent_question_uuid, limit)
    return [_record(row) for row in rows]


def list_events(
    question_uuid: str, kinds: Sequence[str] | None = None, workspace: Workspace | None = None
) -> list[QuestionEvent]:
    """A question's events in order (QuestionNotFound when there is no such question)."""
    for kind in kinds or ():
        if kind not in EVENT_KINDS:
            raise InvalidInput(f"unknown event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    workspace = workspace or open_workspace()
    with workspace.read() as conn:
        if queries.question(conn, question_uuid) is None:
            raise QuestionNotFound(f"no question {question_uuid} in the catalog")
        rows = queries.events_of(conn, question_uuid, kinds)
    return [
        QuestionEvent(row.question_uuid, row.seq, row.kind, row.at, json.loads(row.payload))
        for row in rows
    ]


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
            manifest = event.payload.get("output_manifest")
            answer = {
                "output_values": event.payload.get("output_values"),
                "output_manifest": Manifest.deserialise(manifest) if manifest else None,
            }
        elif event.kind == "exception":
            raise rebuild_exception(event.payload, record.service_id, question_uuid)
        elif event.kind == "cancelled":
            from assay.core.errors import QuestionCancelled

            raise QuestionCancelled(f"question {question_uuid} was cancelled")
    if answer is None:
        raise QuestionNotFound(
            f"question {question_uuid} has no result yet (status: {record.status})"
        )
    return answer
