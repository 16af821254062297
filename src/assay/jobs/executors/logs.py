"""Copying a job's log file into ``log`` events, a little at a time, with a cap per job."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Log lines stored as events per job; later lines stay in the log file only.
MAX_LOG_EVENTS = 10_000
_CHUNK = 64 * 1024


@dataclass
class LogCopier:
    """Reads new complete lines of ``path`` at each ``take``; the rest waits for more."""

    path: Path
    stream: str = "algorithm"
    offset: int = 0
    partial: bytes = b""
    count: int = 0

    def take(self, *, final: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """New lines as ``("log", payload)`` items (with ``final``: everything left)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read() if final else handle.read(_CHUNK)
        except OSError:
            return []
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = b"" if final else lines.pop()
        items: list[tuple[str, dict[str, Any]]] = []
        for line in lines:
            if not line:
                continue
            if self.count < MAX_LOG_EVENTS:
                message = line.decode(errors="replace")
            elif self.count == MAX_LOG_EVENTS:
                message = f"[further lines are in {self.path.name} only]"
            else:
                message = ""
            self.count += 1
            if message:
                items.append(("log", {"stream": self.stream, "message": message}))
        return items


def last_line(path: Path, limit: int = 300) -> str:
    """The last non-empty line of ``path`` (at most ``limit`` characters), or ``""``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
