"""The bundle domain: contexts, creating, finding, committing, removing and reading bundles.

Every function takes a ``Workspace`` and returns plain records. A bundle is written in two
steps: its blobs go to the store first (safe to repeat, invisible on their own), then all of
its catalog rows in one transaction, so a bundle is visible whole or not at all.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
import time
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy.exc

from assay.bundles import presentation, views
from assay.bundles.ingest import ProgressCallback, SourceFile, ingest, scan
from assay.bundles.workspace import Workspace
from assay.catalog import queries, remote_queries
from assay.core.errors import (
    AmbiguousReference,
    BlobMissing,
    BundleNotFound,
    ContextNotFound,
    HasDependents,
    InvalidInput,
    NotLocalized,
    UnpushedBundles,
)
from assay.core.gcpause import without_gc
from assay.core.hashing import tree_hash
from assay.core.names import bundle_tags, check_bundle_name, check_context_name
from assay.core.records import BundleRecord, ContextInfo, Dependency, FileEntry
from assay.core.times import parse_when

_MIN_UUID_PREFIX = 4


# -- contexts -------------------------------------------------------------------------------
def create_context(workspace: Workspace, name: str) -> bool:
    """Create context ``name``; False when it already exists."""
    check_context_name(name)
    try:
        with workspace.write() as conn:
            if queries.context_id(conn, name) is not None:
                return False
            queries.insert_context(conn, name, time.time())
    except sqlalchemy.exc.IntegrityError:
        # Another process created it between our check and our insert (PostgreSQL's READ
        # COMMITTED lets both check; the unique constraint decides).
        return False
    return True


def list_contexts(workspace: Workspace) -> list[ContextInfo]:
    """Every context with its bundle counts and its remote (``<remote context>@<url>``)."""
    with workspace.read() as conn:
        infos = queries.list_contexts(conn)
        bindings = remote_queries.all_bindings(conn)
    return [
        replace(info, remote=str(bindings[info.name])) if info.name in bindings else info
        for info in infos
    ]


def require_context(conn: Any, name: str) -> int:
    check_context_name(name)
    ctx_id = queries.context_id(conn, name)
    if ctx_id is None:
        raise ContextNotFound(
            f"no context named {name!r}; create it with 'assay context create {name}'"
        )
    return ctx_id


def delete_context(workspace: Workspace, name: str, force: bool = False) -> int:
    """Delete a context and its bundles; returns how many bundles went with it.

    Refuses when committed bundles have not been pushed to the context's remote (with no
    remote bound, every committed bundle is unpushed) or when bundles elsewhere depend on its
    bundles.
    """
    with workspace.write() as conn:
        ctx_id = require_context(conn, name)
        records = queries.find_bundles(conn, queries.BundleQuery(context_id=ctx_id))
        uuids = [r.uuid for r in records]
        if not force:
            bound = remote_queries.binding_of(conn, ctx_id)
            unpushed = set(
                remote_queries.unpushed_committed(
                    conn, ctx_id, bound.location if bound is not None else None
                )
            )
            committed = [r for r in records if r.uuid in unpushed]
            if committed:
                where = f"its remote {bound}" if bound is not None else "a remote"
                raise UnpushedBundles(
                    f"context {name!r} has {len(committed)} committed bundle(s) not pushed to "
                    f"{where} ({_describe(committed)}); push them ('assay push') or pass "
                    "force=True (--force) to delete them anyway"
                )
            dependents = queries.dependents_of(conn, uuids)
            if dependents:
                raise HasDependents(
                    f"bundles in other contexts depend on context {name!r}: "
                    f"{_describe(dependents)}; pass force=True (--force) to delete anyway"
                )
        queries.delete_context(conn, ctx_id)
    for bundle_uuid in uuids:
        views.remove_view(workspace, bundle_uuid)
    return len(uuids)


# -- creating bundles -----------------------------------------------------------------------
@without_gc
def create_bundle(
    workspace: Workspace,
    context: str,
    name: str,
    data: Any,
    *,
    tags: Mapping[str, Any] | None = None,
    dependencies: Sequence[Dependency] = (),
    params: Mapping[str, Any] | None = None,
    processing_name: str | None = None,
    owner: str | None = None,
    start_time: float | None = None,
    stop_time: float | None = None,
    code_version: dict[str, Any] | None = None,
    staging: Path | None = None,
    bundle_uuid: str | None = None,
    reuse_identical: bool = False,
    progress: ProgressCallback | None = None,
    files: list[SourceFile] | None = None,
) -> BundleRecord:
    """Store ``data`` (and the files it names) as a new closed bundle.

    ``files`` (already scanned, e.g. a whole directory) replaces ``data``: the bundle then
    presents as the list of those files. With ``reuse_identical``, when the newest version of
    ``name`` already has the same content, tags and dependencies, that version is returned and
    nothing new is made.
    """
    check_bundle_name(name)
    tag_values = bundle_tags(tags)
    with workspace.read() as conn:
        require_context(conn, context)
    scratch_dir: list[Path] = []

    def scratch() -> Path:
        if not scratch_dir:
            workspace.settings.home.mkdir(parents=True, exist_ok=True)
            scratch_dir.append(
                Path(tempfile.mkdtemp(prefix="scratch-", dir=workspace.settings.home))
            )
        return scratch_dir[0]

    with workspace.writing():
        try:
            if files is not None:
                document: Any = presentation.file_list(f.bundle_path for f in files)
            else:
                encoded = presentation.encode(data, staging, scratch)
                document, files = encoded.document, scan(encoded.sources)
            entries = ingest(workspace.store, workspace.stat_cache, files, progress)
        finally:
            if scratch_dir:
                shutil.rmtree(scratch_dir[0], ignore_errors=True)
        return _commit_new_bundle(
            workspace,
            context,
            name,
            document,
            entries,
            tags=tag_values,
            dependencies=dependencies,
            params=params,
            processing_name=processing_name,
            owner=owner,
            start_time=start_time,
            stop_time=stop_time,
            code_version=code_version,
            bundle_uuid=bundle_uuid,
            reuse_identical=reuse_identical,
        )


def _commit_new_bundle(
    workspace: Workspace,
    context: str,
    name: str,
    document: Any,
    entries: list[FileEntry],
    *,
    tags: dict[str, str],
    dependencies: Sequence[Dependency],
    params: Mapping[str, Any] | None,
    processing_name: str | None,
    owner: str | None,
    start_time: float | None,
    stop_time: float | None,
    code_version: dict[str, Any] | None,
    bundle_uuid: str | None,
    reuse_identical: bool,
) -> BundleRecord:
    content_hash = tree_hash(((e.path, e.blob_hash, e.size) for e in entries), document)
    now = time.time()
    record = BundleRecord(
        uuid=bundle_uuid or str(uuid_module.uuid4()),
        context=context,
        name=name,
        processing_name=processing_name or name,
        owner=owner if owner is not None else _user(),
        created=now,
        committed=False,
        content_hash=content_hash,
        presentation=presentation.presentation_of(document),
        data=document,
        params=dict(params or {}),
        code_version=code_version if code_version is not None else {},
        start_time=start_time if start_time is not None else now,
        stop_time=stop_time if stop_time is not None else now,
        file_count=len(entries),
        total_size=sum(e.size for e in entries),
        tags=tags,
        dependencies=tuple(dependencies),
    )
    with workspace.write() as conn:
        ctx_id = require_context(conn, context)
        if reuse_identical:
            latest = queries.find_bundles(
                conn, queries.BundleQuery(context_id=ctx_id, name=name, limit=1)
            )
            if latest and _same_content(latest[0], record):
                return latest[0]
        queries.insert_bundle(conn, ctx_id, record, entries)
        pruned = queries.uncommitted_beyond(conn, ctx_id, name, workspace.settings.max_uncommitted)
        queries.delete_bundles(conn, pruned)
    for old_uuid in pruned:
        views.remove_view(workspace, old_uuid)
    return record


def _same_content(existing: BundleRecord, new: BundleRecord) -> bool:
    return (
        existing.content_hash == new.content_hash
        and existing.tags == new.tags
        and set(existing.dependencies) == set(new.dependencies)
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


# -- finding bundles ------------------------------------------------------------------------
def _tag_pairs(tags: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(bundle_tags(tags).items()))


def resolve(
    workspace: Workspace,
    context: str | None,
    reference: str,
    by_name: bool = True,
) -> BundleRecord:
    """A bundle by name (its newest version), uuid, or unique uuid prefix (4+ characters).

    ``context=None`` searches uuids in every context.
    """
    with workspace.read() as conn:
        ctx_id = require_context(conn, context) if context is not None else None
        if by_name and context is not None and _looks_like_name(reference):
            found = queries.find_bundles(
                conn, queries.BundleQuery(context_id=ctx_id, name=reference, limit=1)
            )
            if found:
                return found[0]
        by_uuid = queries.find_bundles(conn, queries.BundleQuery(context_id=ctx_id, uuid=reference))
        if by_uuid:
            return by_uuid[0]
        if len(reference) >= _MIN_UUID_PREFIX and _is_uuid_prefix(reference):
            matches = queries.find_bundles(
                conn,
                queries.BundleQuery(context_id=ctx_id, uuid_prefix=reference.lower(), limit=11),
            )
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                shown = ", ".join(f"{m.uuid} ({m.name})" for m in matches[:10])
                raise AmbiguousReference(
                    f"uuid prefix {reference!r} matches several bundles: {shown}; "
                    "give more characters"
                )
    where = f" in context {context!r}" if context else ""
    raise BundleNotFound(f"no bundle named or with uuid {reference!r}{where}")


def _is_uuid_prefix(text: str) -> bool:
    return all(c in "0123456789abcdef-" for c in text.lower())


def _looks_like_name(text: str) -> bool:
    return not (len(text) == 36 and _is_uuid_prefix(text))


def get(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> BundleRecord | None:
    """The newest bundle with ``name`` (and ``tags``), or the one with ``uuid``; else None."""
    if uuid is not None:
        try:
            return resolve(workspace, context, uuid, by_name=False)
        except BundleNotFound:
            return None
    if name is None:
        raise InvalidInput("give a bundle name or a uuid")
    with workspace.read() as conn:
        ctx_id = require_context(conn, context)
        found = queries.find_bundles(
            conn,
            queries.BundleQuery(context_id=ctx_id, name=name, tags=_tag_pairs(tags), limit=1),
        )
    return found[0] if found else None


def require(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> BundleRecord:
    record = get(workspace, context, name, uuid, tags)
    if record is None:
        what = f"uuid {uuid!r}" if uuid else f"name {name!r}"
        with_tags = f" with tags {dict(tags)}" if tags else ""
        raise BundleNotFound(f"no bundle with {what}{with_tags} in context {context!r}")
    return record


def glob_to_like(pattern: str) -> str:
    """A name glob (``*`` any run, ``?`` one character) as a SQL LIKE pattern."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def search(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    committed: bool | None = None,
    before: Any = None,
    after: Any = None,
    limit: int | None = None,
) -> list[BundleRecord]:
    """Bundles in ``context`` matching every condition given, newest first."""
    with workspace.read() as conn:
        ctx_id = require_context(conn, context)
        query = queries.BundleQuery(
            context_id=ctx_id,
            name=name if name is not None and not _is_glob(name) else None,
            name_like=glob_to_like(name) if name is not None and _is_glob(name) else None,
            tags=_tag_pairs(tags),
            committed=committed,
            before=parse_when(before),
            after=parse_when(after),
            limit=limit,
        )
        return queries.find_bundles(conn, query)


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?")


