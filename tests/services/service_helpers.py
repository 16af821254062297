"""Helpers for the services tests (importable by name: this folder is on sys.path)."""

from __future__ import annotations

from pathlib import Path


def local(folder: Path) -> dict[str, str]:
    return {"name": "local", "path": str(folder)}


#: Short heartbeats, so that a hung child is found in a few seconds.
FAST = {"heartbeat_interval": 0.1, "maximum_heartbeat_interval": 3.0}
