"""Catalog reads and writes, as functions over a SQLAlchemy ``Connection``.

Every statement is built with SQLAlchemy Core (bound parameters, never string formatting).
Loading many bundles costs a fixed number of queries (bundles, then their tags and links in
one ``IN`` query each), not one query per bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from assay.catalog.schema import bundle_files, bundles, contexts, links, remote_bundles, tags
from assay.catalog.sql_lists import one_of
from assay.core.gcpause import without_gc
from assay.core.hashing import canonical_json
from assay.core.records import BundleRecord, ContextInfo, Dependency, FileEntry

_IN_CHUNK = 500  # keep IN lists well under SQLite's and PostgreSQL's parameter limits


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- contexts -------------------------------------------------------------------------------
def context_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(contexts.c.id).where(contexts.c.name == name)).scalar()


def insert_context(conn: Connection, name: str, created: float) -> int:
    result = conn.execute(insert(contexts).values(name=name, created=created))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def list_contexts(conn: Connection) -> list[ContextInfo]:
    counts = (
        select(
            bundles.c.context_id,
            func.count().label("n"),
            func.sum(func.cast(bundles.c.committed, type_=bundles.c.file_count.type)).label("c"),
        )
        .group_by(bundles.c.context_id)
        .subquery()
    )
    rows = conn.execute(
        select(contexts.c.name, contexts.c.created, counts.c.n, counts.c.c)
        .select_from(contexts.outerjoin(counts, counts.c.context_id == contexts.c.id))
        .order_by(contexts.c.name)
    )
    return [ContextInfo(r.name, r.created, int(r.n or 0), int(r.c or 0)) for r in rows]


def delete_context(conn: Connection, ctx_id: int) -> None:
    uuids = [
        r[0] for r in conn.execute(select(bundles.c.uuid).where(bundles.c.context_id == ctx_id))
    ]
    delete_bundles(conn, uuids)
    conn.execute(delete(contexts).where(contexts.c.id == ctx_id))


# -- writing bundles ------------------------------------------------------------------------
def insert_bundle(
    conn: Connection, ctx_id: int, record: BundleRecord, files: Sequence[FileEntry]
) -> None:
    conn.execute(
        insert(bundles).values(
            uuid=record.uuid,
            context_id=ctx_id,
            name=record.name,
            processing_name=record.processing_name,
            owner=record.owner,
            created=record.created,
            committed=record.committed,
            content_hash=record.content_hash,
            presentation=record.presentation,
            data=canonical_json(record.data),
            params=canonical_json(record.params),
            code_version=canonical_json(record.code_version),
            start_time=record.start_time,
            stop_time=record.stop_time,
            file_count=record.file_count,
            total_size=record.total_size,
        )
    )
    if files:
        conn.execute(
            insert(bundle_files),
            [
                {
                    "bundle_uuid": record.uuid,
                    "path": f.path,
                    "blob_hash": f.blob_hash,
                    "size": f.size,
                }
                for f in files
            ],
        )
    if record.tags:
        conn.execute(
            insert(tags),
            [{"bundle_uuid": record.uuid, "key": k, "value": v} for k, v in record.tags.items()],
        )
    if record.dependencies:
        unique = {(d.uuid, d.kind, d.arg_name) for d in record.dependencies}
        conn.execute(
            insert(links),
            [
                {"bundle_uuid": record.uuid, "target_uuid": u, "kind": k, "arg_name": a}
                for u, k, a in sorted(unique)
            ],
        )


def set_committed(conn: Connection, uuids: Sequence[str]) -> None:
    for chunk in _chunks(uuids):
        conn.execute(update(bundles).where(bundles.c.uuid.in_(chunk)).values(committed=True))


def set_tags(conn: Connection, uuid: str, new_tags: dict[str, str]) -> None:
    """Add or update tags of a closed bundle (tags are the one thing that may change)."""
    if not new_tags:
        return
    conn.execute(delete(tags).where(tags.c.bundle_uuid == uuid, tags.c.key.in_(list(new_tags))))
    conn.execute(
        insert(tags), [{"bundle_uuid": uuid, "key": k, "value": v} for k, v in new_tags.items()]
    )


def delete_bundles(conn: Connection, uuids: Sequence[str]) -> None:
    # Child rows are deleted explicitly: SQLite enforces ON DELETE CASCADE only with the
    # foreign_keys pragma, and a connection made by another tool may not set it.
    for chunk in _chunks(list(uuids)):
        for table in (bundle_files, tags, links, remote_bundles):
            conn.execute(delete(table).where(table.c.bundle_uuid.in_(chunk)))
        conn.execute(delete(bundles).where(bundles.c.uuid.in_(chunk)))


# -- finding bundles ------------------------------------------------------------------------
@dataclass(frozen=True)
class BundleQuery:
    """What to look for; every field given narrows the result (AND)."""

    context_id: int | None = None
    name: str | None = None
    name_like: str | None = None  # SQL LIKE pattern with '\\' as escape
    uuid: str | None = None
    uuid_prefix: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    committed: bool | None = None
    before: float | None = None
    after: float | None = None
    limit: int | None = None
    #: Keyset pagination: only bundles strictly after this ``(created, uuid)`` in the
    #: newest-first order (the last row of the previous page).
    keyset: tuple[float, str] | None = None


@without_gc  # thousands of records at once (see core/gcpause.py)
def find_bundles(conn: Connection, query: BundleQuery) -> list[BundleRecord]:
    """Bundles matching ``query``, newest first, with tags and dependencies loaded."""
    conditions: list[Any] = []
    if query.context_id is not None:
        conditions.append(bundles.c.context_id == query.context_id)
    if query.name is not None:
        conditions.append(bundles.c.name == query.name)
    if query.name_like is not None:
        conditions.append(bundles.c.name.like(query.name_like, escape="\\"))
    if query.uuid is not None:
        conditions.append(bundles.c.uuid == query.uuid)
    if query.uuid_prefix is not None:
        conditions.append(
            bundles.c.uuid.like(query.uuid_prefix.replace("_", "\\_") + "%", escape="\\")
        )
    for position, (key, value) in enumerate(query.tags):
        if position == 0:
            # An IN over the (key, value) index lets the database start from the few bundles
            # with the first tag instead of testing every bundle of the context...
            conditions.append(
                bundles.c.uuid.in_(
                    select(tags.c.bundle_uuid).where(tags.c.key == key, tags.c.value == value)
                )
            )
        else:
            # ...and each further tag is one primary-key probe per candidate (an IN here
            # would materialise every bundle carrying that, perhaps common, tag).
            conditions.append(
                exists().where(
                    tags.c.bundle_uuid == bundles.c.uuid, tags.c.key == key, tags.c.value == value
                )
            )
    if query.committed is not None:
        conditions.append(bundles.c.committed == query.committed)
    if query.before is not None:
        conditions.append(bundles.c.created < query.before)
    if query.after is not None:
        conditions.append(bundles.c.created >= query.after)
    if query.keyset is not None:
        created, last_uuid = query.keyset
        conditions.append(
            or_(
                bundles.c.created < created,
                and_(bundles.c.created == created, bundles.c.uuid < last_uuid),
            )
        )
    statement = (
        select(bundles, contexts.c.name.label("context_name"))
        .join(contexts, contexts.c.id == bundles.c.context_id)
        .where(and_(literal(True), *conditions))
        .order_by(bundles.c.created.desc(), bundles.c.uuid.desc())
    )
    if query.limit is not None:
        statement = statement.limit(query.limit)
    rows = conn.execute(statement).all()
    return _with_tags_and_links(conn, rows)


def _json_value(text: str) -> Any:
    """A JSON column's value; ``{}`` (most params and code versions) without the parser."""
    return {} if text == "{}" else json.loads(text)


