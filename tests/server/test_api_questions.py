"""Questions over HTTP and the ``http`` backend of ``Child.ask``: a real uvicorn (SQLite and
PostgreSQL) runs real service workers; the asker is this test process."""

from __future__ import annotations

import json
import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ApiServer, running_server

from assay.bundles.workspace import close_workspaces
from assay.core.errors import (
    InsufficientScope,
    InvalidInput,
    InvalidStrand,
    QuestionCancelled,
    ServiceNotFound,
    TokenInvalid,
    Unavailable,
)
from assay.services import Child
from helpers import POSTGRES_ADMIN_URL, skip_or_fail, temporary_postgres_database

TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "wait": {"type": "boolean"}},
        "required": ["n"],
    },
    "monitor_message_schema": {"type": "object", "required": ["progress"]},
}
APP = """
import logging, time

def run(analysis):
    logging.getLogger("app").info("squaring %d", analysis.input_values["n"])
    analysis.send_monitor_message({"progress": 0.5})
    if analysis.input_values.get("wait"):
        logging.getLogger("app").info("waiting to be cancelled")
        while True:
            time.sleep(0.02)
    if analysis.input_values["n"] < 0:
        raise ValueError("n must not be negative")
    analysis.output_values = {"square": analysis.input_values["n"] ** 2}
"""
SERVICE = "lab/square:1.0.0"


def _write_service(root: Path) -> Path:
    folder = root / "square"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(textwrap.dedent(APP))
    (folder / "twine.json").write_text(json.dumps(TWINE))
    (folder / "assay.yaml").write_text(
        json.dumps({"services": [{"name": "square", "namespace": "lab", "tag": "1.0.0"}]})
    )
    return folder


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def qapi(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server that finds the service ``lab/square`` on its ASSAY_SERVICES_PATH."""
    root = tmp_path_factory.mktemp("questions")
    _write_service(root / "services")
    old = os.environ.get("ASSAY_SERVICES_PATH")
    os.environ["ASSAY_SERVICES_PATH"] = str(root / "services")
    try:
        if request.param == "sqlite":
            with running_server(root / "home", None) as server:
                os.environ.pop("ASSAY_SERVICES_PATH")  # the asker does not have the service
                yield server
        else:
            try:
                with (
                    temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_q") as url,
                    running_server(root / "home", url) as server,
                ):
                    os.environ.pop("ASSAY_SERVICES_PATH")
                    yield server
            except ConnectionError as exc:
                skip_or_fail(str(exc))
    finally:
        os.environ.pop("ASSAY_SERVICES_PATH", None)
        if old is not None:
            os.environ["ASSAY_SERVICES_PATH"] = old
        close_workspaces()


def _child(api: ApiServer, token: str | None = None) -> Child:
    return Child(SERVICE, backend={"name": "http", "url": api.url, "token": token or api.writer})


def test_round_trip_with_logs_monitor_messages_and_events(
    qapi: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    messages: list[object] = []
    child = _child(qapi)
    answer, uuid = child.ask(input_values={"n": 7}, handle_monitor_message=messages.append)
    assert answer == {"output_values": {"square": 49}, "output_manifest": None}
    assert messages == [{"progress": 0.5}]
    prefix = f"[{SERVICE} | {uuid}]"
    texts = [r.getMessage() for r in caplog.records]
    assert f"{prefix} squaring 7" in texts
    assert any(r.name == "app" and r.getMessage() == f"{prefix} squaring 7" for r in caplog.records)
    kinds = [e["kind"] for e in child.received_events or []]
    assert kinds[0] == "delivery" and kinds[-1] == "result"
    assert {"log_record", "monitor_message"} <= set(kinds)
    # the server's records: the question (a job too) with the same uuid
    with qapi.client(qapi.reader) as client:
        status = client.get(f"/api/v1/questions/{uuid}").json()
        assert status["status"] == "succeeded" and status["service_id"] == SERVICE
        assert client.get(f"/api/v1/jobs/{uuid}").json()["kind"] == "question"


def test_errors_are_the_local_backends(qapi: ApiServer) -> None:
    child = _child(qapi)
    with pytest.raises(ValueError, match="n must not be negative") as raised:
        child.ask(input_values={"n": -1})
    assert raised.value.question_uuid  # type: ignore[attr-defined]
    error, uuid = child.ask(input_values={"n": -1}, raise_errors=False)
    assert isinstance(error, ValueError)
    with qapi.client(qapi.reader) as client:
        assert client.get(f"/api/v1/questions/{uuid}").json()["status"] == "failed"


def test_cancel_a_running_question(qapi: ApiServer) -> None:
    child = _child(qapi)
    seen: list[object] = []
    answer, uuid = child.ask(input_values={"n": 1, "wait": True}, asynchronous=True)
    assert answer is None
    # wait on the question's own events until the app is running, then cancel
    with (
        qapi.client(qapi.reader) as client,
        client.stream("GET", f"/api/v1/jobs/{uuid}/stream") as stream,
    ):
        for line in stream.iter_lines():
            if "waiting to be cancelled" in line:
                break
            seen.append(line)
    assert Child.cancel(uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(uuid, timeout=60)
    with qapi.client(qapi.writer) as client:
        assert client.get(f"/api/v1/questions/{uuid}").json()["status"] == "cancelled"
        again = client.post(f"/api/v1/questions/{uuid}/cancel")
        assert again.status_code == 200 and again.json()["cancelled"] is False


def _question_count(api: ApiServer) -> int:
    with api.client(api.reader) as client:
        return len(
            client.get("/api/v1/jobs", params={"kind": "question", "limit": 1000}).json()["items"]
        )


def test_bad_input_and_auth_fail_clearly_and_ask_nothing(qapi: ApiServer) -> None:
    before = _question_count(qapi)
    with pytest.raises(InvalidStrand):
        _child(qapi).ask(input_values={"n": "seven"})  # checked against the twine first
    with pytest.raises(TokenInvalid):
        _child(qapi, token="assay_000000000000_nope").ask(input_values={"n": 1})
    with pytest.raises(InsufficientScope):
        _child(qapi, token=qapi.reader).ask(input_values={"n": 1})
    with pytest.raises(ServiceNotFound):
        Child(
            "lab/nothing:1.0.0", backend={"name": "http", "url": qapi.url, "token": qapi.writer}
        ).ask(input_values={"n": 1})
    with pytest.raises(Unavailable):
        Child(SERVICE, backend={"name": "http", "url": "http://127.0.0.1:9", "token": "x"}).ask(
            input_values={"n": 1}
        )
    with pytest.raises(InvalidInput, match="url"):
        Child(SERVICE, backend={"name": "http"})
    with pytest.raises(InvalidInput, match="unknown key"):
        Child(SERVICE, backend={"name": "http", "url": qapi.url, "tokn": "x"})
    with qapi.client(qapi.writer) as client:
        bad = client.post(
            "/api/v1/questions", content=b"{", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
        bad = client.post("/api/v1/questions", json={"service_id": SERVICE, "timeout": -1})
        assert bad.status_code == 422 and bad.json()["field"] == "timeout"
        bad = client.post("/api/v1/questions", json={"service_id": SERVICE, "input_values": {}})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_strand"
        missing = client.get("/api/v1/questions/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["code"] == "question_not_found"
    assert httpx.get(f"{qapi.url}/api/v1/questions/x").status_code == 401
    assert _question_count(qapi) == before
