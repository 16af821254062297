"""The fork server on the job layer: a generic entry point's one-task workers, forked.

A forked worker is watched exactly as a spawned one (``WorkerProcess``): same wire events, same
exit statuses, same kill; it holds no descriptor of the server (compared with a spawned worker
of the same entry point), and a server that cannot fork is replaced or bypassed.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.jobs import forkserver
from assay.jobs.supervisor import WorkerProcess

HANDLER = """
import os, signal, time
WARMED = []

def warm_for(hint):
    WARMED.append(hint)

def handle(task, channel, cache):
    if task.get("do") == "sleep":
        channel.send("monitor_message", {"data": "sleeping"})
        time.sleep(600)
    if task.get("do") == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    return "result", {
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgrp(),
        "mark": os.environ.get("MARK"), "cwd": os.getcwd(), "path0": __import__("sys").path[0],
        "warmed": list(WARMED),
    }, None
"""
ENTRY = "forked_handler:handle"


@pytest.fixture
def entry_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    library = tmp_path / "library"
    library.mkdir()
    (library / "forked_handler.py").write_text(textwrap.dedent(HANDLER))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(library), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.delenv("ASSAY_FORK_SERVER", raising=False)
    forkserver.close_servers()
    yield tmp_path
    forkserver.close_servers()


def _events(worker: WorkerProcess, task: dict[str, Any]) -> Iterator[dict[str, Any]]:
    worker.send(task)
    while True:
        event = worker.events.get(timeout=60)
        if not isinstance(event, dict):
            return  # end of file
        yield event


def _answer(worker: WorkerProcess, task: dict[str, Any]) -> dict[str, Any]:
    try:
        for event in _events(worker, task):
            if event["kind"] == "result":
                payload: dict[str, Any] = event["payload"]
                return payload
        raise AssertionError(f"no result; stderr: {worker.stderr_tail()}")
    finally:
        worker.close()


def _forked(cwd: Path, job_id: str = "job-1") -> WorkerProcess:
    child = forkserver.fork_worker(ENTRY, str(cwd), job_id)
    assert child is not None
    return WorkerProcess(ENTRY, False, str(cwd), job_id, forked=child)


def test_a_forked_worker_answers_like_a_spawned_one_and_holds_no_server_descriptor(
    entry_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARK", "here")
    forked = _answer(_forked(entry_module), {"n": 1})
    spawned = _answer(WorkerProcess(ENTRY, False, str(entry_module), "job-2"), {"n": 1})
    (server,) = forkserver.server_pids()
    assert forked["ppid"] == server and spawned["ppid"] == os.getpid()
    assert forked["pgid"] == forked["pid"] and spawned["pgid"] == spawned["pid"]
    assert forked["mark"] == spawned["mark"] == "here"
    assert forked["cwd"] == spawned["cwd"] == str(entry_module)
    assert forked["path0"] == spawned["path0"] == str(entry_module)  # as ``python -m`` sets it
    # The same descriptors as a fresh interpreter's: no control socket, wake-up pipe or reply
    # socket of the server leaked into the child.
    assert forked["fds"] == spawned["fds"]


def test_a_forked_workers_exit_status_and_kill(entry_module: Path) -> None:
    worker = _forked(entry_module)
    kinds = [event["kind"] for event in _events(worker, {"do": "term"})]
    assert kinds[0] == "delivery" and "result" not in kinds
    assert worker.reap() == -signal.SIGTERM  # told by the server, as Popen.returncode
    worker.close()

    worker = _forked(entry_module)
    for event in _events(worker, {"do": "sleep"}):
        if event["kind"] == "monitor_message":
            break
    assert worker.alive()
    worker.kill()
    assert worker.reap() == -signal.SIGKILL
    assert not worker.alive()
    worker.close()


def test_a_server_that_is_gone_is_replaced_before_the_next_fork(entry_module: Path) -> None:
    first = _answer(_forked(entry_module), {})
    os.kill(first["ppid"], signal.SIGKILL)
    second = _answer(_forked(entry_module), {})
    assert second["ppid"] != first["ppid"] and forkserver.server_pids() == [second["ppid"]]


def test_off_unsupported_or_unready_means_spawn(
    entry_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_FORK_SERVER", "0")
    assert forkserver.fork_worker(ENTRY, str(entry_module), "j") is None
    assert forkserver.server_pids() == []
    monkeypatch.delenv("ASSAY_FORK_SERVER")
    # A server whose imports take longer than the job may wait: this job spawns instead.
    slow = entry_module / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(3)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(slow), os.environ["PYTHONPATH"]]))
    assert forkserver.fork_worker(ENTRY, str(entry_module), "j", wait=0.2) is None
    assert len(forkserver.server_pids()) == 1  # it goes on starting, for the next job


def test_the_server_command_line_is_checked() -> None:
    import subprocess
    import sys

    usage = subprocess.run(
        [sys.executable, "-m", "assay.jobs.forkserver_main"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_a_request_the_server_cannot_read_is_refused_not_forked(entry_module: Path) -> None:
    import socket

    forkserver.fork_worker(ENTRY, str(entry_module), "warm")
    (server,) = forkserver.server_pids()
    control = forkserver._servers[next(iter(forkserver._servers))].control
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pipes = [os.pipe() for _ in range(3)]
    try:
        socket.send_fds(
            control, [b"not json"], [pipes[0][0], pipes[1][1], pipes[2][1], theirs.fileno()]
        )
        reply = json.loads(mine.recv(1 << 16))
    finally:
        for read, write in pipes:
            os.close(read)
            os.close(write)
        mine.close()
        theirs.close()
    assert "error" in reply and "pid" not in reply
    assert forkserver.server_pids() == [server]  # and it still serves
    assert _answer(_forked(entry_module), {})["ppid"] == server


def test_the_child_takes_the_askers_environment_of_each_request(
    entry_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer(_forked(entry_module), {})  # the server starts without MARK
    monkeypatch.setenv("MARK", "later")
    assert _answer(_forked(entry_module), {})["mark"] == "later"
    monkeypatch.delenv("MARK")
    assert _answer(_forked(entry_module), {})["mark"] is None


def test_the_server_warms_for_a_hint_once_per_file_version_after_forking(
    entry_module: Path,
) -> None:
    hint = entry_module / "library" / "forked_handler.py"

    def warmed() -> list[str]:
        child = forkserver.fork_worker(ENTRY, str(entry_module), "job", hint=str(hint))
        assert child is not None
        return list(_answer(WorkerProcess(ENTRY, False, None, "job", forked=child), {})["warmed"])

    assert warmed() == []  # the first child was forked before the server warmed
    assert warmed() == [str(hint)]  # later children inherit what it prepared, once
    assert warmed() == [str(hint)]
    os.utime(hint, ns=(1, 1))  # a new version of the file: prepared again
    warmed()
    assert warmed() == [str(hint), str(hint)]


def test_a_hung_server_is_replaced_and_the_job_still_forked(
    entry_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer(_forked(entry_module), {})
    (hung,) = forkserver.server_pids()
    os.kill(hung, signal.SIGSTOP)  # it takes the request but never forks
    monkeypatch.setattr(forkserver, "REPLY_SECONDS", 1.0)
    try:
        answer = _answer(_forked(entry_module), {})
    finally:
        os.kill(hung, signal.SIGKILL)
    assert answer["ppid"] != hung and forkserver.server_pids() == [answer["ppid"]]


def test_a_server_that_cannot_start_means_the_job_is_spawned(
    entry_module: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = entry_module / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text(
        "import os\n"
        "if b'assay.jobs.forkserver' in open('/proc/self/cmdline', 'rb').read():\n"
        "    os._exit(1)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(broken), os.environ["PYTHONPATH"]]))
    assert forkserver.fork_worker(ENTRY, str(entry_module), "job") is None  # tried twice
    assert "starting a fresh interpreter instead" in caplog.text
    spawned = _answer(WorkerProcess(ENTRY, False, str(entry_module), "job"), {})
    assert spawned["ppid"] == os.getpid()
