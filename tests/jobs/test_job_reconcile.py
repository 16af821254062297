"""Restart safety with real processes: a supervisor killed with SIGKILL mid-job leaves no
running job and no orphan process once the next scheduling process starts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from job_helpers import group_gone, script, transitions, wait_until

from assay.jobs import process, store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor
from assay.jobs.ids import job_id
from assay.jobs.reconcile import reconcile
from helpers import run_python, start_python

#: The job: starts a grandchild in its process group, records both pids, then sleeps.
JOB = """
import json, os, pathlib, subprocess, sys, time
pids = pathlib.Path(sys.argv[1])
if pids.exists():  # a re-queued second run: finish at once
    open(os.path.join(os.environ["OUTPUTS"], "second-run.txt"), "w").write("ok")
    sys.exit(0)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
partial = pids.with_suffix(".part")  # written whole, then renamed: never read half-written
partial.write_text(json.dumps({"leader": os.getpid(), "grandchild": child.pid}))
partial.rename(pids)
time.sleep(600)
"""

#: The supervising process: queue the job on a local executor, then wait to be killed.
SUPERVISOR = """
import sys, time
from pathlib import Path
from assay.jobs import store
from assay.jobs.environments import get_environment
from assay.jobs.executors.local import LocalExecutor
job, script, pids, workdir = sys.argv[1:5]
store.create_job("compute", job, spec={})
executor = LocalExecutor(get_environment("local"))
executor.submit(job, [sys.executable, script, pids], workdir=Path(workdir))
time.sleep(600)
"""


def _kill_supervisor_mid_job(tmp_path: Path, name: str) -> tuple[str, dict[str, int], int]:
    jid = job_id("reconcile", name)
    job_script = script(tmp_path / "algo", "job.py", JOB)
    pids_file = tmp_path / f"{name}-pids.json"
    supervisor = start_python(
        SUPERVISOR, jid, str(job_script), str(pids_file), str(tmp_path / "work" / name)
    )
    try:
        wait_until(pids_file.exists, "the job to start its processes")
    finally:
        supervisor.kill()  # SIGKILL: no cleanup code runs in the supervisor
        supervisor.communicate(timeout=60)
    assert supervisor.returncode == -signal.SIGKILL
    pids = json.loads(pids_file.read_text())
    record = store.get_job(jid)
    assert record.state == "RUNNING" and record.pid == supervisor.pid
    assert record.pgid == pids["leader"]
    return jid, pids, supervisor.pid


def test_kill_9_of_the_supervisor_fails_the_job_and_leaves_no_orphan(
    assay_home: Path, tmp_path: Path
) -> None:
    jid, pids, supervisor_pid = _kill_supervisor_mid_job(tmp_path, "fail")
    # The job's leader dies with its supervisor (PR_SET_PDEATHSIG) ...
    wait_until(lambda: not process.pid_alive(pids["leader"]), "the job leader to die")
    # ... but a grandchild it started is still there until a scheduling process starts.
    assert process.pid_alive(pids["grandchild"])
    assert store.get_job(jid).state == "RUNNING"

    # The next scheduling process: a fresh interpreter that builds a local executor.
    result = run_python(
        "from assay.jobs.environments import get_environment\n"
        "from assay.jobs.executors.local import LocalExecutor\n"
        "LocalExecutor(get_environment('local')).close()\n"
    )
    assert result.returncode == 0, result.stderr
    record = store.get_job(jid)
    assert record.state == "FAILED"
    assert record.error == (
        f"supervisor died: its supervising process {supervisor_pid} on {store.HOST} is gone"
    )
    wait_until(lambda: not process.pid_alive(pids["grandchild"]), "the grandchild to be killed")
    assert record.pgid is not None and group_gone(record.pgid)
    last = store.list_events(jid)[-1]
    assert last.event == "fail" and last.payload["killed_pids"] == [pids["grandchild"]]


def test_requeue_environment_runs_the_job_again(assay_home: Path, tmp_path: Path) -> None:
    assay_home.mkdir(parents=True, exist_ok=True)
    (assay_home / "environments.yaml").write_text(
        "environments:\n  - id: local\n    requeue: true\n    max_duration_s: 120\n"
    )
    jid, pids, _ = _kill_supervisor_mid_job(tmp_path, "requeue")
    environment = Environment(id="local", requeue=True, max_duration_s=120)
    with LocalExecutor(environment) as executor:  # reconciles, then adopts the re-queued job
        record = executor.wait(jid, 60)
    assert record.state == "FINISHED", record.error
    assert record.result == {"returncode": 0, "outputs": ["second-run.txt"]}
    assert transitions(record) == [
        "create",
        "queue",
        "provision",
        "run",
        "requeue",
        "provision",
        "run",
        "finish",
    ]
    assert not process.pid_alive(pids["grandchild"])


def test_stale_heartbeat_from_another_host_fails_the_job(assay_home: Path) -> None:
    names = ("stale", "fresh", "mine", "mine-stale")
    stale, fresh, mine, mine_stale = (job_id("stale", n) for n in names)
    for jid in (stale, fresh, mine, mine_stale):
        store.create_job("compute", jid, spec={})
    now = time.time()
    here = {"pid": os.getpid(), "host": store.HOST}
    store.fire(stale, "run", fields={"pid": 1, "host": "elsewhere", "last_seen": now - 120})
    store.fire(fresh, "run", fields={"pid": 1, "host": "elsewhere", "last_seen": now})
    store.fire(mine, "run", fields={**here, "last_seen": now})
    store.fire(mine_stale, "run", fields={**here, "last_seen": now - 999})
    changed = reconcile(stale_after_s=30)
    assert sorted(r.job_id for r in changed) == sorted([stale, mine_stale])
    record = store.get_job(stale)
    assert record.state == "FAILED" and "no heartbeat from its supervisor (1 on elsewhere)" in (
        record.error or ""
    )
    # A live supervisor (even this process) that stopped beating is not trusted either.
    assert store.get_job(mine_stale).state == "FAILED"
    assert store.get_job(fresh).state == "RUNNING" and store.get_job(mine).state == "RUNNING"
    assert reconcile(stale_after_s=30) == []  # idempotent


def test_a_job_queued_by_a_dead_process_fails(assay_home: Path) -> None:
    jid = job_id("queued-dead")
    result = run_python(
        "import sys, os\n"
        "from assay.jobs import store\n"
        "store.create_job('compute', sys.argv[1], spec={})\n"
        "store.fire(sys.argv[1], 'queue', fields=store.this_process())\n",
        jid,
    )
    assert result.returncode == 0, result.stderr
    assert store.get_job(jid).state == "QUEUED"
    (failed,) = reconcile()
    assert failed.job_id == jid and failed.state == "FAILED"
    assert "is gone" in (failed.error or "")


def test_inline_jobs_heartbeat_so_reconcile_leaves_them_alone(assay_home: Path) -> None:
    from assay.jobs.runner import JobContext, run_inline

    jid = job_id("inline-alive")
    store.create_job("pipeline_task", jid, spec={})
    beats: list[float | None] = []

    def work(ctx: JobContext) -> None:
        first = store.get_job(jid).last_seen
        wait_until(lambda: store.get_job(jid).last_seen != first, "a heartbeat")
        beats.append(store.get_job(jid).last_seen)
        # Another process reconciling now sees a live supervisor and a fresh heartbeat.
        other = run_python(
            "from assay.jobs.reconcile import reconcile\nprint(len(reconcile(stale_after_s=5)))\n"
        )
        assert other.stdout.strip() == "0", other.stderr

    record = run_inline(jid, work, heartbeat_interval=0.05)
    assert record.state == "FINISHED" and beats


def test_a_reused_pgid_of_an_unrelated_process_is_never_killed(assay_home: Path) -> None:
    import subprocess
    import sys

    # An unrelated process group (no job marker) whose number a dead job recorded as its own.
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        jid = job_id("reused-pgid")
        store.create_job("compute", jid, spec={})
        dead = run_python("import os; print(os.getpid())")
        store.fire(
            jid,
            "run",
            fields={"pid": int(dead.stdout), "host": store.HOST, "pgid": stranger.pid},
        )
        (failed,) = reconcile()
        assert failed.state == "FAILED"
        assert store.list_events(jid)[-1].payload["killed_pids"] == []
        assert stranger.poll() is None and process.pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()