def _with_tags_and_links(conn: Connection, rows: Sequence[Any]) -> list[BundleRecord]:
    uuids = [r.uuid for r in rows]
    tag_map: dict[str, dict[str, str]] = {u: {} for u in uuids}
    link_map: dict[str, list[Dependency]] = {u: [] for u in uuids}
    for chunk in _chunks(uuids):
        for t in conn.execute(select(tags).where(one_of(conn, tags.c.bundle_uuid, chunk))):
            tag_map[t.bundle_uuid][t.key] = t.value
        for link in conn.execute(
            select(links).where(one_of(conn, links.c.bundle_uuid, chunk)).order_by(links.c.arg_name)
        ):
            link_map[link.bundle_uuid].append(
                Dependency(link.target_uuid, link.kind, link.arg_name)
            )
    return [
        BundleRecord(
            uuid=r.uuid,
            context=r.context_name,
            name=r.name,
            processing_name=r.processing_name,
            owner=r.owner,
            created=r.created,
            committed=bool(r.committed),
            content_hash=r.content_hash,
            presentation=r.presentation,
            data=_json_value(r.data),
            params=_json_value(r.params),
            code_version=_json_value(r.code_version),
            start_time=r.start_time,
            stop_time=r.stop_time,
            file_count=r.file_count,
            total_size=r.total_size,
            tags=tag_map[r.uuid],
            dependencies=tuple(link_map[r.uuid]),
        )
        for r in rows
    ]


