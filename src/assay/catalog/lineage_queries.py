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
from typing import Any

from sqlalchemy import Connection, or_, select, text

from assay.catalog.schema import links

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
    """Every link row with either end in ``uuids`` (each row once)."""
    found: dict[tuple[str, str, str, str], Any] = {}
    for chunk in _chunks(list(uuids)):
        for row in conn.execute(
            select(links).where(or_(links.c.bundle_uuid.in_(chunk), links.c.target_uuid.in_(chunk)))
        ):
            found[(row.bundle_uuid, row.target_uuid, row.kind, row.arg_name)] = row
    return [found[key] for key in sorted(found)]
