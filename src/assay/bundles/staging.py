"""Staging folders of bundles being built, and sweeping those whose builder died.

A builder holds an exclusive ``flock`` on its staging folder while the bundle is open. The lock
dies with the process, so ``gc`` can tell a live build (lock held) from a killed one (lock
free) without guessing from ages or process ids.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path


def claim(folder: Path) -> int:
    """Create ``folder`` and hold its lock; returns the descriptor to pass to ``release``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def release(fd: int, folder: Path) -> None:
    """Remove the folder, then let go of its lock."""
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)


def sweep(root: Path, dry_run: bool = False) -> list[str]:
    """Remove staging folders nobody holds (with ``dry_run``, only name them); returns their
    paths."""
    if not root.exists():
        return []
    removed: list[str] = []
    for entry in os.scandir(root):
        if not entry.is_dir(follow_symlinks=False):
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live builder holds it
            if not dry_run:
                shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        finally:
            os.close(fd)
    return removed
