"""Remotes: bind a context to object storage, push, pull, localize, delocalize, remove.

A push sends, in this order: the blobs the remote lacks (content addressed, so nothing is sent
twice across bundles and contexts), one immutable JSON record per bundle, then one index
segment naming the bundles. A remote therefore never lists a bundle whose data is incomplete,
and an interrupted push resumes: blobs and records already there are skipped.

A pull reads the remote index (not a listing of every object), fetches the records it lacks,
checks each against its content hash, and inserts them as ordinary committed bundles (same
uuids) whose blobs may stay remote until ``localize``. Reading such a bundle's files raises
``NotLocalized`` with the command to run (no streaming: see docs/remotes.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay.bundles import operations, views
from assay.bundles.ingest import ProgressCallback
from assay.bundles.remote_index import RemoteContext, RemoteIndex, as_local, entry_of
from assay.bundles.workspace import Workspace
from assay.catalog import queries, remote_queries
from assay.core.errors import (
    BundleNotFound,
    InvalidInput,
    NotCommitted,
    NotLocalized,
    RemoteExists,
    RemoteNotBound,
    UnpushedBundles,
)
from assay.core.names import bundle_tags, check_context_name
from assay.core.records import BundleRecord, FileEntry
from assay.core.remote_records import (
    DelocalizeReport,
    LocalizeReport,
    PullReport,
    PushReport,
    RemoteBinding,
    RemoteEntry,
    RemoteRemoval,
)
from assay.store.remote import RemoteStore, blob_key, normalize_url

PUSHED = "pushed"
PULLED = "pulled"


# -- binding --------------------------------------------------------------------------------
def binding(workspace: Workspace, context: str) -> RemoteBinding | None:
    with workspace.read() as conn:
        return remote_queries.binding_of(conn, operations.require_context(conn, context))


def require_binding(workspace: Workspace, context: str) -> RemoteBinding:
    found = binding(workspace, context)
    if found is None:
        raise RemoteNotBound(
            f"context {context!r} has no remote; bind one with 'assay remote add {context} URL' "
            "(Python: api.remote(local_context, remote_context, remote_url))"
        )
    return found


def bind(
    workspace: Workspace,
    context: str,
    remote_context: str,
    url: str,
    force: bool = False,
    endpoint_url: str | None = None,
) -> RemoteBinding:
    """Bind ``context`` to ``remote_context`` at ``url`` after checking the remote answers.

    Binding the same remote again changes nothing; a different one needs ``force``.
    """
    check_context_name(remote_context)
    options: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    wanted = RemoteBinding(context, remote_context, normalize_url(url), options)
    current = binding(workspace, context)
    if current == wanted:
        return current
    if current is not None and not force:
        raise RemoteExists(
            f"context {context!r} already has remote {current}; pass force=True (--force) to "
            f"replace it with {wanted} (bundles pulled from the old remote and not localized "
            "can then be localized only once it is bound again)"
        )
    open_store(wanted).probe(create=True)
    with workspace.write() as conn:
        remote_queries.set_binding(conn, operations.require_context(conn, context), wanted)
    return wanted


def open_store(bound: RemoteBinding, workspace: Workspace | None = None) -> RemoteStore:
    """The remote's store; with ``workspace``, pack indexes read once are cached in its home."""
    cache = workspace.settings.home / "remotes" if workspace is not None else None
    return RemoteStore(bound.url, bound.options, cache_root=cache)


def open_context(workspace: Workspace, bound: RemoteBinding) -> RemoteContext:
    return RemoteContext(
        open_store(bound, workspace), bound.remote_context, workspace.settings.home / "remotes"
    )


def _reconcile(workspace: Workspace, location: str, index: RemoteIndex) -> None:
    """Forget ``remote_bundles`` rows for bundles the remote no longer lists."""
    with workspace.read() as conn:
        known = remote_queries.uuids_at(conn, location)
    gone = sorted(known & index.removed)
    if gone:
        with workspace.write() as conn:
            remote_queries.unmark(conn, location, gone)


