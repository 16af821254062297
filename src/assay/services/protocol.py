"""The question's log prefix: a worker's log records re-emitted on the asker's loggers.

The wire format itself (JSON lines between a supervisor and its worker) is the job layer's:
``assay.jobs.wire``.
"""

from __future__ import annotations

import logging
from typing import Any


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