def bundle_files_of(conn: Connection, uuid: str) -> list[FileEntry]:
    rows = conn.execute(
        select(bundle_files.c.path, bundle_files.c.blob_hash, bundle_files.c.size)
        .where(bundle_files.c.bundle_uuid == uuid)
        .order_by(bundle_files.c.path)
    )
    return [FileEntry(r.path, r.blob_hash, r.size) for r in rows]


def bundle_file(conn: Connection, uuid: str, path: str) -> FileEntry | None:
    """One file of a bundle by its path (a primary-key read)."""
    row = conn.execute(
        select(bundle_files.c.path, bundle_files.c.blob_hash, bundle_files.c.size).where(
            bundle_files.c.bundle_uuid == uuid, bundle_files.c.path == path
        )
    ).first()
    return FileEntry(row.path, row.blob_hash, row.size) if row is not None else None


def dependents_of(conn: Connection, uuids: Sequence[str]) -> list[BundleRecord]:
    """Bundles outside ``uuids`` that link to any of ``uuids``."""
    found: dict[str, Any] = {}
    for chunk in _chunks(list(uuids)):
        rows = conn.execute(
            select(bundles, contexts.c.name.label("context_name"))
            .join(contexts, contexts.c.id == bundles.c.context_id)
            .where(
                bundles.c.uuid.in_(
                    select(links.c.bundle_uuid).where(links.c.target_uuid.in_(chunk))
                )
            )
        ).all()
        for row in rows:
            if row.uuid not in uuids:
                found[row.uuid] = row
    ordered = sorted(found.values(), key=lambda r: (-r.created, r.uuid))
    return _with_tags_and_links(conn, ordered)


def uncommitted_beyond(conn: Connection, ctx_id: int, name: str, keep: int) -> list[str]:
    """Uncommitted versions of ``name`` older than the newest ``keep`` that nothing depends on."""
    has_dependents = exists().where(links.c.target_uuid == bundles.c.uuid)
    rows = conn.execute(
        select(bundles.c.uuid)
        .where(
            bundles.c.context_id == ctx_id,
            bundles.c.name == name,
            bundles.c.committed == False,  # noqa: E712 (SQL expression)
            ~has_dependents,
        )
        .order_by(bundles.c.created.desc(), bundles.c.uuid.desc())
        .offset(keep)
    )
    return [r[0] for r in rows]


def referenced_blobs(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(bundle_files.c.blob_hash).distinct())}


def all_bundle_uuids(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(select(bundles.c.uuid))}


