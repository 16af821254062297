"""Catalog reads and writes of API tokens (table ``api_tokens``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from assay.catalog.schema import api_tokens


def insert_token(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(api_tokens).values(**row))


def token_row(conn: Connection, token_id: str) -> Any | None:
    return conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()


def token_rows(conn: Connection, owner: str | None, include_revoked: bool) -> list[Any]:
    statement = select(api_tokens).order_by(api_tokens.c.created, api_tokens.c.token_id)
    if owner is not None:
        statement = statement.where(api_tokens.c.owner == owner)
    if not include_revoked:
        statement = statement.where(api_tokens.c.revoked.is_(None))
    return list(conn.execute(statement).all())


def set_revoked(conn: Connection, token_id: str, when: float) -> int:
    """Mark a token revoked (first revocation time kept); the number of rows changed."""
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked.is_(None))
        .values(revoked=when)
    )
    return int(result.rowcount or 0)


def touch(conn: Connection, token_id: str, when: float) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id).values(last_used=when))
