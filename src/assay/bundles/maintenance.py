"""Keeping the store honest: verify blobs (quarantining corrupted ones), restore damaged blobs
from remotes, and collect unreferenced blobs without ever trusting a wrong catalog.

``gc`` runs only when the store and the catalog are a pair (``bundles/binding.py``), and even
then refuses, without ``force``, to remove more than half of the store's blobs (what an
emptied or wrong catalog looks like) or any unreferenced blob younger than the grace period
(an add on a machine whose file locks do not reach this one may be using it).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence

from assay.bundles import remotes
from assay.bundles import staging as staging_folders
from assay.bundles.workspace import Workspace
from assay.catalog import queries, remote_queries
from assay.core.errors import GcRefused
from assay.core.records import GcReport, RepairReport, VerifyProblem
from assay.store import packing
from assay.store.blobstore import BlobInfo

#: Unreferenced blobs younger than this are kept unless ``force`` (as git keeps young
#: unreachable objects): one hour.
DEFAULT_GC_GRACE_SECONDS = 3600.0


def verify(
    workspace: Workspace,
    uuids: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[VerifyProblem]:
    """Re-hash every blob of the given bundles (None: all) and report missing or bad ones.

    Each distinct blob is hashed once, however many bundles share it. A corrupted blob is
    moved to ``store/quarantine/`` (so the next add of intact content stores it again);
    a blob missing because an earlier verify quarantined it is reported as ``quarantined``.
    """
    with workspace.read() as conn:
        rows = queries.files_for_verify(conn, uuids)
    verdicts: dict[str, str | None] = {}
    problems: list[VerifyProblem] = []
    for index, (bundle_uuid, name, context, path, blob_hash) in enumerate(rows):
        if blob_hash not in verdicts:
            verdicts[blob_hash] = _check_blob(workspace, blob_hash)
        problem = verdicts[blob_hash]
        if problem is not None:
            problems.append(VerifyProblem(bundle_uuid, name, context, path, blob_hash, problem))
        if progress is not None:
            progress(index + 1, len(rows))
    return problems


def _check_blob(workspace: Workspace, blob_hash: str) -> str | None:
    store = workspace.store
    verdict = store.verify(blob_hash)
    if verdict == "corrupted":
        # Under the exclusive lock no add is between finding this blob stored and
        # committing; look again inside it (an add may have just replaced it).
        with store.collecting():
            if store.verify(blob_hash) == "corrupted":
                store.quarantine(blob_hash)
            else:
                return None
    elif verdict == "missing" and store.is_quarantined(blob_hash):
        return "quarantined"
    return verdict


def repair(workspace: Workspace, problems: Sequence[VerifyProblem]) -> RepairReport:
    """Restore the blobs of ``problems`` (missing, or quarantined as corrupted) from the
    remote of each problem's context, where the remote has them (each download is verified
    against its hash). Returns what was restored and the problems that remain."""
    damaged_uuids = sorted({p.bundle_uuid for p in problems})
    with workspace.read() as conn:
        files = remote_queries.files_of_many(conn, damaged_uuids)
    sizes = {f.blob_hash: f.size for entries in files.values() for f in entries}
    by_context: dict[str, dict[str, int]] = {}
    for problem in problems:
        by_context.setdefault(problem.context, {})[problem.blob_hash] = sizes[problem.blob_hash]
    restored: set[str] = set()
    for context, blobs in sorted(by_context.items()):
        wanted = {h: s for h, s in blobs.items() if h not in restored}
        bound = remotes.binding(workspace, context)
        if bound is None or not wanted:
            continue
        remote = remotes.open_store(bound, workspace)
        on_remote = remote.existing_blobs(wanted)
        if not on_remote:
            continue
        for blob_hash in on_remote:
            _check_blob(workspace, blob_hash)  # a corrupted blob goes aside for the download
        with workspace.writing():
            remote.download_blobs(workspace.store, {h: wanted[h] for h in on_remote})
        restored.update(h for h in on_remote if workspace.store.verify(h) is None)
    remaining = tuple(p for p in problems if p.blob_hash not in restored)
    return RepairReport(tuple(sorted(restored)), remaining)


def gc(
    workspace: Workspace,
    grace_seconds: float = DEFAULT_GC_GRACE_SECONDS,
    *,
    force: bool = False,
    dry_run: bool = False,
    repack: bool = False,
) -> GcReport:
    """Remove blobs no bundle references, temp files of killed writes, and stale views.

    It runs under the store's exclusive lock, so no add is between writing its blobs and
    committing its rows, and only when store and catalog are a pair. Without ``force`` it
    keeps unreferenced blobs younger than ``grace_seconds`` and raises ``GcRefused`` rather
    than remove more than half of the store's blobs. ``dry_run`` removes nothing and lists
    what would go (it does not refuse: the caller sees the counts).
    """
    with workspace.collecting():
        if not dry_run:
            # Killed writers' packs: trim their partial tails and index them first.
            workspace.store.packs.trim_unfinished()
        return _collect(workspace, grace_seconds, force, dry_run, repack)


def _collect(
    workspace: Workspace, grace_seconds: float, force: bool, dry_run: bool, repack: bool
) -> GcReport:
    now = time.time()
    with workspace.read() as conn:
        referenced = queries.referenced_blobs(conn)
        live_uuids = queries.all_bundle_uuids(conn)
    blobs = list(workspace.store.iter_blobs())
    unreferenced = [b for b in blobs if b.blob_hash not in referenced]
    young = [b for b in unreferenced if now - b.mtime < grace_seconds]
    young_hashes = {b.blob_hash for b in young}
    doomed: list[BlobInfo] = (
        unreferenced if force else [b for b in unreferenced if b.blob_hash not in young_hashes]
    )
    if not force and not dry_run and 2 * len(doomed) > len(blobs):
        raise GcRefused(
            f"gc would remove {len(doomed)} of the {len(blobs)} blobs in the store at "
            f"{workspace.store.root} (more than half), which is what an emptied or wrong "
            "catalog looks like; check with 'assay doctor' and 'assay gc --dry-run', then pass "
            "--force (Python: force=True) if it is right",
            {"would_remove": len(doomed), "blobs_total": len(blobs)},
        )
    if not dry_run:
        workspace.store.remove_many(b.blob_hash for b in doomed)
        packing.tidy(workspace.store, repack=repack)
    temps = [str(path) for path, _mtime in workspace.store.iter_temp_files()]
    if not dry_run:
        for path in temps:
            os.unlink(path)  # no writer holds the store lock: every temp file is left over
    stale_views: list[str] = []
    views_root = workspace.settings.views_root
    if views_root.exists():
        for entry in os.scandir(views_root):
            if entry.name not in live_uuids:
                stale_views.append(entry.path)
                if not dry_run:
                    shutil.rmtree(entry.path)
    staging = staging_folders.sweep(workspace.settings.home / "staging", dry_run=dry_run)
    return GcReport(
        blobs_removed=len(doomed),
        bytes_freed=sum(b.size for b in doomed),
        temp_files_removed=len(temps),
        views_removed=len(stale_views),
        blobs_kept_in_grace=0 if force else len(young),
        staging_removed=len(staging),
        blobs_total=len(blobs),
        dry_run=dry_run,
        blobs=tuple(sorted((b.blob_hash, b.size) for b in doomed)),
        temp_files=tuple(sorted(temps)),
        views=tuple(sorted(stale_views)),
        staging=tuple(sorted(staging)),
    )