def files_for_verify(
    conn: Connection, uuids: Sequence[str] | None
) -> list[tuple[str, str, str, str, str]]:
    """``(bundle uuid, bundle name, context, path, blob hash)`` for ``uuids`` (None: all)."""
    statement = (
        select(
            bundle_files.c.bundle_uuid,
            bundles.c.name,
            contexts.c.name.label("context_name"),
            bundle_files.c.path,
            bundle_files.c.blob_hash,
        )
        .join(bundles, bundles.c.uuid == bundle_files.c.bundle_uuid)
        .join(contexts, contexts.c.id == bundles.c.context_id)
        .order_by(bundles.c.name, bundle_files.c.path)
    )
    if uuids is None:
        return [tuple(r) for r in conn.execute(statement)]
    result: list[tuple[str, str, str, str, str]] = []
    for chunk in _chunks(list(uuids)):
        result.extend(
            tuple(r) for r in conn.execute(statement.where(bundle_files.c.bundle_uuid.in_(chunk)))
        )
    return result


# -- lineage --------------------------------------------------------------------------------
def walk_links(
    conn: Connection, start_uuid: str, downstream: bool, max_depth: int | None
) -> list[tuple[str, int, str, str, str]]:
    """Breadth-first lineage from one recursive query.

    Returns ``(uuid, depth, via_uuid, kind, arg_name)`` rows, each bundle once at its smallest
    depth. Upstream follows ``bundle -> target``; downstream follows ``target -> bundle``. The
    recursive part carries only ``(uuid, depth)`` under UNION, so a DAG full of diamonds stays
    at most nodes x depth rows instead of one row per path.
    """
    source_col, next_col = (
        (links.c.target_uuid, links.c.bundle_uuid)
        if downstream
        else (links.c.bundle_uuid, links.c.target_uuid)
    )
    bound = max_depth if max_depth is not None else 10_000  # also stops a corrupt cycle
    seed = select(next_col.label("uuid"), literal(1).label("depth")).where(source_col == start_uuid)
    walk = seed.cte("walk", recursive=True)
    step_links = links.alias("step")
    step_source, step_next = (
        (step_links.c.target_uuid, step_links.c.bundle_uuid)
        if downstream
        else (step_links.c.bundle_uuid, step_links.c.target_uuid)
    )
    walk = walk.union(
        select(step_next, walk.c.depth + 1)
        .join(walk, step_source == walk.c.uuid)
        .where(walk.c.depth < bound)
    )
    depth_of: dict[str, int] = {}
    for uuid, depth in conn.execute(
        select(walk.c.uuid, func.min(walk.c.depth)).group_by(walk.c.uuid)
    ):
        if uuid != start_uuid:
            depth_of[uuid] = int(depth)
    if max_depth is not None and max_depth < 1:
        depth_of = {}
    depth_of[start_uuid] = 0
    # One more read of the edges among the nodes found, to say how each was reached.
    edges: list[Any] = []
    nodes = list(depth_of)
    for chunk in _chunks(nodes):
        edges.extend(conn.execute(select(links).where(next_col.in_(chunk))).all())
    result: dict[str, tuple[str, int, str, str, str]] = {}
    for edge in sorted(edges, key=lambda e: (e.arg_name, e.kind, e.bundle_uuid, e.target_uuid)):
        source, target = (
            (edge.target_uuid, edge.bundle_uuid)
            if downstream
            else (edge.bundle_uuid, edge.target_uuid)
        )
        depth = depth_of.get(target)
        if not depth or target in result or depth_of.get(source) != depth - 1:
            continue
        result[target] = (target, depth, source, edge.kind, edge.arg_name)
    return sorted(result.values(), key=lambda row: (row[1], row[4], row[0]))


def records_by_uuid(conn: Connection, uuids: Sequence[str]) -> dict[str, BundleRecord]:
    rows: list[Any] = []
    for chunk in _chunks(list(uuids)):
        rows.extend(
            conn.execute(
                select(bundles, contexts.c.name.label("context_name"))
                .join(contexts, contexts.c.id == bundles.c.context_id)
                .where(bundles.c.uuid.in_(chunk))
            ).all()
        )
    return {r.uuid: r for r in _with_tags_and_links(conn, rows)}
