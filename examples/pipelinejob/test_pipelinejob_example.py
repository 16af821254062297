"""The pipelinejob example: runner.sh reports a job's life through its webhook with curl,
against a real ``assay serve`` on a free loopback port, exactly as README.md shows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assay.bundles.workspace import close_workspaces

HERE = Path(__file__).parent
ASSAY = str(Path(sys.executable).with_name("assay"))


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    monkeypatch.delenv("ASSAY_SERVER_SECRET", raising=False)
    close_workspaces()
    yield
    close_workspaces()


def assay(*args: str) -> dict:
    done = subprocess.run([ASSAY, "--json", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(shutil.which("curl") is None, reason="the example's runner uses curl")
def test_shell_runner_reports_through_the_webhook(tmp_path):
    assay("pipelines", "register", str(HERE / "pipeline.json"))
    port = _free_port()
    server = subprocess.Popen(
        [ASSAY, "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "ASSAY_SERVER_URL": f"http://127.0.0.1:{port}"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.05)  # poll interval while the server binds its port
        text = tmp_path / "m1.txt"
        text.write_text("the quick brown fox jumps over the lazy dog\n")
        os.environ["ASSAY_SERVER_URL"] = f"http://127.0.0.1:{port}"
        try:
            job = assay(
                "pipelinejobs", "create", "-p", "example/word-count", "--measurement-id", "m1",
                "--data", json.dumps({"inputs": [str(text)]}), "--archive-pattern", r"\.csv$",
            )  # fmt: skip
        finally:
            del os.environ["ASSAY_SERVER_URL"]
        assert job["webhook"].startswith(f"http://127.0.0.1:{port}/pipelinejobs/")
        ran = subprocess.run(
            [str(HERE / "runner.sh"), job["webhook"], job["local_path"], str(text)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        answers = [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]
        assert [a["state"] for a in answers] == ["RUNNING", "RUNNING", "FINISHED", "INDEXING"]
        deadline = time.monotonic() + 60
        shown = assay("pipelinejobs", "show", job["uuid"])
        while shown["state"] == "INDEXING" and time.monotonic() < deadline:
            time.sleep(0.05)  # poll interval: indexing runs after the webhook answered
            shown = assay("pipelinejobs", "show", job["uuid"])
        assert shown["state"] == "FINISHED", shown
        index = shown["result"]["index"]
        assert index["files_indexed"] == 1 and index["unmatched"] == 1
        bundles = assay("ls", "-c", "pipelinejobs")
        assert [b["name"] for b in bundles] == [f"pjob-{job['uuid']}-archive-0"]
        # a replayed POST from the runner is applied once
        again = httpx.post(
            job["webhook"], json={"event": "finish", "id": "finish-1", "data": {"exit_code": 0}}
        )
        assert again.json()["replayed"] is True
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