# -- push -----------------------------------------------------------------------------------
def _push_selection(
    workspace: Workspace,
    context: str,
    name: str | None,
    tags: Mapping[str, Any] | None,
    uuid: str | None,
) -> tuple[list[BundleRecord], int]:
    def refuse(record: BundleRecord) -> NotCommitted:
        return NotCommitted(
            f"bundle {record.name}@{record.uuid[:8]} is not committed; only committed bundles "
            f"are pushed: commit it first with 'assay commit {record.name}' "
            f"(Python: api.commit({context!r}, {record.name!r}))"
        )

    if uuid is not None or name is not None:
        record = operations.require(workspace, context, name, uuid, tags)
        if not record.committed:
            raise refuse(record)
        return [record], 0
    committed = operations.search(workspace, context, tags=tags, committed=True)
    uncommitted = operations.search(workspace, context, tags=tags, committed=False)
    return committed, len(uncommitted)


def push(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    uuid: str | None = None,
    progress: ProgressCallback | None = None,
) -> PushReport:
    """Push committed bundles: the newest version of ``name`` (with ``tags``), the bundle
    ``uuid``, or every committed bundle (with ``tags``) the remote does not list yet."""
    bound = require_binding(workspace, context)
    records, skipped = _push_selection(workspace, context, name, tags, uuid)
    remote = open_context(workspace, bound)
    index = remote.index()
    already = [r for r in records if r.uuid in index.entries]
    todo = [r for r in records if r.uuid not in index.entries]
    uploaded_blobs = uploaded_bytes = present_blobs = 0
    if todo:
        with workspace.read() as conn:
            files = remote_queries.files_of_many(conn, [r.uuid for r in todo])
        _require_local(workspace, todo, files)
        uploaded_blobs, uploaded_bytes, present_blobs = _send(
            workspace, remote, todo, files, progress
        )
    with workspace.write() as conn:
        remote_queries.mark(conn, bound.location, [r.uuid for r in records], PUSHED, time.time())
    _reconcile(workspace, bound.location, index)
    return PushReport(
        remote=bound.location,
        pushed=tuple(r.uuid for r in todo),
        already_there=tuple(r.uuid for r in already),
        skipped_uncommitted=skipped,
        blobs_uploaded=uploaded_blobs,
        bytes_uploaded=uploaded_bytes,
        blobs_already_there=present_blobs,
    )


def _send(
    workspace: Workspace,
    remote: RemoteContext,
    records: list[BundleRecord],
    files: Mapping[str, list[FileEntry]],
    progress: ProgressCallback | None = None,
) -> tuple[int, int, int]:
    """The remote side of a push: blobs the remote lacks, a record per bundle, one index
    segment (in that order); ``(blobs uploaded, bytes uploaded, blobs already there)``."""
    blobs = {f.blob_hash: f.size for r in records for f in files[r.uuid]}
    present = remote.store.existing_blobs(blobs)
    missing = {h: s for h, s in blobs.items() if h not in present}
    remote.store.upload_blobs(workspace.store, missing, progress)
    remote.store.parallel(lambda r: remote.write_record(r, files[r.uuid]), records)
    # A removal on another machine may have collected a blob we found present before our
    # record referenced it: look again now that the record protects it.
    vanished = present - remote.store.existing_blobs(present)
    if vanished:
        remote.store.upload_blobs(workspace.store, {h: blobs[h] for h in vanished})
    remote.add_segment([entry_of(r) for r in records])
    return (
        len(missing) + len(vanished),
        sum(missing.values()) + sum(blobs[h] for h in vanished),
        len(present) - len(vanished),
    )


