"""The scheduler dies mid-run (a LocalCluster in a subprocess, killed with its process group):
reconciliation leaves nothing RUNNING. And ``assay env ls`` reads the scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import HERE, SRC, needs_dask, wait_for, write_environments
from typer.testing import CliRunner

from assay.cli.main import app
from assay.jobs import ids, store
from assay.jobs.environments import get_environment
from assay.jobs.executors.dask import DaskExecutor, reconcile_dask

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]

CLUSTER_SCRIPT = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                       dashboard_address=None, resources={"CPU": 1})
open(sys.argv[1] + ".tmp", "w").write(cluster.scheduler_address)
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(3600)
"""


@pytest.fixture
def doomed_scheduler(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    address_file = tmp_path / "scheduler-address"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(SRC)])
    process = subprocess.Popen(
        [sys.executable, "-c", CLUSTER_SCRIPT, str(address_file)],
        env=env,
        start_new_session=True,
    )
    try:
        yield wait_for(address_file, timeout=90), process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("requeue", [False, True])
def test_a_killed_scheduler_leaves_nothing_running(
    dask_home: Path,
    tmp_path: Path,
    doomed_scheduler: tuple[str, subprocess.Popen[bytes]],
    requeue: bool,
) -> None:
    address, process = doomed_scheduler
    write_environments(
        dask_home,
        f"""environments:
  - id: doomed
    executor: dask
    scheduler: {address}
    connect_timeout_s: 1
    requeue: {"true" if requeue else "false"}
""",
    )
    executor = DaskExecutor(get_environment("doomed"))
    marker = tmp_path / "started"
    jid = ids.job_id("doomed", requeue)
    store.create_job("compute", jid, spec={"marker": str(marker)}, environment="doomed")
    executor.submit(jid, "dask_jobfns:wait_for_stop")
    wait_for(marker)
    assert store.get_job(jid).state == "RUNNING"
    os.killpg(process.pid, signal.SIGKILL)  # scheduler, nanny and worker at once
    process.wait()
    # This process's client of the dead scheduler is still cached: reconciliation copes.
    changed = reconcile_dask()
    assert [r.job_id for r in changed] == [jid]
    record = store.get_job(jid)
    if requeue:
        assert record.state == "QUEUED"  # waits for the scheduler to come back
    else:
        assert record.state == "FAILED"
        assert record.error is not None and "scheduler is gone" in record.error
    assert store.list_jobs(state="RUNNING") == []


def test_env_ls_shows_workers_threads_memory_and_unreachable(dask_home: Path, cluster: Any) -> None:
    write_environments(
        dask_home,
        f"""environments:
  - id: cluster
    executor: dask
    scheduler: {cluster.scheduler_address}
  - id: gone
    executor: dask
    scheduler: tcp://127.0.0.1:9
    connect_timeout_s: 0.5
""",
    )
    result = CliRunner().invoke(app, ["env", "ls", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert rows["cluster"]["status"] == "ok"
    assert rows["cluster"]["cluster"]["workers"] == 2
    assert rows["cluster"]["cluster"]["threads"] == 2
    assert rows["gone"]["status"] == "unreachable"
    table = CliRunner().invoke(app, ["env", "ls"], env={"COLUMNS": "250"}, catch_exceptions=False)
    assert "unreachable" in table.output


@pytest.mark.parametrize("environment", ["cluster", "cluster-rq"])
def test_a_job_the_live_scheduler_does_not_hold_is_failed_or_resubmitted(
    dask_home: Path, environment: str
) -> None:
    """After a scheduler restart the new scheduler holds none of the old keys: a RUNNING job
    (its attempt lost with the old scheduler) is FAILED, or re-queued and run again."""
    jid = ids.job_id("lost", environment)
    store.create_job("compute", jid, spec={"n": 4}, environment=environment)
    launch = json.dumps({"executor": "dask", "entry": "dask_jobfns:hello"})
    store.fire(jid, "queue", fields={"launch": launch})
    store.fire(jid, "run", fields={"pid": 999999, "host": "gone-worker"})
    changed = reconcile_dask()
    assert [r.job_id for r in changed] == [jid]
    executor = DaskExecutor(get_environment(environment))
    record = executor.wait(jid, timeout=60)
    if environment == "cluster-rq":
        assert record.state == "FINISHED" and record.result is not None
        assert record.result["doubled"] == 8
        events = [e.event for e in store.list_events(jid) if e.type == "transition"]
        assert events == ["create", "queue", "run", "requeue", "run", "finish"]
    else:
        assert record.state == "FAILED"
        assert record.error is not None and "no longer holds its task" in record.error
