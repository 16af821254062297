"""The local executor with real processes: layout, limits, queue, stop, timeouts, on_exit."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from job_helpers import PYTHON, group_gone, log_text, new_job, script, transitions, wait_until

from assay.core.errors import InvalidInput, InvalidTransition, JobNotFound
from assay.jobs import store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor

OCEAN_ALGORITHM = """
import json, os, sys
inputs, outputs = os.environ["INPUTS"], os.environ["OUTPUTS"]
dids = json.loads(os.environ["DIDS"])
custom = json.load(open(os.path.join(inputs, "algoCustomData.json")))
total = 0
for did in dids:
    for root, _dirs, files in os.walk(os.path.join(inputs, did)):
        for name in files:
            total += len(open(os.path.join(root, name)).read().split())
with open(os.path.join(outputs, "result.json"), "w") as handle:
    json.dump({"dids": dids, "words": total, "custom": custom}, handle)
os.makedirs(os.path.join(outputs, "plots"))
open(os.path.join(outputs, "plots", "a.txt"), "w").write("plot")
print("counted", total, "words")
print("a warning", file=sys.stderr)
"""


@pytest.fixture
def local_env() -> Environment:
    return Environment(id="local", max_jobs=2, max_duration_s=60)


def _executor(environment: Environment, **kwargs: Any) -> LocalExecutor:
    return LocalExecutor(environment, stop_poll_s=0.05, heartbeat_s=0.5, **kwargs)


def test_an_ocean_style_algorithm_runs_unchanged(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.txt").write_text("one two three")
    single = tmp_path / "single.txt"
    single.write_text("four five")
    algorithm = script(tmp_path / "algo", "count.py", OCEAN_ALGORITHM)
    jid = new_job("ocean")
    workdir = tmp_path / "jobs" / jid
    with _executor(local_env) as executor:
        executor.submit(
            jid,
            [PYTHON, str(algorithm)],
            workdir=workdir,
            inputs={"dataset-1": data, "dataset-2": single},
            custom_data={"threshold": 3},
        )
        record = executor.wait(jid, timeout=60)
    assert record.state == "FINISHED", record.error
    assert record.result == {"returncode": 0, "outputs": ["plots/a.txt", "result.json"]}
    result = json.loads((workdir / "outputs" / "result.json").read_text())
    assert result == {"dids": ["dataset-1", "dataset-2"], "words": 5, "custom": {"threshold": 3}}
    assert (workdir / "inputs" / "dataset-2" / "single.txt").read_text() == "four five"
    assert (
        not os.access(workdir / "inputs" / "dataset-1" / "sub" / "a.txt", os.W_OK)
        or os.geteuid() == 0
    )
    assert "counted 5 words" in (workdir / "logs" / "algorithm.log").read_text()
    assert "counted 5 words" in log_text(jid) and "a warning" in log_text(jid)
    assert transitions(record) == ["create", "queue", "provision", "run", "finish"]
    assert record.pgid is not None and group_gone(record.pgid)
    assert data.joinpath("sub", "a.txt").read_text() == "one two three"  # inputs untouched


def test_any_argv_runs_and_writing_nothing_finishes_with_no_outputs(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    shell, quiet = new_job("shell"), new_job("quiet")
    with _executor(local_env) as executor:
        executor.submit(
            shell, ["/bin/sh", "-c", 'echo "$DIDS" > "$OUTPUTS/dids"'], workdir=tmp_path / "a"
        )
        executor.submit(quiet, [PYTHON, "-c", "pass"], workdir=tmp_path / "b")
        first, second = executor.wait(shell, 60), executor.wait(quiet, 60)
    assert first.state == "FINISHED" and (tmp_path / "a" / "outputs" / "dids").read_text() == "[]\n"
    assert second.state == "FINISHED" and second.result == {"returncode": 0, "outputs": []}


def test_a_crashing_algorithm_fails_with_its_exit_and_last_line(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    crash = script(tmp_path, "crash.py", "raise RuntimeError('the algorithm broke')")
    jid, ok_job = new_job("crash"), new_job("ok")
    with _executor(local_env) as executor:
        executor.submit(jid, [PYTHON, str(crash)], workdir=tmp_path / "crash")
        executor.submit(ok_job, [PYTHON, "-c", "pass"], workdir=tmp_path / "ok")
        record = executor.wait(jid, 60)
        other = executor.wait(ok_job, 60)
    assert record.state == "FAILED"
    assert record.error == (
        "the job's process exited with code 1: RuntimeError: the algorithm broke"
    )
    assert other.state == "FINISHED"  # one job's crash leaves the others alone


def test_memory_limit_fails_inside_the_job(assay_home: Path, tmp_path: Path) -> None:
    hog = script(tmp_path, "hog.py", "block = bytearray(2 * 1024**3)\nprint('allocated')")
    env = Environment(id="local", ram_gb=0.5, max_duration_s=60)
    jid = new_job("hog")
    with _executor(env) as executor:
        executor.submit(jid, [PYTHON, str(hog)], workdir=tmp_path / "hog")
        record = executor.wait(jid, 60)
    assert record.state == "FAILED" and "MemoryError" in (record.error or "")
    assert "allocated" not in log_text(jid)


def test_wall_clock_limit_ends_timed_out_and_kills_the_group(
    assay_home: Path, tmp_path: Path
) -> None:
    # The job starts a grandchild in its group; both must be gone after the timeout.
    sleeper = script(
        tmp_path,
        "sleeper.py",
        """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("started", flush=True)
        time.sleep(600)
        """,
    )
    env = Environment(id="local", max_duration_s=1.0)
    jid = new_job("slow")
    with _executor(env) as executor:
        executor.submit(jid, [PYTHON, str(sleeper)], workdir=tmp_path / "slow")
        record = executor.wait(jid, 60)
    assert record.state == "TIMED_OUT"
    assert record.error == "ran past max_duration_s=1 of environment 'local'"
    assert record.pgid is not None and group_gone(record.pgid)
    assert record.finished is not None and record.started is not None
    assert record.finished - record.started >= 1.0


def test_max_jobs_queues_fifo_and_never_refuses(assay_home: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    started.mkdir()
    waiter = script(
        tmp_path,
        "waiter.py",
        f"""
        import os, pathlib, time
        pathlib.Path({str(started)!r}, os.environ["ASSAY_JOB_ID"]).write_text(str(time.time()))
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.01)
        """,
    )
    env = Environment(id="local", max_jobs=1, max_duration_s=120)
    ids = [new_job(f"q{i}") for i in range(3)]
    with _executor(env) as executor:
        for i, jid in enumerate(ids):
            executor.submit(jid, [PYTHON, str(waiter)], workdir=tmp_path / f"w{i}")
        wait_until(lambda: (started / ids[0]).exists(), "the first job to start")
        states = [store.get_job(jid).state for jid in ids]
        assert states == ["RUNNING", "QUEUED", "QUEUED"]
        assert executor.queued() == ids[1:]
        gate.touch()
        records = [executor.wait(jid, 60) for jid in ids]
    assert [r.state for r in records] == ["FINISHED"] * 3
    starts = [float((started / jid).read_text()) for jid in ids]
    assert starts == sorted(starts)  # first in, first started
    # Never two at once: each started after the previous one finished.
    for before, after in itertools.pairwise(records):
        assert after.started is not None and before.finished is not None
        assert after.started >= before.finished


def test_stop_from_another_process_kills_the_group(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    from helpers import run_python

    marker = tmp_path / "running"
    looper = script(
        tmp_path,
        "looper.py",
        f"""
        import pathlib, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path({str(marker)!r}).touch()
        time.sleep(600)
        """,
    )
    jid = new_job("stoppable")
    with _executor(local_env) as executor:
        executor.submit(jid, [PYTHON, str(looper)], workdir=tmp_path / "loop")
        wait_until(marker.exists, "the job to run")
        result = run_python(
            "import sys; from assay.jobs import store; store.request_stop(sys.argv[1])", jid
        )
        assert result.returncode == 0, result.stderr
        record = executor.wait(jid, 60)
    assert record.state == "STOPPED" and record.error is None
    assert record.pgid is not None and group_gone(record.pgid)
    events = store.list_events(jid)
    assert [e.type for e in events if e.type != "log"][-2:] == ["stop_request", "transition"]
    with pytest.raises(InvalidTransition, match="already STOPPED"):
        store.request_stop(jid)


def test_stop_of_a_queued_job_never_starts_it(assay_home: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    blocker = script(
        tmp_path,
        "block.py",
        f"import pathlib, time\nwhile not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.01)",
    )
    env = Environment(id="local", max_jobs=1, max_duration_s=60)
    first, second = new_job("first"), new_job("second")
    with _executor(env) as executor:
        executor.submit(first, [PYTHON, str(blocker)], workdir=tmp_path / "first")
        executor.submit(second, [PYTHON, "-c", "open('ran', 'w')"], workdir=tmp_path / "second")
        wait_until(lambda: store.get_job(first).state == "RUNNING", "the first job to run")
        assert store.request_stop(second).state == "STOPPED"
        gate.touch()
        assert executor.wait(first, 60).state == "FINISHED"
        wait_until(lambda: executor.queued() == [], "the stopped job to leave the queue")
    assert store.get_job(second).state == "STOPPED"
    assert not (tmp_path / "second" / "ran").exists()
    assert transitions(store.get_job(second)) == ["create", "queue", "stop"]


def test_on_exit_publishes_before_finishing(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    seen: list[tuple[str, int, Path, str]] = []

    def publish(job_id: str, returncode: int, workdir: Path) -> dict[str, Any]:
        seen.append((job_id, returncode, workdir, store.get_job(job_id).state))
        return {"published": sorted(p.name for p in (workdir / "outputs").iterdir())}

    jid = new_job("publish")
    with _executor(local_env, on_exit=publish) as executor:
        executor.submit(jid, ["/bin/sh", "-c", 'echo x > "$OUTPUTS/o.txt"'], workdir=tmp_path / "p")
        record = executor.wait(jid, 60)
    assert seen == [(jid, 0, (tmp_path / "p").absolute(), "PUBLISHING")]
    assert record.state == "FINISHED" and record.result is not None
    assert record.result["published"] == ["o.txt"]
    assert transitions(record) == ["create", "queue", "provision", "run", "publish", "finish"]


def test_a_failing_on_exit_fails_the_job(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    def publish(job_id: str, returncode: int, workdir: Path) -> None:
        raise OSError("disk full while publishing")

    jid = new_job("bad-publish")
    with _executor(local_env, on_exit=publish) as executor:
        executor.submit(jid, [PYTHON, "-c", "pass"], workdir=tmp_path / "bp")
        record = executor.wait(jid, 60)
    assert record.state == "FAILED"
    assert record.error == "on_exit: OSError: disk full while publishing"


def test_bad_submissions_change_nothing(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    jid = new_job("bad")
    other_env = new_job("elsewhere", environment="gpu")
    with _executor(local_env) as executor:
        with pytest.raises(InvalidInput, match="non-empty"):
            executor.submit(jid, [], workdir=tmp_path / "x")
        with pytest.raises(InvalidInput, match="input key"):
            executor.submit(jid, ["true"], workdir=tmp_path / "x", inputs={"../up": tmp_path})
        with pytest.raises(InvalidInput, match="does not exist"):
            executor.submit(jid, ["true"], workdir=tmp_path / "x", inputs={"a": tmp_path / "nope"})
        with pytest.raises(InvalidInput, match="belongs to environment 'gpu'"):
            executor.submit(other_env, ["true"], workdir=tmp_path / "x")
        with pytest.raises(JobNotFound):
            executor.submit("no-such-job", ["true"], workdir=tmp_path / "x")
    assert store.get_job(jid).state == "CREATED" and store.get_job(other_env).state == "CREATED"
    assert not (tmp_path / "x").exists()


def test_an_argv_that_cannot_start_fails(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    jid = new_job("missing")
    with _executor(local_env) as executor:
        executor.submit(jid, [str(tmp_path / "no-such-program")], workdir=tmp_path / "m")
        record = executor.wait(jid, 60)
    assert record.state == "FAILED" and "cannot start" in (record.error or "")


def test_submitting_a_finished_job_is_refused(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    jid = new_job("done")
    store.fire(jid, "run")
    store.fire(jid, "finish")
    with _executor(local_env) as executor, pytest.raises(InvalidTransition, match="FINISHED"):
        executor.submit(jid, ["true"], workdir=tmp_path / "d")


def test_heartbeats_continue_while_on_exit_publishes(
    assay_home: Path, tmp_path: Path, local_env: Environment
) -> None:
    beats: list[float] = []

    def slow_publish(job_id: str, returncode: int, workdir: Path) -> None:
        first = store.get_job(job_id).last_seen
        assert first is not None
        wait_until(lambda: (store.get_job(job_id).last_seen or 0) > first, "a heartbeat")
        beats.append(store.get_job(job_id).last_seen or 0)

    jid = new_job("slow-publish")
    with LocalExecutor(local_env, heartbeat_s=0.05, on_exit=slow_publish) as executor:
        executor.submit(jid, [PYTHON, "-c", "pass"], workdir=tmp_path / "sp")
        record = executor.wait(jid, 60)
    assert record.state == "FINISHED" and beats