def push_prepared(
    workspace: Workspace, context: str, bundles: list[tuple[BundleRecord, list[FileEntry]]]
) -> RemoteBinding | None:
    """Push committed bundles whose catalog rows are not written yet (their blobs are in the
    local store): the remote lists them, complete, before the transaction that writes their
    rows, so nothing the catalog shows is missing on the remote. The binding pushed to (None:
    the context has no remote); ``mark_pushed`` records it after the rows are written."""
    bound = binding(workspace, context)
    if bound is None or not bundles:
        return bound
    for record, _ in bundles:
        if not record.committed:
            raise NotCommitted(f"bundle {record.name}@{record.uuid[:8]} is not committed")
    remote = open_context(workspace, bound)
    _send(workspace, remote, [r for r, _ in bundles], {r.uuid: e for r, e in bundles})
    return bound


def mark_pushed(workspace: Workspace, bound: RemoteBinding, uuids: list[str]) -> None:
    """Record that these bundles are on ``bound``'s remote (after ``push_prepared``)."""
    with workspace.write() as conn:
        remote_queries.mark(conn, bound.location, uuids, PUSHED, time.time())


def _require_local(
    workspace: Workspace, records: list[BundleRecord], files: dict[str, list[FileEntry]]
) -> None:
    blobs = {f.blob_hash for r in records for f in files[r.uuid]}
    local = workspace.store.existing(blobs)
    for record in records:
        if any(f.blob_hash not in local for f in files[record.uuid]):
            raise NotLocalized(
                f"bundle {record.name}@{record.uuid[:8]} is not localized (some of its files "
                f"are only on another remote); run 'assay localize {record.name}' before "
                "pushing it here"
            )


# -- pull -----------------------------------------------------------------------------------
def _pull_selection(
    index: RemoteIndex,
    remote: str,
    name: str | None,
    uuid: str | None,
    tags: Mapping[str, Any] | None,
) -> list[RemoteEntry]:
    wanted_tags = bundle_tags(tags)
    entries = list(index.entries.values())
    if uuid is not None:
        entries = [e for e in entries if e.uuid == uuid or e.uuid.startswith(uuid.lower())]
        if len(entries) > 1 and len(uuid) < 36:
            raise InvalidInput(
                f"uuid prefix {uuid!r} matches {len(entries)} bundles on {remote}; give more "
                "characters"
            )
    if name is not None:
        entries = [e for e in entries if e.name == name]
    if wanted_tags:
        entries = [e for e in entries if all(e.tags.get(k) == v for k, v in wanted_tags.items())]
    if not entries and (uuid is not None or name is not None):
        what = f"uuid {uuid!r}" if uuid is not None else f"name {name!r}"
        with_tags = f" with tags {wanted_tags}" if wanted_tags else ""
        raise BundleNotFound(f"no bundle with {what}{with_tags} on remote {remote}")
    return entries


def pull(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
    localize: bool = False,
    progress: ProgressCallback | None = None,
) -> PullReport:
    """Bring the remote's bundles (all, every version of ``name``, one ``uuid``, or those
    with ``tags``) into ``context``: metadata now, file data when localized."""
    bound = require_binding(workspace, context)
    remote = open_context(workspace, bound)
    index = remote.index()
    entries = _pull_selection(index, bound.location, name, uuid, tags)
    uuids = [e.uuid for e in entries]
    with workspace.read() as conn:
        ctx_id = operations.require_context(conn, context)
        homes = remote_queries.context_of_uuids(conn, uuids)
        states = remote_queries.states_at(conn, bound.location, uuids)
    here = [u for u in uuids if homes.get(u) == context]
    skipped = [
        (u, f"already in context {homes[u]!r}") for u in uuids if u in homes and u not in here
    ]
    new = [u for u in uuids if u not in homes]
    fetched = remote.read_records(new, context) if new else {}
    pulled: list[str] = []
    for u in new:
        if fetched[u] is None:
            skipped.append((u, "its record is gone from the remote (removed meanwhile)"))
    with workspace.write() as conn:
        for u in new:
            found = fetched[u]
            if found is None:
                continue
            record, files = found
            queries.insert_bundle(conn, ctx_id, as_local(record, context), files)
            pulled.append(u)
        remote_queries.mark(conn, bound.location, pulled, PULLED, time.time())
        unmarked = [u for u in here if u not in states]
        remote_queries.mark(conn, bound.location, unmarked, PULLED, time.time())
    _reconcile(workspace, bound.location, index)
    localized: list[str] = []
    downloaded = 0
    if localize:
        for u in [*here, *pulled]:
            report = localize_bundle(
                workspace, context, uuid=u, progress=progress, store=remote.store
            )
            downloaded += report.bytes_downloaded
            localized.append(u)
    return PullReport(
        remote=bound.location,
        pulled=tuple(pulled),
        already_here=tuple(here),
        skipped=tuple(skipped),
        localized=tuple(localized),
        bytes_downloaded=downloaded,
    )


