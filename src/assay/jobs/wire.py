"""The wire format between a supervisor and its worker process: one JSON document per line,
``{"kind", "at", "payload"}``.

The supervisor writes a task (one JSON document) to the worker's stdin and closes it; a pool
worker (``--serve``) takes one task per line instead and its stdin stays open. For each task the
worker writes events to its stdout, one per line, in this order: ``delivery`` (``{"pid",
"answered"}``: how many tasks this process finished before), then any number of ``heartbeat``,
``log_record`` and ``monitor_message``, then exactly one ``result`` (its payload also says which
``worker`` answered: pid, count, whether it can be reused, the handler's reuse token) or
``exception`` (see ``assay.jobs.payloads``). A pool worker then says nothing until its next
task. Text in a log record is capped at ``LOG_TEXT_CAP`` characters (with a truncation marker),
so no line is unbounded except a result's own values.

Worker processes import this module: it must stay light (no catalog, no jsonschema).
"""

from __future__ import annotations

import json
import logging
from typing import Any

LOG_TEXT_CAP = 64 * 1024
#: Attributes of a ``logging.LogRecord`` that travel with it.
_RECORD_FIELDS = ("name", "levelno", "levelname", "pathname", "lineno", "funcName", "created")
#: The kinds of line a worker writes.
KINDS = ("delivery", "heartbeat", "log_record", "monitor_message", "result", "exception")


def cap(text: str, limit: int = LOG_TEXT_CAP) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated {len(text) - limit} characters]"


def encode(kind: str, payload: dict[str, Any], at: float) -> bytes:
    return (
        json.dumps({"kind": kind, "at": at, "payload": payload}, ensure_ascii=False, default=str)
        + "\n"
    ).encode()


def decode(line: bytes) -> dict[str, Any] | None:
    """One event, or None when the line is not an event (then it is shown as text)."""
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
        return None
    if not isinstance(event.get("payload"), dict):
        event["payload"] = {}
    return event


def record_payload(record: logging.LogRecord) -> dict[str, Any]:
    """A log record as JSON-able fields, its message formatted and capped."""
    payload: dict[str, Any] = {field: getattr(record, field, None) for field in _RECORD_FIELDS}
    try:
        message = record.getMessage()
    except Exception as error:  # a bad format string must not kill the worker
        message = f"{record.msg!r} (formatting failed: {error})"
    payload["message"] = cap(message)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        payload["exc_text"] = cap(record.exc_text)
    return payload
