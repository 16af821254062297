"""Pipelines on a real Dask LocalCluster: each task one Dask task, bundles by reference."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import dask_pipeline_tasks as tasks
import pytest
from dask_helpers import needs_dask, wait_for

from assay import api
from assay.core.errors import ParamNotPicklable, WorkerNotReady
from assay.jobs import store
from assay.pipelines.jobglue import TASK_KIND

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]
CTX = "scale"


def task_jobs(state: str | None = None) -> list[Any]:
    return store.list_jobs(kind=TASK_KIND, state=state, limit=None)


def test_fan_out_fan_in_runs_each_task_on_a_worker(dask_home: Path) -> None:
    result = api.apply(CTX, tasks.SumSquares, params={"width": 4}, compute_environment="cluster")
    assert result == {"success": True, "did_work": True}
    assert api.cat(CTX, "SumSquares") == 0 + 1 + 4 + 9
    pids = {api.cat(CTX, f"square_{i}")["pid"] for i in range(4)}
    assert os.getpid() not in pids  # ran in worker processes
    jobs = task_jobs()
    assert len(jobs) == 5 and {j.state for j in jobs} == {"FINISHED"}
    assert {j.environment for j in jobs} == {"cluster"}
    again = api.apply(CTX, tasks.SumSquares, params={"width": 4}, compute_environment="cluster")
    assert again == {"success": True, "did_work": False}  # cached: nothing re-run


def test_run_on_a_dask_environment(dask_home: Path) -> None:
    result = api.run(CTX, tasks.SumSquares, {"width": 2}, compute_environment="cluster")
    assert (result["environment"], result["state"]) == ("cluster", "FINISHED")
    assert api.cat(CTX, "SumSquares") == 1


def test_stop_a_running_pipeline_task(dask_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    outcome: dict[str, Any] = {}

    def apply() -> None:
        try:
            outcome["result"] = api.apply(
                CTX,
                tasks.UntilStopped,
                params={"marker": str(marker)},
                compute_environment="cluster",
            )
        except Exception as error:  # the test reads what apply ended with
            outcome["error"] = error

    thread = threading.Thread(target=apply)
    thread.start()
    worker_pid = int(wait_for(marker))
    assert worker_pid != os.getpid()
    (running,) = task_jobs("RUNNING")
    store.request_stop(running.job_id)
    thread.join(60)
    assert not thread.is_alive()
    assert store.get_job(running.job_id).state == "STOPPED"
    assert "error" in outcome  # the run reports the stopped task; nothing stored for it
    assert [b.name for b in api.search(CTX)] == []


def test_stop_the_pipeline_job_stops_its_task_on_the_worker(
    dask_home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = api.run(
                CTX, tasks.UntilStopped, {"marker": str(marker)}, compute_environment="cluster"
            )
        except Exception as error:  # the test reads what run ended with
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(marker)
    (pipeline,) = store.list_jobs(kind="pipeline", state="RUNNING")
    store.request_stop(pipeline.job_id)
    thread.join(60)
    assert not thread.is_alive()
    assert store.get_job(pipeline.job_id).state == "STOPPED"
    assert [j.state for j in task_jobs()] == ["STOPPED"]
    assert api.search(CTX) == []


def test_a_dead_worker_reruns_the_task_and_its_output_appears_once(
    dask_home: Path, tmp_path: Path, client: Any
) -> None:
    marker = tmp_path / "attempt"
    outcome: dict[str, Any] = {}

    def apply() -> None:
        outcome["result"] = api.apply(
            CTX, tasks.DiesOnce, params={"marker": str(marker)}, compute_environment="cluster"
        )

    thread = threading.Thread(target=apply)
    thread.start()
    pid = int(wait_for(Path(f"{marker}.1")))
    assert pid in client.run(os.getpid).values()
    os.kill(pid, signal.SIGKILL)
    thread.join(90)
    assert outcome.get("result") == {"success": True, "did_work": True}
    assert api.cat(CTX, "DiesOnce") == {"attempt": 2}
    assert [b.name for b in api.search(CTX)] == ["DiesOnce"]  # once


def test_unpicklable_params_are_refused_before_anything_runs(dask_home: Path) -> None:
    with pytest.raises(ParamNotPicklable, match="cannot be sent to a Dask worker"):
        api.apply(
            CTX,
            tasks.UntilStopped,
            params={"marker": threading.Lock()},
            compute_environment="cluster",
        )
    assert task_jobs() == [] and api.search(CTX) == []


def test_a_task_module_the_workers_lack_is_refused(
    dask_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "here_only"
    folder.mkdir()
    (folder / "here_only_tasks.py").write_text(
        "from assay.pipe import PipeTask\n\n"
        "class Local(PipeTask):\n    def pipe_run(self):\n        return 1\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    import here_only_tasks  # type: ignore[import-not-found]

    with pytest.raises(WorkerNotReady, match="cannot import here_only_tasks"):
        api.apply(CTX, here_only_tasks.Local, compute_environment="cluster")
    assert task_jobs() == [] and api.search(CTX) == []
