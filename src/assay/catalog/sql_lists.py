"""``column IN (values)`` that stays cheap for long lists on PostgreSQL.

An expanding ``IN`` renders one bind parameter per value: for a page of 50 bundles or a
lineage graph of 500 nodes, SQLAlchemy renders and psycopg parses a new statement text for
each list length (tens of milliseconds of CPU for 500 values). On PostgreSQL,
``column = ANY(:values)`` is one array parameter: one statement text, compiled once, and
prepared by the server once per connection. SQLite keeps the expanding ``IN`` (callers keep
their lists under its parameter limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, any_, bindparam


def one_of(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """A condition: ``column`` equals one of ``values``."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
