"""Server-Sent Events of a job through a real server: live arrival, Last-Event-ID resume with
no loss and no repeat, the end event, stream tokens, auth."""

from __future__ import annotations

import json
import uuid as uuid_module
from collections.abc import Iterator
from typing import Any

import httpx
from server_helpers import ApiServer

from assay.jobs import store


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse SSE lines into events ``{id, event, data}`` as they arrive."""
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                yield current
            current = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            current[key] = value.removeprefix(" ")


def _job(api: ApiServer) -> str:
    job_id = str(uuid_module.uuid4())
    store.create_job("stream-test", job_id, spec={}, workspace=api.workspace)
    store.fire(job_id, "run", workspace=api.workspace)
    return job_id


def _log(api: ApiServer, job_id: str, message: str) -> None:
    store.append_events(job_id, [("log", {"message": message})], workspace=api.workspace)


def test_live_events_resume_and_end(api: ApiServer) -> None:
    job_id = _job(api)  # events 1 (create) and 2 (run) exist already
    url = f"{api.url}/api/v1/jobs/{job_id}/stream"
    headers = {"Authorization": f"Bearer {api.reader}"}
    received: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
        received += [next(events), next(events)]
        _log(api, job_id, "first line")  # written after the stream began: arrives live
        received.append(next(events))
    assert [e["id"] for e in received] == ["1", "2", "3"]
    assert json.loads(received[2]["data"])["payload"]["message"] == "first line"
    _log(api, job_id, "while away")
    store.fire(job_id, "finish", result={"ok": True}, workspace=api.workspace)
    with httpx.stream(
        "GET", url, headers={**headers, "Last-Event-ID": "3"}, timeout=60
    ) as response:
        rest = list(_events(response.iter_lines()))  # ends by itself: the job is terminal
    assert [e.get("id") for e in rest] == ["4", "5", None]
    assert json.loads(rest[0]["data"])["payload"]["message"] == "while away"
    assert rest[1]["event"] == "transition"
    assert rest[-1]["event"] == "end" and json.loads(rest[-1]["data"]) == {"state": "FINISHED"}


def test_stream_tokens_for_event_source(api: ApiServer) -> None:
    job_id = _job(api)
    store.fire(job_id, "finish", workspace=api.workspace)
    with api.client(api.reader) as client:
        made = client.post("/api/v1/stream-tokens").json()
        unauthenticated = client.get(f"/api/v1/jobs/{job_id}/stream", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401
    response = httpx.get(
        f"{api.url}/api/v1/jobs/{job_id}/stream",
        params={"stream_token": made["stream_token"]},
        timeout=60,
    )
    assert response.status_code == 200
    ids = [e.get("id") for e in _events(iter(response.text.splitlines()))]
    assert ids == ["1", "2", "3", None]


def test_bad_stream_requests(api: ApiServer) -> None:
    job_id = _job(api)
    with api.client(api.reader) as client:
        response = client.get(f"/api/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "x"})
        assert response.status_code == 422 and response.json()["field"] == "last-event-id"
        missing = client.get(f"/api/v1/jobs/{uuid_module.uuid4()}/stream")
        assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
