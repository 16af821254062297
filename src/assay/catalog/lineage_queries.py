"""Bounded lineage reads: which bundles a walk reaches, in breadth-first order, and the edges
around a set of bundles.

The walk is one recursive query whose output is capped by a row budget, so asking for the
neighbourhood of a bundle in a 100k-node graph reads about as many rows as it returns, not the
whole graph. PostgreSQL evaluates a recursive CTE lazily, only as far as the outer query
fetches, so an outer ``LIMIT`` stops it; SQLite stops a recursive CTE with a ``LIMIT`` on the
CTE itself. Both emit rows level by level (PostgreSQL iteration by iteration, SQLite from a
FIFO queue), so the first time a bundle appears is at its smallest depth.

The statements are fixed texts chosen per dialect and direction; values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text

from assay.catalog.schema import bundles, contexts, links, tags
from assay.catalog.sql_lists import one_of

_IN_CHUNK = 500

# Upstream follows bundle -> target (what a bundle was made from); downstream the reverse.
_WALK = {
    ("sqlite", False): text(
        "WITH RECURSIVE walk(uuid, depth) AS ("
        " SELECT CAST(:start AS VARCHAR(36)), 0"
        " UNION SELECT l.target_uuid, w.depth + 1 FROM walk w"
        " JOIN links l ON l.bundle_uuid = w.uuid WHERE w.depth < :max_depth"
        " LIMIT :budget) SELECT uuid, depth FROM walk"
    ),
    ("sqlite", True): text(
        "WITH RECURSIVE walk(uuid, depth) AS ("
        " SELECT CAST(:start AS VARCHAR(36)), 0"
        " UNION SELECT l.bundle_uuid, w.depth + 1 FROM walk w"
        " JOIN links l ON l.target_uuid = w.uuid WHERE w.depth < :max_depth"
        " LIMIT :budget) SELECT uuid, depth FROM walk"
    ),
    ("postgresql", False): text(
        "WITH RECURSIVE walk(uuid, depth) AS ("
        " SELECT CAST(:start AS VARCHAR(36)), 0"
        " UNION SELECT l.target_uuid, w.depth + 1 FROM walk w"
        " JOIN links l ON l.bundle_uuid = w.uuid WHERE w.depth < :max_depth"
        ") SELECT uuid, depth FROM walk LIMIT :budget"
    ),
    ("postgresql", True): text(
        "WITH RECURSIVE walk(uuid, depth) AS ("
        " SELECT CAST(:start AS VARCHAR(36)), 0"
        " UNION SELECT l.bundle_uuid, w.depth + 1 FROM walk w"
        " JOIN links l ON l.target_uuid = w.uuid WHERE w.depth < :max_depth"
        ") SELECT uuid, depth FROM walk LIMIT :budget"
    ),
}


def reach(
    conn: Connection, start: str, *, downstream: bool, max_depth: int, budget: int
) -> tuple[list[tuple[str, int]], bool]:
    """``[(uuid, smallest depth)]`` in breadth-first order from ``start`` (depth 0), and
    whether the row budget ran out (so more may lie beyond)."""
    statement = _WALK[(conn.dialect.name, downstream)]
    rows = conn.execute(statement, {"start": start, "max_depth": max_depth, "budget": budget}).all()
    seen: dict[str, int] = {}
    for uuid, depth in rows:
        seen.setdefault(uuid, int(depth))
    return list(seen.items()), len(rows) >= budget


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def edges_touching(conn: Connection, uuids: Sequence[str]) -> list[Any]:
    """Every link row with either end in ``uuids`` (each row once).

    Two reads, one per end, each on its own index (an ``OR`` of the two makes PostgreSQL
    scan the whole table)."""
    found: dict[tuple[str, str, str, str], Any] = {}
    for chunk in _chunks(list(uuids)):
        for column in (links.c.bundle_uuid, links.c.target_uuid):
            for row in conn.execute(select(links).where(one_of(conn, column, chunk))):
                found[(row.bundle_uuid, row.target_uuid, row.kind, row.arg_name)] = row
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True)
class NodeRow:
    """What a lineage graph shows of a bundle (no data document, params or files)."""

    uuid: str
    name: str
    context: str
    created: float
    committed: bool
    presentation: str
    tags: dict[str, str]


def node_rows(conn: Connection, uuids: Sequence[str]) -> dict[str, NodeRow]:
    """The graph fields of the bundles among ``uuids`` that exist (two reads per chunk)."""
    result: dict[str, NodeRow] = {}
    for chunk in _chunks(list(uuids)):
        tag_map: dict[str, dict[str, str]] = {}
        for tag in conn.execute(
            select(tags.c.bundle_uuid, tags.c.key, tags.c.value).where(
                one_of(conn, tags.c.bundle_uuid, chunk)
            )
        ):
            tag_map.setdefault(tag.bundle_uuid, {})[tag.key] = tag.value
        for row in conn.execute(
            select(
                bundles.c.uuid,
                bundles.c.name,
                contexts.c.name.label("context_name"),
                bundles.c.created,
                bundles.c.committed,
                bundles.c.presentation,
            )
            .join(contexts, contexts.c.id == bundles.c.context_id)
            .where(one_of(conn, bundles.c.uuid, chunk))
        ):
            result[row.uuid] = NodeRow(
                row.uuid,
                row.name,
                row.context_name,
                row.created,
                bool(row.committed),
                row.presentation,
                tag_map.get(row.uuid, {}),
            )
    return result
