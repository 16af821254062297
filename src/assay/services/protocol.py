"""The local backend's wire format: one JSON document per line, ``{"kind", "at", "payload"}``.

The parent writes the question as one JSON document to the worker's stdin and closes it (a
pool worker, ``--serve``, takes one question per line instead and its stdin stays open). For
each question the worker writes events to its stdout, one per line, in this order: ``delivery``
(``{"pid", "answered"}``: how many questions this process answered before), then any number of
``heartbeat``, ``log_record`` and ``monitor_message``, then exactly one ``result`` (its payload
also says which ``worker`` answered: pid, count, whether it can be reused, code hash) or
``exception``. A pool worker then says nothing until its next question. Text in a log record is
capped at ``LOG_TEXT_CAP`` characters (with a truncation marker), so no line is unbounded except
a result's own values.

This module is imported by worker processes: it must stay light (no catalog, no jsonschema).
"""

from __future__ import annotations

import json
import logging
from typing import Any

LOG_TEXT_CAP = 64 * 1024
#: Attributes of a ``logging.LogRecord`` that travel with it.
_RECORD_FIELDS = ("name", "levelno", "levelname", "pathname", "lineno", "funcName", "created")


def question_name(question_uuid: str) -> bytes:
    """What a pool worker answering ``question_uuid`` calls itself (``/proc/PID/comm``, 15
    characters), so a cancel from another process can tell which question it is answering."""
    return question_uuid.replace("-", "")[:15].encode()


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


def emit_log_record(
    payload: dict[str, Any],
    service_id: str,
    question_uuid: str,
    target: logging.Logger | None = None,
) -> None:
    """Re-emit a child's log record on the parent's logger of the same name, prefixed
    ``[service id | question uuid]`` (prefixes nest through grandchildren)."""
    name = str(payload.get("name") or "root")
    logger = target or logging.getLogger(None if name == "root" else name)
    levelno = payload.get("levelno")
    level = levelno if isinstance(levelno, int) else logging.INFO
    if not logger.isEnabledFor(level):
        return
    message = f"[{service_id} | {question_uuid}] {payload.get('message', '')}"
    exc_text = payload.get("exc_text")
    if exc_text:
        message += "\n" + str(exc_text)
    record = logging.makeLogRecord(
        {
            "name": logger.name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": message,
            "args": None,
            "pathname": payload.get("pathname") or "",
            "lineno": payload.get("lineno") or 0,
            "funcName": payload.get("funcName") or "",
            "created": payload.get("created") or 0.0,
            "assay_question": question_uuid,
        }
    )
    if isinstance(payload.get("created"), int | float):
        record.created = float(payload["created"])
        record.msecs = (record.created - int(record.created)) * 1000
    logger.handle(record)
