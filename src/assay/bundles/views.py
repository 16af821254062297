"""Read-only views of a bundle's files under their original relative names.

A view is ``$ASSAY_HOME/views/<uuid>/<path>``, made from verified blobs with the configured
link types (reflink, then copy, by default: a write through the view cannot touch the store).
A small record of each file's size and mtime lets later reads reuse the view, and re-make any
file a user changed or removed. The record lives beside the views
(``$ASSAY_HOME/view-records/<uuid>.json``), not inside one, so a view lists exactly the
bundle's files (``Manifest.download`` hands a view out as a dataset folder).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.records import BundleRecord, FileEntry

#: Where older releases kept the record: inside the view (removed when met).
_OLD_VIEW_RECORD = ".assay-view.json"


def view_root(workspace: Workspace, uuid: str) -> Path:
    return workspace.settings.views_root / uuid


def _record_path(root: Path) -> Path:
    return root.parent.parent / "view-records" / f"{root.name}.json"


def _load_record(root: Path) -> dict[str, list[int]]:
    try:
        loaded = json.loads(_record_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _still_valid(path: Path, recorded: list[int] | None) -> bool:
    if recorded is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return [stat.st_size, stat.st_mtime_ns] == recorded


def materialize_files(
    workspace: Workspace, files: list[FileEntry], root: Path, record: bool = True
) -> Path:
    """Make every file of ``files`` appear verified under ``root``; returns ``root``."""
    existing = _load_record(root) if record else {}
    written: dict[str, list[int]] = {}
    changed = False
    for entry in files:
        target = root / entry.path
        if _still_valid(target, existing.get(entry.path)):
            written[entry.path] = existing[entry.path]
            continue
        workspace.store.materialize(entry.blob_hash, target, workspace.settings.link_types)
        stat = os.stat(target)
        written[entry.path] = [stat.st_size, stat.st_mtime_ns]
        changed = True
    record_path = _record_path(root)
    if record and (changed or not record_path.exists()):
        root.mkdir(parents=True, exist_ok=True)
        (root / _OLD_VIEW_RECORD).unlink(missing_ok=True)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        temp = record_path.with_name(f"{record_path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(json.dumps(written))
        os.replace(temp, record_path)
    return root


def bundle_view(workspace: Workspace, record: BundleRecord) -> Path:
    """The bundle's view, made or repaired as needed."""
    with workspace.read() as conn:
        files = queries.bundle_files_of(conn, record.uuid)
    return materialize_files(workspace, files, view_root(workspace, record.uuid))


def remove_view(workspace: Workspace, uuid: str) -> None:
    root = view_root(workspace, uuid)
    # Removing a read-only file needs only a writable directory, so no chmod (which, on a
    # hard-linked view, would change the blob's own mode).
    if root.exists():
        shutil.rmtree(root)
    _record_path(root).unlink(missing_ok=True)
