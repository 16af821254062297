"""Webhook deliveries: URL building, body parsing, token checks, then ``apply_event``.

A runner POSTs ``{"event": "finish", "data": {...}, "id": "optional event id"}`` (SD2E's
``"name"`` is accepted for ``"event"``) to ``build_webhook(job)``:
``<server URL>/pipelinejobs/<uuid>/events?token=<job token>``. The server URL is
``$ASSAY_SERVER_URL`` (default ``http://127.0.0.1:8765``). The token is checked before
anything else is looked at; admin events need the admin token instead.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from assay.bundles.workspace import Workspace
from assay.core.errors import InvalidEvent, PayloadTooLarge, PermissionDenied
from assay.pjobs.events import EventOutcome, apply_event, is_admin_event
from assay.pjobs.identity import is_uuid
from assay.pjobs.tokens import check_token, job_token

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_SERVER_URL = "http://127.0.0.1:8765"


def server_url() -> str:
    return (os.environ.get("ASSAY_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/")


def build_webhook(workspace: Workspace, job_uuid: str, base_url: str | None = None) -> str:
    """The URL an external runner POSTs this job's events to (token included)."""
    base = (base_url or server_url()).rstrip("/")
    token = job_token(job_uuid, workspace.settings)
    return f"{base}/pipelinejobs/{quote(job_uuid)}/events?token={token}"


def parse_body(body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object; ``PayloadTooLarge`` / ``InvalidEvent`` otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the event body is larger than {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"the event body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidEvent('the event body must be a JSON object like {"event": "finish"}')
    return document


def handle(
    workspace: Workspace,
    job_uuid: str,
    document: dict[str, Any],
    token: str | None,
    *,
    run_index: bool = True,
) -> EventOutcome:
    """Verify ``token`` for ``job_uuid`` and apply the event ``document`` describes."""
    event = document.get("event", document.get("name"))
    job_uuid = job_uuid.lower()
    body_token = document.get("token")  # SD2E put it in the body; the URL's wins
    if token is None and isinstance(body_token, str):
        token = body_token
    elif body_token is not None and body_token != token:
        raise PermissionDenied("the token in the body is not the one in the URL")
    check_token(job_uuid, token, workspace.settings, admin=is_admin_event(event))
    if not is_uuid(job_uuid):
        raise InvalidEvent(f"{job_uuid!r} is not a job uuid")
    unknown = sorted(set(document) - {"event", "name", "data", "id", "uuid", "token"})
    if unknown:
        raise InvalidEvent(f"unknown key(s) in the event body: {', '.join(unknown)}")
    if document.get("uuid") not in (None, job_uuid):
        raise InvalidEvent("the body's uuid is not the job's in the URL")
    if not isinstance(event, str):
        raise InvalidEvent('the event body needs "event": the name of an event')
    return apply_event(
        workspace,
        job_uuid,
        event,
        document.get("data"),
        event_id=document.get("id"),
        admin=is_admin_event(event),
        run_index=run_index,
    )