# -- localize -------------------------------------------------------------------------------
def missing_blobs(workspace: Workspace, record: BundleRecord) -> dict[str, int]:
    files = operations.files_of(workspace, record)
    blobs = {f.blob_hash: f.size for f in files}
    local = workspace.store.existing(blobs)
    return {h: s for h, s in blobs.items() if h not in local}


def is_localized(workspace: Workspace, record: BundleRecord) -> bool:
    return not missing_blobs(workspace, record)


def localize_bundle(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    progress: ProgressCallback | None = None,
    store: RemoteStore | None = None,
) -> LocalizeReport:
    """Download the blobs of one bundle (newest version of ``name``, or ``uuid``) that are not
    in the local store, each verified against its hash (``store``: the context's remote,
    already open)."""
    record = operations.require(workspace, context, name, uuid)
    missing = missing_blobs(workspace, record)
    if missing:
        if store is None:
            store = open_store(require_binding(workspace, context), workspace)
        with workspace.writing():
            store.download_blobs(workspace.store, missing, progress)
    return LocalizeReport(record.uuid, len(missing), sum(missing.values()))


def delocalize_bundle(
    workspace: Workspace, context: str, name: str | None = None, uuid: str | None = None
) -> DelocalizeReport:
    """Free the local blobs of a bundle that is safely on the context's remote.

    Checked first: the remote lists the bundle and holds every one of its blobs. Blobs that a
    bundle held only locally also references are kept.
    """
    record = operations.require(workspace, context, name, uuid)
    bound = require_binding(workspace, context)
    remote = open_context(workspace, bound)
    files = operations.files_of(workspace, record)
    blobs = {f.blob_hash: f.size for f in files}
    index = remote.index()
    if record.uuid not in index.entries:
        raise UnpushedBundles(
            f"bundle {record.name}@{record.uuid[:8]} is not on remote {bound.location}; push it "
            f"first ('assay push {record.name}') — nothing was removed"
        )
    on_remote = remote.store.existing_blobs(blobs)
    if len(on_remote) != len(blobs):
        raise UnpushedBundles(
            f"remote {bound.location} lacks {len(blobs) - len(on_remote)} of the files of "
            f"{record.name}@{record.uuid[:8]}; push it again before delocalizing — nothing "
            "was removed"
        )
    removed = freed = 0
    with workspace.collecting():
        with workspace.read() as conn:
            keep = remote_queries.blobs_of_local_only(conn, list(blobs))
        for blob_hash, size in blobs.items():
            if blob_hash in keep or not workspace.store.has(blob_hash):
                continue
            workspace.store.remove(blob_hash)
            removed += 1
            freed += size
    views.remove_view(workspace, record.uuid)
    return DelocalizeReport(record.uuid, removed, freed, len(keep))