def versions(workspace: Workspace, context: str, name: str) -> list[BundleRecord]:
    return search(workspace, context, name=name)


def latest_per_name(workspace: Workspace, context: str) -> list[BundleRecord]:
    """The newest version of every bundle name in ``context``."""
    seen: dict[str, BundleRecord] = {}
    for record in search(workspace, context):
        seen.setdefault(record.name, record)
    return sorted(seen.values(), key=lambda r: r.name)


# -- changing bundles -----------------------------------------------------------------------
def commit(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    uuid: str | None = None,
) -> BundleRecord:
    """Mark the chosen bundle committed (kept until removed, eligible to push)."""
    record = require(workspace, context, name, uuid, tags)
    with workspace.write() as conn:
        queries.set_committed(conn, [record.uuid])
    return _reload(workspace, record.uuid)


def add_tags(workspace: Workspace, uuid: str, tags: Mapping[str, Any]) -> BundleRecord:
    values = bundle_tags(tags)
    with workspace.write() as conn:
        if not queries.records_by_uuid(conn, [uuid]):
            raise BundleNotFound(f"no bundle with uuid {uuid!r}")
        queries.set_tags(conn, uuid, values)
    return _reload(workspace, uuid)


def _reload(workspace: Workspace, uuid: str) -> BundleRecord:
    with workspace.read() as conn:
        found = queries.records_by_uuid(conn, [uuid])
    if uuid not in found:
        raise BundleNotFound(f"bundle {uuid} was removed meanwhile")
    return found[uuid]


