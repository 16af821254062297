"""Catalog reads and writes for remotes: context bindings and ``remote_bundles`` rows.

``remote_bundles.remote_url`` holds a binding's *location* (``<url>/contexts/<remote context>``),
so the same bucket holding two remote contexts gives two distinct keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assay.catalog.schema import bundle_files, bundles, contexts, remote_bundles
from assay.core.hashing import canonical_json
from assay.core.records import FileEntry
from assay.core.remote_records import RemoteBinding

_IN_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


# -- bindings -------------------------------------------------------------------------------
def _binding(row: Any) -> RemoteBinding | None:
    if row is None or row.remote_url is None:
        return None
    options = json.loads(row.remote_options) if row.remote_options else {}
    return RemoteBinding(row.name, row.remote_context, row.remote_url, options)


def binding_of(conn: Connection, ctx_id: int) -> RemoteBinding | None:
    row = conn.execute(
        select(
            contexts.c.name,
            contexts.c.remote_context,
            contexts.c.remote_url,
            contexts.c.remote_options,
        ).where(contexts.c.id == ctx_id)
    ).first()
    return _binding(row)


def all_bindings(conn: Connection) -> dict[str, RemoteBinding]:
    rows = conn.execute(
        select(
            contexts.c.name,
            contexts.c.remote_context,
            contexts.c.remote_url,
            contexts.c.remote_options,
        ).where(contexts.c.remote_url.is_not(None))
    )
    found = {}
    for row in rows:
        binding = _binding(row)
        if binding is not None:
            found[binding.context] = binding
    return found


def set_binding(conn: Connection, ctx_id: int, binding: RemoteBinding) -> None:
    conn.execute(
        update(contexts)
        .where(contexts.c.id == ctx_id)
        .values(
            remote_context=binding.remote_context,
            remote_url=binding.url,
            remote_options=canonical_json(binding.options),
        )
    )


# -- remote_bundles -------------------------------------------------------------------------
def mark(conn: Connection, location: str, uuids: Sequence[str], state: str, at: float) -> None:
    """Record that ``location`` holds ``uuids`` (replacing an older state for them)."""
    unique = sorted(set(uuids))
    for chunk in _chunks(unique):
        conn.execute(
            delete(remote_bundles).where(
                remote_bundles.c.remote_url == location, remote_bundles.c.bundle_uuid.in_(chunk)
            )
        )
    if unique:
        conn.execute(
            insert(remote_bundles),
            [{"bundle_uuid": u, "remote_url": location, "state": state, "at": at} for u in unique],
        )


def unmark(conn: Connection, location: str, uuids: Sequence[str]) -> None:
    for chunk in _chunks(sorted(set(uuids))):
        conn.execute(
            delete(remote_bundles).where(
                remote_bundles.c.remote_url == location, remote_bundles.c.bundle_uuid.in_(chunk)
            )
        )


def states_at(conn: Connection, location: str, uuids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(list(uuids)):
        rows = conn.execute(
            select(remote_bundles.c.bundle_uuid, remote_bundles.c.state).where(
                remote_bundles.c.remote_url == location, remote_bundles.c.bundle_uuid.in_(chunk)
            )
        )
        found.update({r.bundle_uuid: r.state for r in rows})
    return found


def locations_of(conn: Connection, uuid: str) -> dict[str, str]:
    """``{location: state}`` of every remote known to hold bundle ``uuid``."""
    rows = conn.execute(
        select(remote_bundles.c.remote_url, remote_bundles.c.state).where(
            remote_bundles.c.bundle_uuid == uuid
        )
    )
    return {r.remote_url: r.state for r in rows}


def uuids_at(conn: Connection, location: str) -> set[str]:
    rows = conn.execute(
        select(remote_bundles.c.bundle_uuid).where(remote_bundles.c.remote_url == location)
    )
    return {r[0] for r in rows}


def counts_at(conn: Connection, location: str) -> dict[str, int]:
    """``{state: number of bundles}`` for one location."""
    counts: dict[str, int] = {}
    for row in conn.execute(
        select(remote_bundles.c.state).where(remote_bundles.c.remote_url == location)
    ):
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def unpushed_committed(conn: Connection, ctx_id: int, location: str | None) -> list[str]:
    """Committed bundles of the context with no ``remote_bundles`` row for ``location``
    (every committed bundle when the context has no remote)."""
    statement = select(bundles.c.uuid).where(
        bundles.c.context_id == ctx_id,
        bundles.c.committed == True,  # noqa: E712 (SQL expression)
    )
    if location is not None:
        statement = statement.where(
            bundles.c.uuid.not_in(
                select(remote_bundles.c.bundle_uuid).where(remote_bundles.c.remote_url == location)
            )
        )
    return [r[0] for r in conn.execute(statement)]


def context_of_uuids(conn: Connection, uuids: Sequence[str]) -> dict[str, str]:
    """``{uuid: context name}`` for the uuids that exist in this catalog."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(uuids)):
        rows = conn.execute(
            select(bundles.c.uuid, contexts.c.name)
            .join(contexts, contexts.c.id == bundles.c.context_id)
            .where(bundles.c.uuid.in_(chunk))
        )
        found.update({r[0]: r[1] for r in rows})
    return found


def files_of_many(conn: Connection, uuids: Sequence[str]) -> dict[str, list[FileEntry]]:
    found: dict[str, list[FileEntry]] = {u: [] for u in uuids}
    for chunk in _chunks(list(uuids)):
        rows = conn.execute(
            select(
                bundle_files.c.bundle_uuid,
                bundle_files.c.path,
                bundle_files.c.blob_hash,
                bundle_files.c.size,
            )
            .where(bundle_files.c.bundle_uuid.in_(chunk))
            .order_by(bundle_files.c.bundle_uuid, bundle_files.c.path)
        )
        for r in rows:
            found[r.bundle_uuid].append(FileEntry(r.path, r.blob_hash, r.size))
    return found


def blobs_of_local_only(conn: Connection, blob_hashes: Sequence[str]) -> set[str]:
    """Which of ``blob_hashes`` some bundle that no remote holds (local only) references."""
    on_a_remote = select(remote_bundles.c.bundle_uuid)
    found: set[str] = set()
    for chunk in _chunks(list(blob_hashes)):
        rows = conn.execute(
            select(bundle_files.c.blob_hash)
            .where(
                bundle_files.c.blob_hash.in_(chunk),
                bundle_files.c.bundle_uuid.not_in(on_a_remote),
            )
            .distinct()
        )
        found.update(r[0] for r in rows)
    return found