# -- removing from the remote ---------------------------------------------------------------
def remove_remote(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    rm_all: bool = False,
    force: bool = False,
) -> RemoteRemoval:
    """Remove from the remote the newest version of ``name`` (every version with
    ``rm_all``), or the bundle ``uuid``; never anything unnamed.

    Refuses, unless ``force``, when a bundle to remove is in this catalog without its file
    data (the remote holds its only copy). Order: a tombstone segment (the remote stops
    listing them), then their records, then the blobs no remaining record in any context of
    the remote references.
    """
    if name is None and uuid is None:
        raise InvalidInput("name the bundle to remove from the remote (a name or a uuid)")
    bound = require_binding(workspace, context)
    remote = open_context(workspace, bound)
    index = remote.index()
    entries = _pull_selection(index, bound.location, name, uuid, None)
    if name is not None and uuid is None and not rm_all:
        entries = sorted(entries, key=lambda e: (e.created, e.uuid))[-1:]
    uuids = [e.uuid for e in entries]
    if not force:
        _refuse_only_copy(workspace, uuids, bound)
    records = remote.read_records(uuids, context)
    candidates = {f.blob_hash for found in records.values() if found for f in found[1]}
    remote.remove_segment(uuids)
    remote.delete_records(uuids)
    with workspace.write() as conn:
        remote_queries.unmark(conn, bound.location, uuids)
    kept = _still_referenced(remote.store, candidates, workspace)
    # Blobs in remote packs stay there (packs are immutable; see docs/remotes.md).
    doomed = sorted(candidates - kept - remote.store.packed_blobs(candidates))
    remote.store.delete([blob_key(h) for h in doomed])
    return RemoteRemoval(bound.location, tuple(entries), len(doomed), len(kept))


def _still_referenced(store: RemoteStore, candidates: set[str], workspace: Workspace) -> set[str]:
    """Which ``candidates`` some bundle record in any context of the remote references
    (records, not index entries: a push in progress has written its record already)."""
    if not candidates:
        return set()
    referenced: set[str] = set()
    for name in store.list_dirs("contexts"):
        other = RemoteContext(store, name, workspace.settings.home / "remotes")
        uuids = other.record_uuids()
        raw = store.read_many([other.record_key(u) for u in uuids])
        for data in raw.values():
            if data is None:
                continue
            try:
                document = json.loads(data)
                referenced.update(str(item[1]) for item in document["files"])
            except (ValueError, KeyError, TypeError, IndexError):
                # An unreadable record might reference anything: keep every candidate.
                return set(candidates)
    return candidates & referenced


def _refuse_only_copy(workspace: Workspace, uuids: list[str], bound: RemoteBinding) -> None:
    with workspace.read() as conn:
        local = queries.records_by_uuid(conn, uuids)
    for record in local.values():
        if missing_blobs(workspace, record):
            raise UnpushedBundles(
                f"bundle {record.name}@{record.uuid[:8]} is not localized here: remote "
                f"{bound.location} holds the only copy of its files; run 'assay localize "
                f"{record.name}' first, or pass force=True (--force) — nothing was removed"
            )


@dataclass(frozen=True)
class RemoteStatus:
    """What this catalog knows of a context's remote (no network)."""

    binding: RemoteBinding | None
    pushed: int = 0
    pulled: int = 0
    not_localized: tuple[str, ...] = ()


def status(workspace: Workspace, context: str) -> RemoteStatus:
    bound = binding(workspace, context)
    if bound is None:
        return RemoteStatus(None)
    with workspace.read() as conn:
        counts = remote_queries.counts_at(conn, bound.location)
        uuids = sorted(remote_queries.uuids_at(conn, bound.location))
        files = remote_queries.files_of_many(conn, uuids)
    local = workspace.store.existing({f.blob_hash for entries in files.values() for f in entries})
    missing = tuple(u for u in uuids if any(f.blob_hash not in local for f in files[u]))
    return RemoteStatus(bound, counts.get(PUSHED, 0), counts.get(PULLED, 0), missing)
