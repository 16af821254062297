"""Keyset (cursor) pagination of bundle lists: ``{items, next_cursor}`` pages.

A cursor is opaque to clients: URL-safe base64 of a small JSON document naming what it pages
(``"b"`` for bundles) and the sort key of the last row served. The next page starts strictly
after that key, so rows added meanwhile never shift a page (no OFFSET drift) and a page costs
the same at the millionth row as at the first. A cursor that does not decode, or belongs to
another list, is refused as bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from assay.bundles.operations import glob_to_like, require_context
from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.errors import InvalidInput
from assay.core.names import bundle_tags
from assay.core.records import BundleRecord
from assay.core.times import parse_when

T = TypeVar("T")
MAX_PAGE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The key inside ``cursor``; ``InvalidInput`` when it is not a cursor of this list."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    valid = (
        isinstance(value, list)
        and len(value) == len(types) + 1
        and value[0] == kind
        and all(
            isinstance(part, wanted) and not isinstance(part, bool)
            for part, wanted in zip(value[1:], types, strict=True)
        )
    )
    if not valid:
        raise InvalidInput(
            "invalid cursor: pass back the next_cursor of the previous page unchanged",
            {"field": "cursor"},
        )
    return tuple(value[1:])


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", {"field": "limit"})
    return limit


def page_bundles(
    workspace: Workspace,
    context: str,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    committed: bool | None = None,
    before: Any = None,
    after: Any = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[BundleRecord]:
    """One page of the bundles in ``context`` matching the CLI's search filters, newest first.

    ``name`` may be a glob (``*``, ``?``); ``tags`` must all match.
    """
    check_limit(limit)
    keyset: tuple[float, str] | None = None
    if cursor:
        created, last_uuid = decode_cursor("b", cursor, (float, str))
        keyset = (float(created), last_uuid)
    glob = name is not None and any(c in name for c in "*?")
    with workspace.read() as conn:
        ctx_id = require_context(conn, context)
        records = queries.find_bundles(
            conn,
            queries.BundleQuery(
                context_id=ctx_id,
                name=name if name is not None and not glob else None,
                name_like=glob_to_like(name) if name is not None and glob else None,
                tags=tuple(sorted(bundle_tags(tags).items())),
                committed=committed,
                before=parse_when(before),
                after=parse_when(after),
                limit=limit + 1,  # one more tells whether another page exists
                keyset=keyset,
            ),
        )
    items = records[:limit]
    next_cursor = None
    if len(records) > limit:
        last = items[-1]
        next_cursor = encode_cursor("b", (last.created, last.uuid))
    return Page(items, next_cursor)
