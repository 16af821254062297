"""Task jobs left behind: a job RUNNING in a dead process is failed and recreated; one RUNNING
in a live process is refused (the same work is not done twice at once)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pipeline_test_tasks as tasks
import pytest

from assay import api
from assay.bundles.workspace import open_workspace
from assay.core.errors import TaskFailed
from assay.jobs import store as job_store
from assay.pipelines.apply import ApplyRequest, plan_pipeline
from assay.pipelines.jobglue import TASK_KIND, task_job_id

CTX = "jobs"


@pytest.fixture
def numbers_job(sqlite_home: Path) -> str:
    api.context(CTX)
    [decision] = plan_pipeline(open_workspace(), ApplyRequest(CTX, tasks.Numbers, {"n": 7}))
    assert decision.processing_name is not None
    job_id = task_job_id(CTX, decision.processing_name)
    job_store.create_job(TASK_KIND, job_id, spec={"task": "Numbers(n=7)"})
    return job_id


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_job_left_running_by_a_dead_run_is_failed_then_redone(numbers_job: str) -> None:
    host = job_store.this_process()["host"]
    job_store.fire(numbers_job, "run", fields={"pid": dead_pid(), "host": host})

    assert api.apply(CTX, tasks.Numbers, params={"n": 7}) == {"success": True, "did_work": True}

    job = job_store.get_job(numbers_job)
    assert job.state == "FINISHED"
    events = [(e.event, e.to_state) for e in job_store.list_events(numbers_job)]
    assert ("fail", "FAILED") in events and ("recreate", "CREATED") in events
    assert api.cat(CTX, "Numbers") == list(range(7))


def test_a_job_running_in_a_live_process_is_not_run_twice(numbers_job: str) -> None:
    host = job_store.this_process()["host"]
    job_store.fire(numbers_job, "run", fields={"pid": os.getppid(), "host": host})

    with pytest.raises(TaskFailed, match="is already running as job"):
        api.apply(CTX, tasks.Numbers, params={"n": 7})

    assert job_store.get_job(numbers_job).state == "RUNNING"
    assert api.search(CTX) == []
