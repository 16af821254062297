"""Keeping the store honest: verify blobs against their hashes, collect unreferenced blobs."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence

from assay.bundles import staging as staging_folders
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.records import GcReport, VerifyProblem

DEFAULT_GC_GRACE_SECONDS = 0.0


def verify(
    workspace: Workspace,
    uuids: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[VerifyProblem]:
    """Re-hash every blob of the given bundles (None: all) and report missing or bad ones.

    Each distinct blob is hashed once, however many bundles share it.
    """
    with workspace.read() as conn:
        rows = queries.files_for_verify(conn, uuids)
    verdicts: dict[str, str | None] = {}
    problems: list[VerifyProblem] = []
    for index, (bundle_uuid, name, context, path, blob_hash) in enumerate(rows):
        if blob_hash not in verdicts:
            verdicts[blob_hash] = workspace.store.verify(blob_hash)
        problem = verdicts[blob_hash]
        if problem is not None:
            problems.append(VerifyProblem(bundle_uuid, name, context, path, blob_hash, problem))
        if progress is not None:
            progress(index + 1, len(rows))
    return problems


def gc(workspace: Workspace, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcReport:
    """Remove blobs no bundle references, temp files of killed writes, and stale views.

    It runs under the store's exclusive lock, so no add is between writing its blobs and
    committing its rows. ``grace_seconds`` additionally keeps unreferenced blobs younger than
    that (for a store folder shared by machines whose file locks do not reach each other).
    """
    with workspace.store.collecting():
        return _collect(workspace, grace_seconds)


def _collect(workspace: Workspace, grace_seconds: float) -> GcReport:
    now = time.time()
    with workspace.read() as conn:
        referenced = queries.referenced_blobs(conn)
        live_uuids = queries.all_bundle_uuids(conn)
    removed = freed = kept = 0
    for blob in workspace.store.iter_blobs():
        if blob.blob_hash in referenced:
            continue
        if now - blob.mtime < grace_seconds:
            kept += 1
            continue
        workspace.store.remove(blob.blob_hash)
        removed += 1
        freed += blob.size
    temps = 0
    for path, _mtime in workspace.store.iter_temp_files():
        os.unlink(path)  # no writer holds the store lock: every temp file is left over
        temps += 1
    views_removed = 0
    views_root = workspace.settings.views_root
    if views_root.exists():
        for entry in os.scandir(views_root):
            if entry.name not in live_uuids:
                shutil.rmtree(entry.path)
                views_removed += 1
    staging_removed = staging_folders.sweep(workspace.settings.home / "staging")
    return GcReport(removed, freed, temps, views_removed, kept, staging_removed)
