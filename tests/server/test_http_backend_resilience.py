"""The ``http`` backend of ``Child.ask`` when the network fails: a proxy between the asker and
a real uvicorn cuts the event stream mid-question and refuses the next connections; the
asker resumes with ``Last-Event-ID`` and receives every event exactly once. A 503 from a
proxy is tried again for a GET. A server that never answers ends in the configured timeout
with a clear ``Unavailable``, after the configured retries.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ApiServer, running_server
from tcp_proxy import proxy_to

from assay.bundles.workspace import close_workspaces
from assay.core.errors import InvalidInput, Unavailable
from assay.services import Child

SERVICE = "lab/ticker:1.0.0"
TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"go": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["go", "n"],
    },
    "monitor_message_schema": {"type": "object", "required": ["progress"]},
}
# Sends n monitor messages and a log line each; after the first half it waits until the test
# says go (a file appears), so the test cuts the stream at a known point.
APP = """
import logging, os, time

def run(analysis):
    n = analysis.input_values["n"]
    for i in range(n):
        if i == n // 2:
            while not os.path.exists(analysis.input_values["go"]):
                time.sleep(0.01)
        logging.getLogger("app").info("tick %d", i)
        analysis.send_monitor_message({"progress": i})
    analysis.output_values = {"ticks": n}
"""


@pytest.fixture(scope="module")
def tapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("resilience")
    folder = root / "services" / "ticker"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(textwrap.dedent(APP))
    (folder / "twine.json").write_text(json.dumps(TWINE))
    (folder / "assay.yaml").write_text(
        json.dumps({"services": [{"name": "ticker", "namespace": "lab", "tag": "1.0.0"}]})
    )
    old = os.environ.get("ASSAY_SERVICES_PATH")
    os.environ["ASSAY_SERVICES_PATH"] = str(root / "services")
    try:
        with running_server(root / "home", None) as server:
            os.environ.pop("ASSAY_SERVICES_PATH")  # the asker does not have the service
            yield server
    finally:
        os.environ.pop("ASSAY_SERVICES_PATH", None)
        if old is not None:
            os.environ["ASSAY_SERVICES_PATH"] = old
        close_workspaces()


def test_a_dropped_stream_resumes_and_every_event_arrives_exactly_once(
    tapi: ApiServer, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    n = 20
    with proxy_to(tapi.url) as proxy:
        child = Child(
            SERVICE,
            backend={"name": "http", "url": proxy.url, "token": tapi.writer, "retries": 4},
        )
        progress: list[int] = []

        def on_message(message: dict[str, int]) -> None:
            progress.append(message["progress"])
            if message["progress"] == n // 2 - 1:  # the app now waits for go
                # The network dies: the open stream is cut and the next two connections are
                # refused; once they were, the app may go on.
                proxy.refuse(2, then=go.touch)
                proxy.drop()

        answer, uuid = child.ask(
            input_values={"go": str(go), "n": n}, handle_monitor_message=on_message
        )
        assert proxy.refused == 2  # the asker did try again, and was refused twice
        resumed = [r for r in proxy.requests if b"last-event-id" in r.lower()]
        assert resumed, "the stream was not resumed with Last-Event-ID"
    assert answer == {"output_values": {"ticks": n}, "output_manifest": None}
    assert progress == list(range(n))  # every monitor message once, in order
    received = child.received_events or []
    ticks = [
        e["payload"]["message"]
        for e in received
        if e["kind"] == "log_record" and e["payload"].get("name") == "app"
    ]
    assert ticks == [f"tick {i}" for i in range(n)]
    # Exactly what the server recorded, nothing twice, nothing missing.
    with tapi.client(tapi.reader) as client:
        events = client.get(f"/api/v1/jobs/{uuid}/events", params={"limit": 1000}).json()
    logged = [e for e in events["items"] if e["type"] == "log"]
    assert len([e for e in received if e["kind"] == "log_record"]) == len(logged)


def test_a_503_from_a_proxy_is_tried_again(tapi: ApiServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()
    with proxy_to(tapi.url) as proxy:
        proxy.answer_503(2)
        child = Child(SERVICE, backend={"name": "http", "url": proxy.url, "token": tapi.writer})
        answer, _ = child.ask(input_values={"go": str(go), "n": 2})
        assert proxy.answered_503 == 2
    assert answer["output_values"] == {"ticks": 2}


def test_a_server_that_never_answers_ends_in_the_timeout(tmp_path: Path) -> None:
    silent = socket.socket()  # listens (connections complete in the backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        child = Child(
            "lab/silent:1.0.0",
            backend={"name": "http", "url": url, "token": "t", "timeout": 0.5, "retries": 1},
        )
        with pytest.raises(Unavailable) as raised:
            child.ask(input_values={"n": 1})
    finally:
        silent.close()
    assert raised.value.message == (
        f"cannot reach the Assay server {url} (2 tries): no answer within 0.5 s (ReadTimeout)"
    )


@pytest.mark.parametrize(
    ("key", "value"), [("timeout", 0), ("timeout", "10"), ("retries", -1), ("retries", 1.5)]
)
def test_bad_timeout_or_retries_are_refused(key: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=key):
        Child(SERVICE, backend={"name": "http", "url": "http://127.0.0.1:9", key: value})
