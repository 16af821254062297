"""Server-Sent Events of a job through a real server: live arrival, Last-Event-ID resume with
no loss and no repeat, the end event, stream tokens, auth."""

from __future__ import annotations

import array
import fcntl
import json
import re
import socket
import termios
import time
import uuid as uuid_module
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_stalled_client_does_not_grow_the_server(api: ApiServer) -> None:
    """32 MiB of events to a client that stops reading: the server's memory stays flat (it
    waits on the socket instead of queueing), and the client still gets every event after."""
    job_id = _job(api)
    line = "x" * 4000
    for start in range(0, 8000, 500):
        store.append_events(
            job_id,
            [("log", {"message": f"{start + i} {line}"}) for i in range(500)],
            workspace=api.workspace,
        )
    store.fire(job_id, "finish", workspace=api.workspace)
    total_events = len(store.list_events(job_id, workspace=api.workspace))
    pid = api.process.pid
    # Read the whole stream once first, so the baseline is a server that has already done
    # everything the stalled stream will make it do (imports, caches, allocator arenas).
    with httpx.stream(
        "GET",
        f"{api.url}/api/v1/jobs/{job_id}/stream",
        headers={"Authorization": f"Bearer {api.reader}"},
        timeout=120,
    ) as warm:
        assert sum(1 for line in warm.iter_lines() if line.startswith("id: ")) == total_events
    address = urlparse(api.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((address.hostname, address.port))
    try:
        baseline = _rss_kib(pid)
        sock.sendall(
            f"GET /api/v1/jobs/{job_id}/stream HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {api.reader}\r\n\r\n".encode()
        )
        # Wait until the pipe is full: our receive queue stops growing (bounded wait).
        queued, steady, deadline = -1, 0, time.monotonic() + 60
        while steady < 20 and time.monotonic() < deadline:
            now = _queued(sock)
            steady = steady + 1 if now == queued and now > 0 else 0
            queued = now
            time.sleep(0.05)
        assert steady >= 20, "the stream never stalled"
        stalled = _rss_kib(pid)
        # Far less than the 32 MiB the stream holds: one batch and the socket buffers at most.
        assert stalled - baseline < 8 * 1024, (baseline, stalled)
        received = b""
        sock.settimeout(60)
        while not received.endswith(b'event: end\ndata: {"state": "FINISHED"}\n\n'):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    ids = [int(x) for x in re.findall(rb"^id: (\d+)$", received, re.M)]
    assert ids == list(range(1, total_events + 1))


def _queued(sock: socket.socket) -> int:
    buffer = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buffer)
    return buffer[0]
