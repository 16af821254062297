"""``/api/v1`` routes for contexts and bundles: list/search, detail, versions, files, download,
upload, commit, tags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from assay.bundles import operations, remotes, upload
from assay.bundles.file_access import check_bundle_path, verified_file
from assay.bundles.pages import page_bundles
from assay.bundles.workspace import Workspace
from assay.core.errors import ContextExists, InvalidInput, PayloadTooLarge
from assay.core.names import check_bundle_name, check_context_name
from assay.server.api_auth import Principal, scope
from assay.server.api_common import (
    Json,
    bundle_by_uuid,
    bundle_json,
    bundle_with_files,
    context_json,
    file_json,
    page_json,
    parse_tags,
    workspace_of,
)
from assay.server.compute_access import check_download

router = APIRouter(tags=["bundles"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]
Space = Annotated[Workspace, Depends(workspace_of)]

_UPLOAD_TYPES = {
    "application/octet-stream": "file",
    "application/x-tar": "tar",
    "application/json": "json",
}


class BlobResponse(FileResponse):
    """A file response in 1 MiB reads (Starlette's 64 KiB costs a thread hop per 64 KiB)."""

    chunk_size = 1 << 20


class ContextCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class TagsBody(BaseModel):
    tags: dict[str, str]


# -- contexts -------------------------------------------------------------------------------
@router.get("/contexts", summary="List contexts")
def list_contexts(_: Reader, workspace: Space) -> dict[str, Any]:
    return page_json([context_json(c) for c in operations.list_contexts(workspace)], None)


@router.post("/contexts", status_code=201, summary="Create a context")
def create_context(body: ContextCreate, _: Writer, workspace: Space) -> dict[str, Any]:
    check_context_name(body.name)
    if not operations.create_context(workspace, body.name):
        raise ContextExists(f"context {body.name!r} already exists")
    return {"name": body.name, "created": True}


# -- listing --------------------------------------------------------------------------------
@router.get("/contexts/{context}/bundles", summary="List or search the bundles of a context")
def list_bundles(
    context: str,
    _: Reader,
    workspace: Space,
    name: Annotated[str | None, Query(description="Exact name or a glob (*, ?).")] = None,
    tag: Annotated[
        list[str] | None, Query(description="key=value; repeat: all must match.")
    ] = None,
    committed: bool | None = None,
    before: Annotated[str | None, Query(description="Created before (ISO date).")] = None,
    after: Annotated[str | None, Query(description="Created at or after (ISO date).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Json:
    page = page_bundles(
        workspace,
        context,
        name=name,
        tags=parse_tags(tag),
        committed=committed,
        before=before,
        after=after,
        limit=limit,
        cursor=cursor,
    )
    return Json(page_json([bundle_json(r) for r in page.items], page.next_cursor))


@router.get("/bundles/{uuid}", summary="One bundle (with its files)")
def bundle_detail(uuid: str, _: Reader, workspace: Space) -> Json:
    record, files = bundle_with_files(workspace, uuid)
    return Json(
        {**bundle_json(record), "files": [file_json(f) for f in files], "data": record.data}
    )


@router.get("/bundles/{uuid}/versions", summary="Every version of this bundle's name")
def bundle_versions(
    uuid: str,
    _: Reader,
    workspace: Space,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    record = bundle_by_uuid(workspace, uuid)
    page = page_bundles(workspace, record.context, name=record.name, limit=limit, cursor=cursor)
    return page_json([bundle_json(r) for r in page.items], page.next_cursor)


@router.get("/bundles/{uuid}/files", summary="The files of a bundle")
def bundle_files(uuid: str, _: Reader, workspace: Space) -> dict[str, Any]:
    _record, files = bundle_with_files(workspace, uuid)
    return page_json([file_json(f) for f in files], None)


@router.get(
    "/bundles/{uuid}/files/{path:path}",
    summary="Download one file (HTTP Range supported; bytes verified against their hash)",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Part"}},
)
def download_file(uuid: str, path: str, principal: Reader, workspace: Space) -> BlobResponse:
    check_bundle_path(path)  # before any lookup: a probe learns nothing about ids
    record = bundle_by_uuid(workspace, uuid)
    check_download(workspace, record, principal.owner)  # compute-to-data: 403 before any byte
    entry, blob = verified_file(workspace, record, path)
    return BlobResponse(
        blob,
        media_type="application/octet-stream",
        filename=Path(entry.path).name,
        headers={
            "ETag": f'"{entry.blob_hash}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


# -- writing --------------------------------------------------------------------------------
@router.post(
    "/contexts/{context}/bundles",
    status_code=201,
    summary="Upload a new bundle: one file (octet-stream + filename), a tar of files, or JSON",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {}},
            },
        }
    },
)
async def upload_bundle(
    context: str,
    request: Request,
    principal: Writer,
    workspace: Space,
    name: Annotated[str, Query(min_length=1, max_length=128)],
    filename: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    kind = _UPLOAD_TYPES.get(content_type)
    if kind is None:
        raise InvalidInput(
            f"unsupported Content-Type {content_type or '(none)'!r}: use "
            + ", ".join(_UPLOAD_TYPES),
            {"field": "content-type"},
        )
    if kind == "file" and not filename:
        raise InvalidInput("an octet-stream upload needs ?filename=", {"field": "filename"})
    tags = parse_tags(tag)
    check_bundle_name(name)
    with upload.upload_folder(workspace) as folder:
        spooled = folder / "body"
        complete = await _spool(request, spooled, request.app.state.max_upload_bytes)
        if not complete:  # the client went away: nothing is made, nobody to answer
            return JSONResponse({}, status_code=400)
        if kind == "json":
            try:
                data = json.loads(spooled.read_bytes())
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"the body is not valid JSON: {exc}", {"field": "body"}
                ) from None
            record = await run_in_threadpool(
                upload.bundle_from_json,
                workspace,
                context,
                name,
                data,
                tags=tags,
                owner=principal.owner,
            )
        elif kind == "tar":
            record = await run_in_threadpool(
                upload.bundle_from_tar,
                workspace,
                context,
                name,
                spooled,
                tags=tags,
                owner=principal.owner,
            )
        else:
            record = await run_in_threadpool(
                upload.bundle_from_file,
                workspace,
                context,
                name,
                spooled,
                str(filename),
                tags=tags,
                owner=principal.owner,
            )
    return JSONResponse(bundle_json(record), status_code=201)


async def _spool(request: Request, target: Path, max_bytes: int) -> bool:
    """Write the request body to ``target``; False when the client disconnected mid-way."""
    declared = request.headers.get("content-length")
    received = 0
    try:
        with open(target, "wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise PayloadTooLarge(
                        f"the upload is larger than the server's limit of {max_bytes} bytes",
                        {"field": "body", "limit": max_bytes},
                    )
                out.write(chunk)
    except ClientDisconnect:
        return False
    return declared is None or not declared.isdigit() or int(declared) == received


@router.post(
    "/bundles/{uuid}/commit",
    summary="Commit a bundle (keep it; eligible to push). A server run with --push-uploads "
    "then pushes it to its context's remote ('pushed_to').",
)
def commit_bundle(uuid: str, request: Request, _: Writer, workspace: Space) -> dict[str, Any]:
    record = bundle_by_uuid(workspace, uuid)
    committed = operations.commit(workspace, record.context, uuid=record.uuid)
    answer = bundle_json(committed)
    if request.app.state.push_uploads and remotes.binding(workspace, record.context):
        # Committed first: a push that fails (503 remote unavailable) leaves a committed
        # bundle, and committing again pushes again (a push resumes, never sends twice).
        answer["pushed_to"] = remotes.push(workspace, record.context, uuid=record.uuid).remote
    return answer


@router.post("/bundles/{uuid}/tags", summary="Add or update tags of a bundle")
def tag_bundle(uuid: str, body: TagsBody, _: Writer, workspace: Space) -> dict[str, Any]:
    bundle_by_uuid(workspace, uuid)
    return bundle_json(operations.add_tags(workspace, uuid, body.tags))
