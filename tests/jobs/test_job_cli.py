"""``assay jobs ...`` and ``assay env ls`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from job_helpers import PYTHON, new_job, script, wait_until
from typer.testing import CliRunner

from assay.cli.main import app
from assay.jobs import store
from assay.jobs.environments import Environment
from assay.jobs.executors.local import LocalExecutor
from assay.jobs.fsm import JOB_MACHINE
from helpers import start_python


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, stderr: str, exit_code: int, *fragments: str) -> None:
    assert code == exit_code, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def finished_job(assay_home: Path, tmp_path: Path) -> str:
    jid = new_job("cli")
    algorithm = script(tmp_path, "talk.py", "print('hello from the job')\nprint('second line')")
    with LocalExecutor(Environment(id="local", max_duration_s=60)) as executor:
        executor.submit(jid, [PYTHON, str(algorithm)], workdir=tmp_path / "w")
        assert executor.wait(jid, 60).state == "FINISHED"
    return jid


def test_ls_status_events_logs(finished_job: str) -> None:
    code, out, err = cli("jobs", "ls", "--json")
    assert code == 0 and err == ""
    (listed,) = json.loads(out)
    assert listed["job_id"] == finished_job and listed["state"] == "FINISHED"
    assert "launch" not in listed

    code, out, _ = cli("jobs", "ls")
    assert code == 0 and finished_job[:8] in out and "FINISHED" in out
    code, out, _ = cli("jobs", "ls", "--state", "running", "--json")
    assert json.loads(out) == []

    code, out, _ = cli("jobs", "status", finished_job[:10], "--json")
    status = json.loads(out)
    assert code == 0 and status["state"] == "FINISHED" and status["state_code"] == 70
    assert status["result"] == {"returncode": 0, "outputs": []}
    code, out, _ = cli("jobs", "status", finished_job)
    assert code == 0 and "FINISHED (70)" in out

    code, out, _ = cli("jobs", "events", finished_job, "--json")
    events = json.loads(out)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["event"] for e in events if e["type"] == "transition"] == [
        "create",
        "queue",
        "provision",
        "run",
        "finish",
    ]
    code, out, _ = cli("jobs", "events", finished_job, "--type", "log")
    assert code == 0 and "hello from the job" in out and "QUEUED" not in out

    code, out, _ = cli("jobs", "logs", finished_job)
    assert code == 0 and out == "hello from the job\nsecond line\n"
    code, out, _ = cli("jobs", "logs", finished_job, "--json")
    assert [e["payload"]["message"] for e in json.loads(out)] == [
        "hello from the job",
        "second line",
    ]


def test_unknown_job_and_stop_of_a_finished_job(finished_job: str) -> None:
    code, out, err = cli("jobs", "status", "0000nope")
    one_line_error(code, err, 3, "no job 0000nope")
    code, out, err = cli("jobs", "status", "0000nope", "--json")
    assert json.loads(out)["error"]["code"] == "job_not_found"
    before = store.list_events(finished_job)
    code, out, err = cli("jobs", "stop", finished_job)
    one_line_error(code, err, 4, "already FINISHED")
    assert store.get_job(finished_job).state == "FINISHED"
    assert store.list_events(finished_job) == before
    for command in ("logs", "events", "stop"):
        code, _, err = cli("jobs", command, "0000nope")
        one_line_error(code, err, 3, "no job")


def test_stop_a_running_job_from_the_cli(assay_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "running"
    looper = script(
        tmp_path,
        "loop.py",
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(600)",
    )
    jid = new_job("cli-stop")
    with LocalExecutor(Environment(id="local", max_duration_s=120), stop_poll_s=0.05) as executor:
        executor.submit(jid, [PYTHON, str(looper)], workdir=tmp_path / "w")
        wait_until(marker.exists, "the job to run")
        code, out, err = cli("jobs", "stop", jid, "--json")
        assert code == 0, err
        assert json.loads(out)["stop_requested"] is True
        assert executor.wait(jid, 60).state == "STOPPED"


def test_logs_follow_prints_lines_as_they_come_until_the_end(
    assay_home: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    talker = script(
        tmp_path,
        "talk.py",
        f"""
        import pathlib, time
        print("before the gate", flush=True)
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.01)
        print("after the gate", flush=True)
        """,
    )
    jid = new_job("follow")
    with LocalExecutor(Environment(id="local", max_duration_s=120), log_poll_s=0.05) as executor:
        executor.submit(jid, [PYTHON, str(talker)], workdir=tmp_path / "w")
        follower = start_python(
            "import sys\nfrom assay.cli.main import main\n"
            "sys.exit(main(['jobs', 'logs', '--follow', sys.argv[1]]))",
            jid,
        )
        assert follower.stdout is not None
        first = follower.stdout.readline()  # arrives while the job still waits at the gate
        assert first == "before the gate\n"
        assert store.get_job(jid).state == "RUNNING"
        gate.touch()
        rest, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert rest == "after the gate\n"


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "json", "markdown"])
def test_fsm_formats(assay_home: Path, fmt: str) -> None:
    code, out, err = cli("jobs", "fsm", "--format", fmt)
    assert code == 0, err
    expected = {
        "mermaid": JOB_MACHINE.to_mermaid(),
        "dot": JOB_MACHINE.to_dot(),
        "markdown": JOB_MACHINE.states_table(),
    }
    if fmt == "json":
        assert json.loads(out) == JOB_MACHINE.as_dict()
    else:
        assert out == expected[fmt]


def test_fsm_bad_input(assay_home: Path) -> None:
    code, _, err = cli("jobs", "fsm", "--kind", "nope")
    one_line_error(code, err, 3, "no state machine named 'nope'")
    code, _, err = cli("jobs", "fsm", "--format", "png")
    one_line_error(code, err, 2, "--format 'png'")


def test_env_ls_counts_running_and_queued(assay_home: Path, tmp_path: Path) -> None:
    code, out, _ = cli("env", "ls", "--json")
    (local,) = json.loads(out)
    assert code == 0 and local["id"] == "local" and local["status"] == "ok"
    assay_home.mkdir(parents=True, exist_ok=True)
    (assay_home / "environments.yaml").write_text(
        "environments:\n  - id: one\n    max_jobs: 1\n    max_duration_s: 120\n"
        "  - id: paid\n    price_min: 2\n"
    )
    gate = tmp_path / "gate"
    waiter = script(
        tmp_path,
        "wait.py",
        f"import pathlib, time\nwhile not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.01)",
    )
    ids = [new_job(f"env-{i}", environment="one") for i in range(3)]
    environment = Environment(id="one", max_jobs=1, max_duration_s=120)
    with LocalExecutor(environment) as executor:
        for i, jid in enumerate(ids):
            executor.submit(jid, [PYTHON, str(waiter)], workdir=tmp_path / f"w{i}")
        wait_until(lambda: store.get_job(ids[0]).state == "RUNNING", "the first job to run")
        code, out, _ = cli("env", "ls", "--json")
        by_id = {item["id"]: item for item in json.loads(out)}
        assert sorted(by_id) == ["one", "paid"]
        assert (by_id["one"]["running"], by_id["one"]["queued"]) == (1, 2)
        assert by_id["one"]["last_seen"] is not None and by_id["paid"]["price_min"] == 2
        code, out, _ = cli("env", "ls")
        assert code == 0 and "one" in out and "paid" in out
        gate.touch()
        for jid in ids:
            executor.wait(jid, 60)


def test_env_ls_with_a_malformed_file(assay_home: Path) -> None:
    assay_home.mkdir(parents=True, exist_ok=True)
    path = assay_home / "environments.yaml"
    path.write_text("environments:\n  - id: a\n    max_jobs: lots\n")
    code, _, err = cli("env", "ls")
    one_line_error(code, err, 2, f"{path}:3:", "max_jobs must be a whole number")
    assert path.read_text() == "environments:\n  - id: a\n    max_jobs: lots\n"
