"""A question's events, delivered to its asker as the local backend delivers them.

Backends that follow a question's job events from elsewhere (``http``: the server's SSE
stream; ``dask``: the catalog) hand each event here: it is appended to the child's
``received_events`` (under the local backend's names), a log record is re-emitted on this
process's loggers prefixed ``[service id | question uuid]`` (``subscribe_to_logs``), and a
monitor message valid for the twine reaches ``handle_monitor_message`` (an invalid one is
logged and skipped; a handler that raises cancels the question and its error is raised).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.core.errors import InvalidMonitorMessage
from assay.services.protocol import emit_log_record
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

EVENT_KINDS = {"log": "log_record", "monitor": "monitor_message"}
TRANSITION_KINDS = {
    "run": "delivery",
    "finish": "result",
    "fail": "exception",
    "time_out": "exception",
    "stop": "cancelled",
}
MAX_RECEIVED = 10_000


@dataclass
class Delivery:
    """Where one question's events go in the asking process."""

    service_id: str
    question_uuid: str
    twine: Twine
    handle_monitor_message: Callable[[Any], None] | None
    subscribe_to_logs: bool
    received_events: list[dict[str, Any]] | None
    cancel: Callable[[], Any]

    def deliver(self, type_: str, event: str | None, payload: dict[str, Any]) -> None:
        """One job event: its ``type`` (``log``, ``monitor``, ``transition``...), its
        transition's name (for transitions) and its payload."""
        name = EVENT_KINDS.get(type_) or TRANSITION_KINDS.get(str(event))
        received = self.received_events
        if name is not None and received is not None and len(received) < MAX_RECEIVED:
            received.append({"kind": name, "payload": payload})
        if type_ == "log" and self.subscribe_to_logs:
            emit_log_record(payload, self.service_id, self.question_uuid)
        elif type_ == "monitor":
            message = payload.get("data")
            try:
                self.twine.validate_monitor_message(message)
            except InvalidMonitorMessage as error:
                logger.warning(
                    "[%s | %s] monitor message ignored: %s",
                    self.service_id,
                    self.question_uuid,
                    error.message,
                )
                return
            if self.handle_monitor_message is not None:
                try:
                    self.handle_monitor_message(message)
                except Exception:
                    self.cancel()  # as locally: the handler's error ends the question
                    raise
