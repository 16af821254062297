"""JSON text for job columns and event payloads, with the caps every buffer needs."""

from __future__ import annotations

import json
import re
from typing import Any

#: Longest text kept in one event payload value (longer text is cut, saying how much).
PAYLOAD_CAP = 64 * 1024


_MARKER = re.compile(r"\.\.\. \[truncated \d+ characters\]$")


def cap_text(text: str, limit: int = PAYLOAD_CAP) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut. Text already cut to
    ``limit`` upstream (a worker's log line: ``limit`` characters plus the marker) is kept
    as it is, so its marker still counts the original length."""
    if len(text) <= limit:
        return text
    if len(text) <= limit + 64 and _MARKER.search(text):
        return text
    return text[:limit] + f"... [truncated {len(text) - limit} characters]"


def capped(value: Any, limit: int = PAYLOAD_CAP) -> Any:
    """``value`` with every string inside cut to ``limit`` characters."""
    if isinstance(value, str):
        return cap_text(value, limit)
    if isinstance(value, dict):
        return {str(k): capped(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [capped(v, limit) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