def remove(
    workspace: Workspace,
    context: str,
    name: str | None = None,
    uuid: str | None = None,
    tags: Mapping[str, Any] | None = None,
    rm_all: bool = False,
    rm_old_only: bool = False,
    force: bool = False,
) -> list[BundleRecord]:
    """Remove bundles: the newest (default), all versions, or all but the newest.

    Refuses, naming them, when other bundles depend on what would be removed, unless
    ``force``. Blobs stay in the store until ``gc`` (another bundle may share them).
    """
    if rm_all and rm_old_only:
        raise InvalidInput("choose either all versions or old versions only, not both")
    by_uuid = resolve(workspace, context, uuid, by_name=False) if uuid is not None else None
    with workspace.write() as conn:
        ctx_id = require_context(conn, context)
        if by_uuid is not None:
            targets = [by_uuid]
        elif name is not None:
            found = queries.find_bundles(
                conn, queries.BundleQuery(context_id=ctx_id, name=name, tags=_tag_pairs(tags))
            )
            if not found:
                raise BundleNotFound(f"no bundle named {name!r} in context {context!r}")
            targets = found if rm_all else found[1:] if rm_old_only else found[:1]
        else:
            raise InvalidInput("give a bundle name or a uuid to remove")
        uuids = [t.uuid for t in targets]
        if not force:
            dependents = queries.dependents_of(conn, uuids)
            if dependents:
                raise HasDependents(
                    f"cannot remove {_describe(targets)}: {_describe(dependents)} depend(s) on "
                    "it; remove those first or pass force=True (--force)"
                )
        queries.delete_bundles(conn, uuids)
    for target in targets:
        views.remove_view(workspace, target.uuid)
    return targets


