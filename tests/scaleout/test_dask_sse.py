"""Log lines written on a Dask worker reach the server's SSE stream: a real uvicorn server on a
PostgreSQL catalog takes a question (``POST /api/v1/questions`` with ``environment``) that it
submits to a LocalCluster; the app on the worker logs and prints; the test reads those lines
from ``/api/v1/jobs/{id}/stream`` while the question runs, with their ``id:``s, then resumes
with ``Last-Event-ID``: every event once, in order, to the ``end``."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dask_helpers import HERE, needs_dask

from assay.jobs import store

sys.path.insert(0, str(HERE.parent / "server"))
from server_helpers import running_server
from test_api_stream import _events

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]
SRUID = "test/talker:1.0.0"
APP = """
import logging
import time
from pathlib import Path

def run(analysis):
    go = Path(analysis.input_values["go"])
    logging.getLogger("talker").info("logged before the wait")
    print("printed before the wait")
    while not go.exists():
        time.sleep(0.02)
    logging.getLogger("talker").warning("logged after the wait")
    print("printed after the wait")
    analysis.output_values = {"done": True}
"""


@pytest.fixture
def talker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "services" / "talker"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(textwrap.dedent(APP).strip() + "\n")
    (folder / "twine.json").write_text(json.dumps({"input_values_schema": {"type": "object"}}))
    config = {"name": "talker", "namespace": "test", "tag": "1.0.0"}
    (folder / "assay.yaml").write_text(json.dumps({"services": [config]}))
    monkeypatch.setenv("ASSAY_SERVICES_PATH", str(folder))  # the server finds it there
    return folder


def _read_until(events: Iterator[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for event in events:
        got.append(event)
        if event.get("event") == "log" and json.loads(event["data"])["payload"].get("message") == (
            message
        ):
            return got
    raise AssertionError(f"the stream ended before {message!r}")


def test_worker_log_lines_reach_the_sse_stream_and_last_event_id_resumes(
    dask_home: Path, postgres_database: str, talker: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    with running_server(dask_home, postgres_database) as server:
        headers = {"Authorization": f"Bearer {server.writer}"}
        with server.client(server.writer) as client:
            asked = client.post(
                "/api/v1/questions",
                json={
                    "service_id": SRUID,
                    "input_values": {"go": str(go)},
                    "environment": "cluster",
                },
            )
        assert asked.status_code == 202, asked.text
        question_uuid = asked.json()["question_uuid"]
        url = f"{server.url}{asked.json()['events_url']}"
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            assert response.status_code == 200
            first = _read_until(_events(response.iter_lines()), "printed before the wait")
        # Both lines arrived live: the question still waits for the go file on its worker.
        assert store.get_job(question_uuid).state == "RUNNING"
        go.write_text("go")
        last_id = first[-1]["id"]
        with httpx.stream(
            "GET", url, headers={**headers, "Last-Event-ID": last_id}, timeout=60
        ) as response:
            rest = list(_events(response.iter_lines()))  # ends by itself once the job ends
    assert rest[-1]["event"] == "end" and json.loads(rest[-1]["data"]) == {"state": "FINISHED"}
    received = first + rest[:-1]
    ids = [int(event["id"]) for event in received]
    assert ids == list(range(1, len(ids) + 1))  # every event once, in order, across the resume
    stored = store.list_events(question_uuid)
    assert [e.seq for e in stored] == ids
    logs = [
        (json.loads(e["data"])["payload"]["name"], json.loads(e["data"])["payload"]["message"])
        for e in received
        if e["event"] == "log"
    ]
    assert logs == [
        ("talker", "logged before the wait"),
        ("stdout", "printed before the wait"),
        ("talker", "logged after the wait"),
        ("stdout", "printed after the wait"),
    ]
    job = store.get_job(question_uuid)
    assert job.environment == "cluster" and job.launch["executor"] == "dask"
