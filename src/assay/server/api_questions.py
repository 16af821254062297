"""``/api/v1/questions``: ask a service that runs behind this server, follow the question,
fetch its answer, cancel it. The other end of the ``http`` backend of ``Child.ask``
(``assay.services.http_backend``).

The question runs through the same code as the local backend (``Child(...).ask`` in this
server process, ``asynchronous=True``): its events, logs and monitor messages are the job's
events (``/api/v1/jobs/{question_uuid}/events`` and its SSE ``/stream``), and its outcome is
the catalog's question record. ``allow_local_files`` is always off over HTTP: a client must
not make the server read the server's own files.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from assay.server.api_auth import Principal, scope
from assay.server.api_common import iso
from assay.services import events, registry
from assay.services.child import Child
from assay.services.twine import Twine

router = APIRouter(tags=["questions"])
Reader = Annotated[Principal, Depends(scope("read"))]
Writer = Annotated[Principal, Depends(scope("write"))]


class AskBody(BaseModel):
    service_id: str = Field(min_length=1, max_length=512)
    input_values: Any = None
    input_manifest: dict[str, Any] | None = None
    children: list[dict[str, Any]] | None = Field(default=None, max_length=256)
    subscribe_to_logs: bool = True
    question_uuid: str | None = Field(default=None, max_length=64)
    parent_question_uuid: str | None = Field(default=None, max_length=64)
    originator_question_uuid: str | None = Field(default=None, max_length=64)
    timeout: float | None = Field(default=86_400.0, gt=0, le=30 * 86_400)
    heartbeat_interval: float = Field(default=1.0, gt=0, le=3600)
    maximum_heartbeat_interval: float = Field(default=10.0, gt=0, le=86_400)
    max_retries: int = Field(default=0, ge=0, le=10)
    #: A compute environment of this server (``executor: dask``: answered on its cluster).
    environment: str | None = Field(default=None, min_length=1, max_length=128)


def question_json(record: events.QuestionRecord) -> dict[str, Any]:
    return {
        "question_uuid": record.question_uuid,
        "service_id": record.service_id,
        "status": record.status,
        "state": record.state,
        "final": record.status in events.FINAL_STATUSES,
        "created": iso(record.created),
        "finished": iso(record.finished),
        "parent_question_uuid": record.parent_question_uuid,
        "originator_question_uuid": record.originator_question_uuid,
        "error": events.error_of(record)
        if record.status not in ("succeeded",) and (record.status in events.FINAL_STATUSES)
        else None,
    }


@router.post("/questions", status_code=202, summary="Ask a service a question")
def ask(body: AskBody, _: Writer) -> dict[str, Any]:
    backend = {"name": "local"}
    if body.environment is not None:
        backend["environment"] = body.environment
    _answer, question_uuid = Child(body.service_id, backend=backend).ask(
        input_values=body.input_values,
        input_manifest=body.input_manifest,
        children=body.children,
        subscribe_to_logs=body.subscribe_to_logs,
        allow_local_files=False,
        question_uuid=body.question_uuid,
        parent_question_uuid=body.parent_question_uuid,
        originator_question_uuid=body.originator_question_uuid,
        asynchronous=True,
        timeout=body.timeout,
        heartbeat_interval=body.heartbeat_interval,
        maximum_heartbeat_interval=body.maximum_heartbeat_interval,
        max_retries=body.max_retries,
    )
    return {
        "question_uuid": question_uuid,
        "events_url": f"/api/v1/jobs/{question_uuid}/stream",
        "answer_url": f"/api/v1/questions/{question_uuid}/answer",
    }


@router.get("/questions/{question_uuid}", summary="A question's status")
def status(question_uuid: str, _: Reader) -> dict[str, Any]:
    uuid = events.resolve_question(question_uuid)
    return question_json(events.get_question(uuid))


@router.get("/questions/{question_uuid}/answer", summary="The answer, or the question's error")
def answer(question_uuid: str, _: Reader) -> dict[str, Any]:
    """``{status, final, answer: {output_values, output_manifest} | null, error: payload | null}``
    (``error`` is the exception payload the local backend rebuilds its exception from)."""
    record = events.get_question(events.resolve_question(question_uuid))
    document = question_json(record)
    document["answer"] = (
        {"output_values": record.output_values, "output_manifest": record.output_manifest}
        if record.status == "succeeded"
        else None
    )
    return document


@router.post("/questions/{question_uuid}/cancel", summary="Cancel a running question")
def cancel(question_uuid: str, _: Writer) -> dict[str, Any]:
    uuid = events.resolve_question(question_uuid)
    return {"question_uuid": uuid, "cancelled": Child.cancel(uuid)}


@router.get("/services/twine", summary="The twine of a service this server can run")
def twine(_: Reader, id: Annotated[str, Query(min_length=1, max_length=512)]) -> dict[str, Any]:
    service = registry.resolve(id)
    return {"service_id": service.sruid, "twine": Twine(service.twine_path).raw}
