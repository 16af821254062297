"""Several bundles in ONE catalog transaction: blobs first, then every row at once.

``prepare_bundle`` stores a bundle's files in the blob store and builds its record (nothing in
the catalog yet); ``insert_bundles`` writes the rows of several prepared bundles inside the
caller's write transaction, so a caller can commit them together with rows of its own (a job's
final transition): all are visible, or none. Hold ``workspace.writing()`` from the first
``prepare_bundle`` until the transaction has committed, so ``gc`` cannot remove the blobs in
between. Used for a question's output datasets (``assay.services.publishing``).
"""

from __future__ import annotations

import getpass
import os
import time
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from assay.bundles import presentation, views
from assay.bundles.ingest import SourceFile, ingest
from assay.bundles.operations import require_context
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.hashing import tree_hash
from assay.core.names import bundle_tags, check_bundle_name
from assay.core.records import BundleRecord, Dependency, FileEntry


@dataclass(frozen=True)
class PreparedBundle:
    """A bundle whose blobs are stored and whose rows are not written yet."""

    record: BundleRecord
    entries: list[FileEntry]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def prepare_bundle(
    workspace: Workspace,
    context: str,
    name: str,
    files: list[SourceFile],
    *,
    tags: Mapping[str, Any] | None = None,
    dependencies: Sequence[Dependency] = (),
    params: Mapping[str, Any] | None = None,
    processing_name: str | None = None,
    code_version: dict[str, Any] | None = None,
) -> PreparedBundle:
    """Store ``files`` (already scanned) as blobs and build the bundle's record; the bundle
    presents as the list of those files, as ``create_bundle(files=...)`` does."""
    check_bundle_name(name)
    tag_values = bundle_tags(tags)
    document: Any = presentation.file_list(f.bundle_path for f in files)
    entries = ingest(workspace.store, workspace.stat_cache, files, None)
    content_hash = tree_hash(((e.path, e.blob_hash, e.size) for e in entries), document)
    now = time.time()
    record = BundleRecord(
        uuid=str(uuid_module.uuid4()),
        context=context,
        name=name,
        processing_name=processing_name or name,
        owner=_user(),
        created=now,
        committed=False,
        content_hash=content_hash,
        presentation=presentation.presentation_of(document),
        data=document,
        params=dict(params or {}),
        code_version=code_version if code_version is not None else {},
        start_time=now,
        stop_time=now,
        file_count=len(entries),
        total_size=sum(e.size for e in entries),
        tags=tag_values,
        dependencies=tuple(dependencies),
    )
    return PreparedBundle(record, entries)


def insert_bundles(
    conn: Connection, workspace: Workspace, prepared: Sequence[PreparedBundle]
) -> list[str]:
    """Write the prepared bundles' rows in the caller's transaction (their contexts must
    exist); prunes uncommitted history as ``create_bundle`` does. Returns the pruned uuids,
    whose views the caller removes after the commit (``remove_views``)."""
    pruned_all: list[str] = []
    for item in prepared:
        record = item.record
        context_id = require_context(conn, record.context)
        queries.insert_bundle(conn, context_id, record, item.entries)
        pruned = queries.uncommitted_beyond(
            conn, context_id, record.name, workspace.settings.max_uncommitted
        )
        queries.delete_bundles(conn, pruned)
        pruned_all.extend(pruned)
    return pruned_all


def remove_views(workspace: Workspace, uuids: Sequence[str]) -> None:
    for bundle_uuid in uuids:
        views.remove_view(workspace, bundle_uuid)
