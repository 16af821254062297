"""Jobs on a real Dask LocalCluster (2 worker processes), catalog on PostgreSQL.

The task on the worker moves the job's states in the catalog; futures carry only references.
Synchronised on files the tasks write, never on sleeps.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import needs_dask, wait_for

from assay.bundles.workspace import open_workspace
from assay.catalog import queries
from assay.core.errors import (
    InvalidEnvironmentConfig,
    ParamNotPicklable,
    SchedulerUnreachable,
    WorkerNotReady,
)
from assay.jobs import store
from assay.jobs.environments import get_environment, parse_environment
from assay.jobs.executors import dask_client
from assay.jobs.executors.dask import DaskExecutor, check_picklable, job_key

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]

ENTRY = "dask_jobfns"


def make_job(name: str, spec: dict[str, Any], environment: str = "cluster") -> str:
    from assay.jobs import ids

    jid = ids.job_id("dask-test", name, os.getpid())
    store.create_job("compute", jid, spec=spec, environment=environment)
    return jid


def transitions(job_id: str) -> list[str]:
    return [e.event for e in store.list_events(job_id) if e.type == "transition"]


def test_job_runs_on_a_worker_and_the_catalog_has_its_states_and_logs(dask_home: Path) -> None:
    executor = DaskExecutor(get_environment("cluster"))
    jid = make_job("hello", {"n": 21})
    key = executor.submit(jid, f"{ENTRY}:hello")
    assert key == job_key(jid) and jid in key
    record = executor.wait(jid, timeout=60)
    assert record.state == "FINISHED", record.error
    assert record.result is not None and record.result["doubled"] == 42
    assert record.result["pid"] != os.getpid()  # ran in a worker process
    assert transitions(jid) == ["create", "queue", "run", "finish"]
    logs = [e.payload["message"] for e in store.list_events(jid, types=["log"])]
    assert f"hello from {record.result['pid']}" in logs
    # A re-submission of finished work returns at once on the worker: nothing new happens.
    executor._send(executor.client, jid, f"{ENTRY}:hello")
    executor.client.run_on_scheduler(lambda dask_scheduler: None)
    assert transitions(jid) == ["create", "queue", "run", "finish"]


def test_stop_reaches_a_running_task(dask_home: Path, tmp_path: Path) -> None:
    executor = DaskExecutor(get_environment("cluster"))
    marker = tmp_path / "started"
    jid = make_job("stop", {"marker": str(marker)})
    executor.submit(jid, f"{ENTRY}:wait_for_stop")
    wait_for(marker)
    assert store.get_job(jid).state == "RUNNING"
    executor.stop(jid)
    record = executor.wait(jid, timeout=30)
    assert record.state == "STOPPED"


def test_stop_before_start_cancels_and_never_runs(dask_home: Path, tmp_path: Path) -> None:
    executor = DaskExecutor(get_environment("cluster"))
    jid = make_job("stop-early", {"marker": str(tmp_path / "never")})
    store.fire(jid, "queue")
    executor.stop(jid)
    assert store.get_job(jid).state == "STOPPED"
    executor._send(executor.client, jid, f"{ENTRY}:wait_for_stop")  # a late submission
    executor.client.run_on_scheduler(lambda dask_scheduler: None)
    assert not (tmp_path / "never").exists() or store.get_job(jid).state == "STOPPED"
    assert transitions(jid) == ["create", "queue", "stop"]


def _kill_worker_running(client: Any, marker: Path) -> int:
    pid = int(wait_for(marker))
    assert pid in client.run(os.getpid).values()
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("environment", ["cluster-rq", "cluster"])
def test_a_dead_worker_costs_only_its_task(
    dask_home: Path, tmp_path: Path, client: Any, environment: str
) -> None:
    executor = DaskExecutor(get_environment(environment))
    marker = tmp_path / "attempt"
    spec = {"marker": str(marker), "context": "scale", "bundle": f"out-{environment}"}
    jid = make_job(f"kill-{environment}", spec, environment)
    executor.submit(jid, f"{ENTRY}:once_then_bundle")
    killed = _kill_worker_running(client, Path(f"{marker}.1"))
    record = executor.wait(jid, timeout=90)
    with open_workspace().read() as conn:
        outputs = [b for b in queries.all_bundle_uuids(conn)]
    if environment == "cluster-rq":
        assert record.state == "FINISHED", record.error
        assert record.result is not None and record.result["attempt"] == 2
        assert int(Path(f"{marker}.2").read_text()) != killed
        assert "requeue" in transitions(jid)
        assert outputs == [record.result["uuid"]]  # the output bundle appears once
    else:
        assert record.state == "FAILED"
        assert record.error is not None and "worker lost" in record.error
        assert not Path(f"{marker}.2").exists()  # not run again
        assert outputs == []  # nothing half-written


def test_unreachable_scheduler_is_one_clear_error_and_nothing_is_queued(
    dask_home: Path,
) -> None:
    environment = parse_environment(
        {
            "id": "gone",
            "executor": "dask",
            "scheduler": "tcp://127.0.0.1:9",
            "connect_timeout_s": 0.5,
        },
        "test",
    )
    jid = make_job("gone", {"n": 1}, "gone")
    with pytest.raises(SchedulerUnreachable) as raised:
        DaskExecutor(environment).submit(jid, f"{ENTRY}:hello")
    assert "tcp://127.0.0.1:9" in str(raised.value) and "0.5 s" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert store.get_job(jid).state == "CREATED"
    info = dask_client.cluster_info(environment)
    assert info["status"] == "unreachable"


def test_a_module_the_workers_cannot_import_is_refused(
    dask_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_only = tmp_path / "only_here"
    local_only.mkdir()
    (local_only / "only_here_tasks.py").write_text("def job(ctx, spec):\n    return {}\n")
    monkeypatch.syspath_prepend(str(local_only))
    jid = make_job("local-only", {})
    with pytest.raises(WorkerNotReady) as raised:
        DaskExecutor(get_environment("cluster")).submit(jid, "only_here_tasks:job")
    assert "cannot import only_here_tasks" in str(raised.value)
    assert store.get_job(jid).state == "CREATED"


def test_unpicklable_params_are_refused() -> None:
    with pytest.raises(ParamNotPicklable, match="cannot be sent to a Dask worker"):
        check_picklable("parameter 'f'", lambda: None)


def test_env_ls_reads_workers_from_the_scheduler(dask_home: Path, cluster: Any) -> None:
    info = dask_client.cluster_info(get_environment("cluster"))
    assert info["status"] == "ok"
    assert info["workers"] == 2 and info["threads"] == 2
    assert info["memory_bytes"] > 0


@pytest.mark.parametrize(
    "body, message",
    [
        ({"executor": "dask"}, "exactly one of"),
        ({"executor": "dask", "scheduler": "localhost:8786"}, "use tcp://host:port"),
        ({"executor": "dask", "cluster": "not a path"}, "dotted path"),
        ({"executor": "dask", "cluster": "local", "cluster_kwargs": {"a": 1}}, "cluster_kwargs"),
        ({"executor": "dask", "cluster": "local", "n_workers": 0}, "n_workers"),
    ],
)
def test_bad_dask_environments_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidEnvironmentConfig, match=message):
        parse_environment({"id": "bad", **body}, "environments.yaml")
