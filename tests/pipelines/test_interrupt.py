"""Ctrl-C: a real ``assay apply`` process gets a real SIGINT while two tasks run.

Synchronised on files the tasks write when they start (never on a sleep). With three workers,
one task notices the stop and returns (its output is refused at the commit gate); the other
never returns (the run gives up on it after --stop-grace). Both end STOPPED; the finished
upstream output is kept; nothing of the stopped tasks is visible. With one worker, the task
runs in the main thread and the interrupt lands in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.jobs import store as job_store
from helpers import PYTHON

HERE = Path(__file__).parent
CTX = "stop"


def wait_for_files(paths: list[Path], process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"apply ended early ({process.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"tasks did not start within {timeout} s")
        time.sleep(0.01)  # polling the marker files: the event is the file appearing


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent (init reaps orphans promptly).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def start_apply(
    home: Path, markers: Path, workers: int, executor: str = "thread"
) -> subprocess.Popen[str]:
    api.context(CTX)
    close_workspaces()
    env = {**os.environ, "PIPE_TEST_MARKERS": str(markers), "ASSAY_HOME": str(home)}
    return subprocess.Popen(
        [
            *(PYTHON, "-m", "assay.cli.main", "apply", "pipeline_test_tasks:StopRoot"),
            *("-c", CTX, "--workers", str(workers), "--stop-grace", "1"),
            *("--executor", executor),
        ],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("executor", ["thread", "subprocess"])
def test_sigint_stops_running_tasks_cleanly(
    sqlite_home: Path, tmp_path: Path, executor: str
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    process = start_apply(sqlite_home, markers, workers=3, executor=executor)
    wait_for_files([markers / "started-slow", markers / "started-stubborn"], process, 60)

    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted: running tasks were"), err  # all of stderr
    names = {b.name for b in api.search(CTX)}
    assert names == {"Numbers"}  # finished before the stop: kept
    states = {j.spec["bundle_name"]: j.state for j in job_store.list_jobs(kind="pipeline_task")}
    assert states == {"Numbers": "FINISHED", "slow": "STOPPED", "stubborn": "STOPPED"}
    # No staging folder is left (tasks that return data make none; one a dead process left
    # would be swept by gc) and nothing is orphaned.
    staging = sqlite_home / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert api.gc(grace_seconds=0).blobs_removed == 0
    # The processes that ran the tasks are gone (subprocess tasks are killed, not orphaned).
    for name in ("started-slow", "started-stubborn"):
        assert not pid_alive(int((markers / name).read_text()))


def test_sigint_with_one_worker_interrupts_the_task_in_place(
    sqlite_home: Path, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    process = start_apply(sqlite_home, markers, workers=1)  # tasks run in the main thread
    wait_for_files([markers / "started-slow"], process, 60)

    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    assert {b.name for b in api.search(CTX)} == {"Numbers"}
    states = {j.spec["bundle_name"]: j.state for j in job_store.list_jobs(kind="pipeline_task")}
    assert states == {"Numbers": "FINISHED", "slow": "STOPPED"}
    assert not (markers / "started-stubborn").exists()  # never started