def _describe(records: Sequence[BundleRecord], most: int = 5) -> str:
    shown = ", ".join(f"{r.name}@{r.uuid[:8]}" for r in records[:most])
    return shown + (f" and {len(records) - most} more" if len(records) > most else "")


# -- reading bundles ------------------------------------------------------------------------
def files_of(workspace: Workspace, record: BundleRecord) -> list[FileEntry]:
    with workspace.read() as conn:
        return queries.bundle_files_of(conn, record.uuid)


def load_data(workspace: Workspace, record: BundleRecord) -> Any:
    """The bundle's data as it was saved; files come back as paths in a verified view."""
    view: list[Path] = []

    def view_dir() -> Path:
        if not view:
            _reload(workspace, record.uuid)  # removed meanwhile: BundleNotFound, not empty paths
            try:
                view.append(views.bundle_view(workspace, record))
            except BlobMissing:
                problem = not_localized(workspace, record)
                if problem is not None:
                    raise problem from None
                raise
        return view[0]

    return presentation.decode(record.data, view_dir)


def not_localized(workspace: Workspace, record: BundleRecord) -> NotLocalized | None:
    """The error for reading a bundle whose blobs are missing because they are on a remote
    (pulled and not localized, or delocalized); None when no remote holds it."""
    with workspace.read() as conn:
        locations = remote_queries.locations_of(conn, record.uuid)
    if not locations:
        return None
    where = ", ".join(sorted(locations))
    return NotLocalized(
        f"bundle {record.name}@{record.uuid[:8]} is not localized: its files are on remote "
        f"{where}; run 'assay localize {record.name}' (Python: Bundle.localize()) first"
    )
