"""Server-Sent Events of a job: its state changes and log lines as they happen.

``GET /api/v1/jobs/{id}/stream`` answers ``text/event-stream``. Each job event is one SSE event
whose ``id:`` is the event's ``seq``, so a client that reconnects with ``Last-Event-ID`` (an
EventSource does so by itself) resumes right after the last event it got: nothing lost,
nothing twice. The stream ends with an ``end`` event once the job is terminal and every event
was sent.

Memory per client is bounded: events are read from the catalog in batches of at most
``BATCH`` and each batch is written before the next is read, so a slow client slows only its
own reads (the server's write waits on the socket) and never makes the server queue events
for it.

A browser's EventSource cannot send headers, so this route also accepts ``?stream_token=``:
a short-lived read-only token made by ``POST /api/v1/stream-tokens`` (5 minutes), never a
long-lived one in a URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from assay.auth import tokens
from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidInput
from assay.jobs import store
from assay.server.api_auth import Principal, bearer, scope
from assay.server.api_common import iso, workspace_of

router = APIRouter(tags=["jobs"])
BATCH = 200
POLL_S = 0.2
KEEPALIVE_S = 15.0
STREAM_TOKEN_S = 300.0


@router.post("/stream-tokens", summary="A 5-minute read-only token for an EventSource URL")
def stream_token(
    principal: Annotated[Principal, Depends(scope("read"))],
    workspace: Annotated[Workspace, Depends(workspace_of)],
) -> dict[str, Any]:
    record, token = tokens.create_token(
        principal.owner,
        ["read"],
        name="stream",
        expires_in_s=STREAM_TOKEN_S,
        workspace=workspace,
    )
    return {"stream_token": token, "expires": iso(record.expires)}


async def _stream_principal(
    request: Request, stream_token: Annotated[str | None, Query(max_length=128)] = None
) -> Principal:
    state = request.app.state
    if not state.auth:
        return Principal(state.local_user, tuple(tokens.SCOPES), None)
    presented = bearer(request) or stream_token
    record = await run_in_threadpool(
        tokens.authenticate, presented, "read", workspace=state.workspace
    )
    return Principal(record.owner, record.scopes, record.token_id)


def _frame(event: Any) -> str:
    data = json.dumps(
        {
            "seq": event.seq,
            "at": iso(event.at),
            "type": event.type,
            "event": event.event,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "payload": event.payload,
        },
        separators=(",", ":"),
    )
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


@router.get(
    "/jobs/{job_id}/stream",
    summary="The job's events as Server-Sent Events (Last-Event-ID resumes)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_stream(
    job_id: str,
    request: Request,
    _: Annotated[Principal, Depends(_stream_principal)],
    workspace: Annotated[Workspace, Depends(workspace_of)],
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    return await event_stream(request, workspace, job_id, last_event_id)


async def event_stream(
    request: Request, workspace: Workspace, job_id: str, last_event_id: str | None
) -> StreamingResponse:
    """The SSE response for ``job_id`` after ``last_event_id`` (shared with the web UI)."""
    if last_event_id is not None and not last_event_id.strip().isdigit():
        raise InvalidInput("Last-Event-ID must be an event seq", {"field": "last-event-id"})
    after = int(last_event_id) if last_event_id else 0
    job = await run_in_threadpool(store.get_job, job_id, workspace=workspace)

    async def frames() -> AsyncIterator[str]:
        seen = after
        idle = 0.0
        yield "retry: 1000\n\n"
        while True:
            # The state, then the events (``read_since``): a job seen terminal here has
            # written all of its events, so this read gets every last one.
            record, batch = await run_in_threadpool(
                store.read_since, job.job_id, seen, BATCH, workspace=workspace
            )
            for event in batch:
                yield _frame(event)
                seen = event.seq
            if len(batch) == BATCH:
                continue  # more waiting: no pause
            if record.terminal:
                yield f"event: end\ndata: {json.dumps({'state': record.state})}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)
            idle = 0.0 if batch else idle + POLL_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
