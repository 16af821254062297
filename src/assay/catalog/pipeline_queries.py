"""Catalog reads for pipelines: outputs by processing name, newest first.

Light rows only (no tags, files or links): a no-op re-run of a 1,000-task pipeline looks up
every task's output here, so each lookup must cost one indexed probe
(``ix_bundles_context_processing``, migration 0007).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from assay.catalog.schema import bundles

_IN_CHUNK = 500


@dataclass(frozen=True)
class TaskOutput:
    """A bundle made by a task, as much as the planner needs of it."""

    uuid: str
    name: str
    processing_name: str
    content_hash: str
    created: float
    code_version: str  # JSON text (parsed only when a reason is needed)


_COLUMNS = (
    bundles.c.uuid,
    bundles.c.name,
    bundles.c.processing_name,
    bundles.c.content_hash,
    bundles.c.created,
    bundles.c.code_version,
)


def _output(row: object) -> TaskOutput:
    return TaskOutput(*row)  # type: ignore[misc]


def newest_by_processing_name(
    conn: Connection, ctx_id: int, names: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], TaskOutput]:
    """The newest bundle for each ``(processing name, bundle name)`` pair that has one."""
    wanted = set(names)
    found: dict[tuple[str, str], TaskOutput] = {}
    processing = sorted({p for p, _ in wanted})
    for start in range(0, len(processing), _IN_CHUNK):
        chunk = processing[start : start + _IN_CHUNK]
        rows = conn.execute(
            select(*_COLUMNS)
            .where(and_(bundles.c.context_id == ctx_id, bundles.c.processing_name.in_(chunk)))
            .order_by(bundles.c.created.desc())
        )
        for row in rows:
            output = _output(row)
            key = (output.processing_name, output.name)
            if key in wanted and key not in found:
                found[key] = output
    return found


def newest_with_prefix(
    conn: Connection, ctx_id: int, prefix: str, name: str | None = None, newest: bool = True
) -> TaskOutput | None:
    """The newest bundle whose processing name starts with ``prefix`` (and named ``name``);
    with ``newest=False`` any one of them (an existence check that stops at the first row).

    On SQLite a range on the indexed column (binary collation; SQLite only uses an index for
    ``LIKE`` under a case-insensitive collation); elsewhere ``LIKE`` with the prefix escaped
    (a locale collation does not order a range by code points).
    """
    column = bundles.c.processing_name
    if conn.dialect.name == "sqlite":
        matches = and_(column >= prefix, column < prefix + "\uffff")
    else:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = column.like(escaped + "%", escape="\\")
    query = select(*_COLUMNS).where(and_(bundles.c.context_id == ctx_id, matches))
    if name is not None:
        query = query.where(bundles.c.name == name)
    if newest:
        query = query.order_by(bundles.c.created.desc())
    row = conn.execute(query.limit(1)).first()
    return _output(row) if row is not None else None


def outputs_named(
    conn: Connection, ctx_id: int, names: Sequence[str], limit: int
) -> list[TaskOutput] | None:
    """Every bundle with one of ``names`` (newest first per chunk of names), or None when
    there are more than ``limit`` (the caller then looks outputs up one wave at a time).

    One query per 500 names through ``ix_bundles_context_name_created``: how a re-run of a
    1,000-task pipeline finds every cached output in a couple of round trips."""
    found: list[TaskOutput] = []
    unique = sorted(set(names))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        rows = conn.execute(
            select(*_COLUMNS)
            .where(and_(bundles.c.context_id == ctx_id, bundles.c.name.in_(chunk)))
            .order_by(bundles.c.created.desc())
            .limit(limit - len(found) + 1)
        )
        found.extend(_output(row) for row in rows)
        if len(found) > limit:
            return None
    return found
