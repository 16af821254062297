"""Catalog reads and writes for compute-to-data access policies (table from migration 0005).

SQLAlchemy Core with bound parameters only. List columns are JSON text; the caller
(``assay.jobs.policies``) encodes and decodes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assay.catalog.schema import contexts, dataset_policies


def policy(conn: Connection, context_id: int, name: str) -> Any:
    """The policy row of ``name`` in the context (with a ``context`` column), or None."""
    statement = (
        select(dataset_policies, contexts.c.name.label("context"))
        .join(contexts, contexts.c.id == dataset_policies.c.context_id)
        .where(dataset_policies.c.context_id == context_id, dataset_policies.c.name == name)
    )
    return conn.execute(statement).first()


def upsert_policy(conn: Connection, context_id: int, name: str, row: Mapping[str, Any]) -> None:
    """Insert the policy or replace every column of the existing one but ``created``."""
    existing = conn.execute(
        select(dataset_policies.c.created).where(
            dataset_policies.c.context_id == context_id, dataset_policies.c.name == name
        )
    ).first()
    if existing is None:
        conn.execute(insert(dataset_policies).values(context_id=context_id, name=name, **row))
        return
    changes = {key: value for key, value in row.items() if key != "created"}
    conn.execute(
        update(dataset_policies)
        .where(dataset_policies.c.context_id == context_id, dataset_policies.c.name == name)
        .values(**changes)
    )


def delete_policy(conn: Connection, context_id: int, name: str) -> bool:
    result = conn.execute(
        delete(dataset_policies).where(
            dataset_policies.c.context_id == context_id, dataset_policies.c.name == name
        )
    )
    return bool(result.rowcount)


def list_policies(conn: Connection, context_id: int | None = None) -> list[Any]:
    statement = (
        select(dataset_policies, contexts.c.name.label("context"))
        .join(contexts, contexts.c.id == dataset_policies.c.context_id)
        .order_by(contexts.c.name, dataset_policies.c.name)
    )
    if context_id is not None:
        statement = statement.where(dataset_policies.c.context_id == context_id)
    return list(conn.execute(statement))
