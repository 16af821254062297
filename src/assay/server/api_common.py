"""What the API routers share: the workspace, JSON shapes of records, lookups, pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from assay.bundles.workspace import Workspace
from assay.catalog import queries
from assay.core.errors import BundleNotFound, InvalidInput
from assay.core.names import parse_tag_option
from assay.core.records import BundleRecord, ContextInfo, FileEntry

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def workspace_of(request: Request) -> Workspace:
    """The app's workspace (``async``: FastAPI runs a sync dependency on a thread, a hop per
    request for a dictionary lookup)."""
    workspace: Workspace = request.app.state.workspace
    return workspace


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def bundle_json(record: BundleRecord) -> dict[str, Any]:
    return {
        "uuid": record.uuid,
        "context": record.context,
        "name": record.name,
        "processing_name": record.processing_name,
        "owner": record.owner,
        "created": iso(record.created),
        "committed": record.committed,
        "content_hash": record.content_hash,
        "presentation": record.presentation,
        "file_count": record.file_count,
        "total_size": record.total_size,
        "tags": dict(record.tags),
        "params": dict(record.params),
        "code_version": dict(record.code_version),
        "start_time": iso(record.start_time),
        "stop_time": iso(record.stop_time),
        "dependencies": [
            {"uuid": d.uuid, "kind": d.kind, "arg_name": d.arg_name} for d in record.dependencies
        ],
    }


def file_json(entry: FileEntry) -> dict[str, Any]:
    return {"path": entry.path, "size": entry.size, "blob_hash": entry.blob_hash}


def context_json(info: ContextInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "created": iso(info.created),
        "bundles": info.bundle_count,
        "committed": info.committed_count,
        "remote": info.remote,
    }


def page_json(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


class Json(JSONResponse):
    """A JSON answer built from plain JSON values: returned as a response, it skips FastAPI's
    ``jsonable_encoder`` walk (about 2 ms for a page of 50 bundles)."""


def bundle_by_uuid(workspace: Workspace, uuid: str) -> BundleRecord:
    return bundle_with_files(workspace, uuid, files=False)[0]


def bundle_with_files(
    workspace: Workspace, uuid: str, files: bool = True
) -> tuple[BundleRecord, list[FileEntry]]:
    """The bundle ``uuid`` (and its files) read in one transaction (one pool checkout, one
    BEGIN/COMMIT: each is a database round trip)."""
    if not _UUID.fullmatch(uuid):
        raise InvalidInput(f"invalid bundle uuid {uuid!r}", {"field": "uuid"})
    with workspace.read() as conn:
        found = queries.records_by_uuid(conn, [uuid])
        entries = queries.bundle_files_of(conn, uuid) if files and uuid in found else []
    if uuid not in found:
        raise BundleNotFound(f"no bundle with uuid {uuid}")
    return found[uuid], entries


def parse_tags(values: list[str] | None) -> dict[str, str]:
    """``tag=key=value`` query parameters (repeatable) as a dict."""
    result: dict[str, str] = {}
    for text in values or []:
        try:
            key, value = parse_tag_option(text)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, {"field": "tag"}) from None
        result[key] = value
    return result
