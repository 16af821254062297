"""The webhook on a real ``assay serve`` (uvicorn on loopback): tokens, problems, replays,
restarts, indexing (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pjob_helpers import stored, write
from pjob_server import running_server

from assay.bundles.workspace import Workspace
from assay.jobs import store
from assay.pipelinejobs import ManagedPipelineJob, admin_token
from assay.pjobs.pipelines import Pipeline
from assay.pjobs.webhooks import MAX_BODY_BYTES


@pytest.fixture
def server(workspace: Workspace, pipeline: Pipeline) -> Iterator[str]:
    with running_server() as url:
        yield url


def _job(workspace: Workspace, server: str, measurement: str = "m1") -> tuple[str, str]:
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id=measurement).setup()
    return job._uuid(), job.build_webhook(server)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:assay:problem:{code}" and body["detail"] and body["title"]
    return body


def test_events_through_the_webhook(workspace: Workspace, server: str) -> None:
    uuid, hook = _job(workspace, server)
    assert hook.startswith(f"{server}/pipelinejobs/{uuid}/events?token=")
    for event, state in (("run", "RUNNING"), ("update", "RUNNING"), ("finish", "FINISHED")):
        response = httpx.post(hook, json={"event": event, "data": {"step": event}})
        assert response.status_code == 200, response.text
        assert response.json() == {"uuid": uuid, "state": state, "event": event, "replayed": False}
    token = hook.split("token=")[1]
    shown = httpx.get(f"{server}/pipelinejobs/{uuid}", params={"token": token})
    assert shown.json()["state"] == "FINISHED"
    bearer = httpx.get(
        f"{server}/pipelinejobs/{uuid}", headers={"Authorization": f"Bearer {token}"}
    )
    assert bearer.status_code == 200


def test_bad_tokens_change_nothing(workspace: Workspace, server: str) -> None:
    uuid, hook = _job(workspace, server)
    _other_uuid, other_hook = _job(workspace, server, "m2")
    base = hook.split("?")[0]
    before = stored(workspace)
    _problem(httpx.post(base, json={"event": "run"}), 401, "authentication_required")
    _problem(
        httpx.post(base, params={"token": "0" * 64}, json={"event": "run"}),
        403,
        "permission_denied",
    )
    forged = other_hook.split("token=")[1]  # a valid token, for another job
    _problem(
        httpx.post(base, params={"token": forged}, json={"event": "run"}), 403, "permission_denied"
    )
    _problem(
        httpx.get(f"{server}/pipelinejobs/{uuid}", params={"token": forged}),
        403,
        "permission_denied",
    )
    # a job token cannot send admin events
    _problem(httpx.post(hook, json={"event": "reset"}), 403, "permission_denied")
    _problem(httpx.post(hook, json={"event": "delete"}), 403, "permission_denied")
    assert stored(workspace) == before
    assert httpx.post(other_hook, json={"event": "run"}).json()["state"] == "RUNNING"


def test_bad_bodies_change_nothing(workspace: Workspace, server: str) -> None:
    uuid, hook = _job(workspace, server)
    before = stored(workspace)
    _problem(httpx.post(hook, content=b"{not json"), 400, "invalid_event")
    _problem(httpx.post(hook, json=["run"]), 400, "invalid_event")
    _problem(httpx.post(hook, json={"event": "explode"}), 400, "invalid_event")
    _problem(httpx.post(hook, json={"data": {}}), 400, "invalid_event")
    _problem(httpx.post(hook, json={"event": "run", "data": [1]}), 400, "invalid_event")
    big = b'{"event": "update", "data": {"x": "' + b"a" * MAX_BODY_BYTES + b'"}}'
    _problem(httpx.post(hook, content=big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield b"a" * 65536

    _problem(httpx.post(hook, content=chunks()), 413, "payload_too_large")
    _problem(
        httpx.post(
            f"{server}/pipelinejobs/{uuid}x/events", params={"token": "a"}, json={"event": "run"}
        ),
        403,
        "permission_denied",
    )
    assert stored(workspace) == before


def test_out_of_order_event_is_a_409(workspace: Workspace, server: str) -> None:
    _uuid, hook = _job(workspace, server)
    before = stored(workspace)
    body = _problem(httpx.post(hook, json={"event": "finish"}), 409, "invalid_transition")
    assert "cannot finish a job that is CREATED" in body["detail"]
    assert body["details"]["state"] == "CREATED" and body["details"]["event"] == "finish"
    assert stored(workspace) == before


def test_replay_is_applied_once(workspace: Workspace, server: str) -> None:
    uuid, hook = _job(workspace, server)
    httpx.post(hook, json={"event": "run", "id": "r-1"}).raise_for_status()
    first = httpx.post(hook, json={"event": "update", "id": "u-1", "data": {"n": 1}})
    events = len(store.list_events(uuid, workspace=workspace))
    again = httpx.post(hook, json={"event": "update", "id": "u-1", "data": {"n": 1}})
    assert first.json()["replayed"] is False and again.json()["replayed"] is True
    assert len(store.list_events(uuid, workspace=workspace)) == events
    _problem(
        httpx.post(hook, json={"event": "update", "id": "u-1", "data": {"n": 2}}),
        409,
        "delivery_conflict",
    )


def test_admin_token_events(workspace: Workspace, server: str) -> None:
    _uuid, hook = _job(workspace, server)
    httpx.post(hook, json={"event": "run"}).raise_for_status()
    httpx.post(hook, json={"event": "fail", "data": {"error": "OOM"}}).raise_for_status()
    admin = {"token": admin_token(workspace)}
    url = hook.split("?")[0]
    assert httpx.post(url, params=admin, json={"event": "reset"}).json()["state"] == "RESET"
    assert httpx.post(url, params=admin, json={"event": "ready"}).json()["state"] == "CREATED"
    assert httpx.post(url, params=admin, json={"event": "delete"}).status_code == 200
    _problem(httpx.post(hook, json={"event": "run"}), 404, "pipelinejob_not_found")


def test_server_restart_between_events(workspace: Workspace, pipeline: Pipeline) -> None:
    with running_server() as url:
        _uuid, hook = _job(workspace, url)
        path = hook[len(url) :]
        assert httpx.post(hook, json={"event": "run", "id": "a"}).json()["state"] == "RUNNING"
    with running_server() as second:
        again = f"{second}{path}"  # same job, same token, another server process
        assert httpx.post(again, json={"event": "run", "id": "a"}).json()["replayed"] is True
        assert httpx.post(again, json={"event": "finish"}).json()["state"] == "FINISHED"


def test_index_through_the_webhook(workspace: Workspace, server: str) -> None:
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1").setup()
    assert job.job is not None
    write(Path(job.job.local_path), {"out.csv": "1,2"})
    hook = job.build_webhook(server)
    httpx.post(hook, json={"event": "run"}).raise_for_status()
    httpx.post(hook, json={"event": "finish"}).raise_for_status()
    accepted = httpx.post(hook, json={"event": "index"})
    assert accepted.status_code == 202 and accepted.json()["state"] == "INDEXING"
    index_job = accepted.json()["index_job"]
    finished = store.wait_terminal(index_job, timeout=60, workspace=workspace)
    assert finished.state == "FINISHED"
    token = hook.split("token=")[1]
    deadline = time.monotonic() + 30
    state = "INDEXING"
    while state == "INDEXING" and time.monotonic() < deadline:  # the settle follows the job's end
        state = httpx.get(f"{server}/pipelinejobs/{job._uuid()}", params={"token": token}).json()[
            "state"
        ]
        time.sleep(0.01)  # poll interval only
    assert state == "FINISHED"


def test_concurrent_replays_apply_once(workspace: Workspace, server: str) -> None:
    """Eight clients deliver the same event id at the same moment: one applies it."""
    import threading

    uuid, hook = _job(workspace, server)
    httpx.post(hook, json={"event": "run"}).raise_for_status()
    before = len(store.list_events(uuid, workspace=workspace))
    barrier = threading.Barrier(8)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            response = client.post(hook, json={"event": "update", "id": "same", "data": {"n": 1}})
            answers.append({"status": response.status_code, **response.json()})

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a["status"] for a in answers] == [200] * 8, answers
    assert sorted(a["replayed"] for a in answers) == [False] + [True] * 7
    events = store.list_events(uuid, workspace=workspace)
    assert len(events) == before + 1 and events[-1].payload["event_id"] == "same"
