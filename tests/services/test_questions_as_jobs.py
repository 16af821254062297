"""Questions are jobs: the job layer's states, guarded transitions, stop requests from other
processes, reconciliation of a question whose asker died, outputs published in one transaction.

Real worker processes, real asking processes (killed with SIGKILL where the test says so), a
real SQLite catalog (and PostgreSQL where the fixture is ``assay_home``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from service_helpers import FAST, local
from service_types import ServiceFactory

from assay import api
from assay.core.errors import ChildCrashed, InvalidTransition, QuestionCancelled
from assay.jobs import get_job, list_events
from assay.jobs import store as job_store
from assay.jobs.recorder import JobRecorder
from assay.services import Child, get_question
from assay.services import events as question_events

TWINE: dict[str, Any] = {}
SLEEPER = "import time\ndef run(analysis):\n    time.sleep(600)"


def _wait_running(question_uuid: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get_question(question_uuid).status == "running":
                return
        except Exception:  # not written yet
            time.sleep(0.02)
            continue
        time.sleep(0.02)
    raise AssertionError(f"question {question_uuid} never ran")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_question_is_a_job_of_kind_question(
    make_service: ServiceFactory, assay_home: Path
) -> None:
    folder = make_service("echo", "def run(analysis):\n    analysis.output_values = {'n': 1}")
    answer, question_uuid = Child("test/echo:1.0.0", backend=local(folder)).ask(timeout=60)
    assert answer["output_values"] == {"n": 1}
    job = get_job(question_uuid)
    assert (job.kind, job.state, job.pid) == ("question", "FINISHED", os.getpid())
    assert job.result == {"output_values": {"n": 1}, "output_manifest": None}
    transitions = [(e.event, e.from_state, e.to_state) for e in list_events(question_uuid)]
    assert transitions == [
        ("create", None, "CREATED"),
        ("run", "CREATED", "RUNNING"),
        ("finish", "RUNNING", "FINISHED"),
    ]
    assert [e.seq for e in list_events(question_uuid)] == [1, 2, 3]


def test_a_stop_request_from_another_process_stops_the_question(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    """No /proc matching: the other process sets the job's stop_requested column; the asker's
    supervisor, polling it, kills the worker and records STOPPED."""
    folder = make_service("sleeper", SLEEPER)
    child = Child("test/sleeper:1.0.0", backend=local(folder))
    _, question_uuid = child.ask(asynchronous=True, **FAST)
    _wait_running(question_uuid)
    worker_pid = get_question(question_uuid).details["worker_pid"]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from assay.services import Child; print(Child.cancel(sys.argv[1]))",
            question_uuid,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=30)
    assert get_job(question_uuid).state == "STOPPED"
    kinds = [e.kind for e in question_events.list_events(question_uuid)]
    assert kinds[-2:] == ["stop_request", "cancelled"]
    assert _gone(worker_pid)
    assert Child.cancel(question_uuid) is False


RACER = """
import os, subprocess, sys

def run(analysis):
    # Another process asks for this question to stop; as soon as it says the request is
    # recorded, the app answers. Both contenders have then acted: the race is real.
    canceller = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from assay.services import Child; print(Child.cancel(sys.argv[1]), flush=True)",
         os.environ["ASSAY_QUESTION_UUID"]],
        stdout=subprocess.PIPE, text=True,
    )
    said = canceller.stdout.readline().strip()
    with open(os.environ["RACE_MARKER"] + "." + os.environ["ASSAY_QUESTION_UUID"], "w") as f:
        f.write(said)
    analysis.output_values = {"answered": True}
"""


def test_a_cancel_racing_a_result_records_exactly_one_outcome(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process requests a stop while the app is answering. In an iteration where the
    app's answer was produced after the stop request (its marker file says the cancel returned
    True first), both contenders acted: the race happened. Whoever won, exactly one terminal
    transition is recorded and the asker reports that one. Iterations go on until a real race
    was seen (the other outcome, the stop winning before the answer exists, also counts)."""
    marker = tmp_path / "cancelled"
    monkeypatch.setenv("RACE_MARKER", str(marker))
    folder = make_service("racer", RACER)
    child = Child("test/racer:1.0.0", backend=local(folder))
    raced = 0
    outcomes = []
    for _ in range(8):
        _, question_uuid = child.ask(asynchronous=True, timeout=120)
        try:
            got: Any = Child.get_answer(question_uuid, timeout=120)
        except QuestionCancelled:
            got = "cancelled"
        job = get_job(question_uuid)
        events = list_events(question_uuid)
        terminal = [
            e
            for e in events
            if e.type == "transition"
            and e.to_state in ("FINISHED", "FAILED", "TIMED_OUT", "STOPPED")
        ]
        assert len(terminal) == 1, terminal  # exactly one outcome
        assert terminal[0].to_state == job.state and terminal[0].seq == events[-1].seq
        assert any(e.type == "stop_request" or e.event == "stop" for e in events)
        if job.state == "FINISHED":
            assert got == {"output_values": {"answered": True}, "output_manifest": None}
        else:
            assert job.state == "STOPPED" and got == "cancelled"
        outcomes.append(job.state)
        answered = Path(f"{marker}.{question_uuid}")
        if answered.exists() and answered.read_text() == "True":
            raced += 1
            if raced >= 2:
                break
    assert raced >= 1, f"no iteration raced a live stop request against an answer: {outcomes}"


def test_a_lost_transition_keeps_the_events_before_it(sqlite_home: Path) -> None:
    """The recorder's batched flush: a transition another writer pre-empted raises
    InvalidTransition, and the log events recorded before it are still written."""
    job_id = str(uuid.uuid4())
    recorder = JobRecorder(job_id)
    recorder.create("question", spec={}, write=True)
    recorder.add("log", {"message": "before the race"})
    job_store.request_stop(job_id)  # another writer: CREATED -> STOPPED at once
    with pytest.raises(InvalidTransition, match="STOPPED"):
        recorder.fire("run", flush=True)
    events = list_events(job_id)
    assert [(e.type, e.event) for e in events] == [
        ("transition", "create"),
        ("log", ""),
        ("transition", "stop"),
    ] or [(e.type, e.event) for e in events] == [
        ("transition", "create"),
        ("transition", "stop"),
        ("log", ""),
    ]
    assert get_job(job_id).state == "STOPPED"


ASKER = """
import sys
from assay.services import Child
child = Child("test/sleeper:1.0.0", backend={"name": "local", "path": sys.argv[1]})
child.ask(asynchronous=True, question_uuid=sys.argv[2], heartbeat_interval=0.1,
          maximum_heartbeat_interval=3.0)
print("asked", flush=True)
import time
time.sleep(600)
"""


def test_a_question_whose_asker_died_is_reconciled_and_waits_end(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("sleeper", SLEEPER)
    question_uuid = str(uuid.uuid4())
    asker = subprocess.Popen(
        [sys.executable, "-c", ASKER, str(folder), question_uuid],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert asker.stdout is not None and asker.stdout.readline().strip() == "asked"
        _wait_running(question_uuid)
        worker_pid = get_question(question_uuid).details["worker_pid"]
    finally:
        asker.kill()
        asker.wait()
    outcome: list[BaseException | dict[str, Any] | None] = []

    def wait() -> None:
        try:
            outcome.append(Child.get_answer(question_uuid, timeout=None))
        except BaseException as error:
            outcome.append(error)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(60)
    assert not waiter.is_alive(), "get_answer(timeout=None) must end when the asker died"
    (error,) = outcome
    assert isinstance(error, ChildCrashed)
    assert "died" in str(error)
    job = get_job(question_uuid)
    assert job.state == "FAILED" and "died" in (job.error or "")
    assert get_question(question_uuid).status == "crashed"
    assert _gone(worker_pid), "the orphaned worker stops itself (its asker's pipe is gone)"


OUTPUTS = """
import os
from assay.resources import Dataset, Manifest

def run(analysis):
    good = os.path.join(analysis.output_dir, "good")
    bad = os.path.join(analysis.output_dir, "bad")
    os.makedirs(good)
    os.makedirs(bad)
    with open(os.path.join(good, "a.txt"), "w") as f:
        f.write("kept only with its sibling")
    with open(os.path.join(bad, "b.txt"), "w") as f:
        f.write("b")
    analysis.output_manifest = Manifest({"good": Dataset(path=good), "bad": Dataset(path=bad)})
    if os.environ.get("BREAK_SECOND"):
        # Readable while the worker answers, gone when the asker publishes.
        os.remove(os.path.join(bad, "b.txt"))
        os.symlink("/nonexistent/b.txt", os.path.join(bad, "b.txt"))
"""


def test_output_datasets_are_published_in_one_transaction(
    make_service: ServiceFactory, sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_service("outputs", OUTPUTS, output_location="assay://results")
    child = Child("test/outputs:1.0.0", backend=local(folder))
    answer, question_uuid = child.ask(timeout=60)
    names = sorted(bundle.name for bundle in api.search("results"))
    assert names == ["outputs.bad", "outputs.good"]
    job = get_job(question_uuid)
    assert [e.event for e in list_events(question_uuid) if e.type == "transition"] == [
        "create",
        "run",
        "publish",
        "finish",
    ]
    assert set(answer["output_manifest"].keys()) == {"good", "bad"}
    assert job.result is not None and json.dumps(job.result).count("assay://results/") == 2

    monkeypatch.setenv("BREAK_SECOND", "1")
    with pytest.raises(Exception) as caught:
        child.ask(timeout=60)
    question = caught.value.question_uuid  # type: ignore[attr-defined]
    assert get_job(question).state == "FAILED"
    # The first dataset was fine, but nothing of this question reached the catalog.
    assert sorted(record.name for record in api.search("results")) == names
    assert all(record.tags.get("question_uuid") != question for record in api.search("results"))


def test_answers_of_asynchronous_questions_are_not_kept_for_ever(
    make_service: ServiceFactory, sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.services import child as child_module

    folder = make_service("echo", "def run(analysis):\n    analysis.output_values = {'n': 1}")
    child = Child("test/echo:1.0.0", backend=local(folder))
    _, fetched = child.ask(asynchronous=True, timeout=60)
    assert Child.get_answer(fetched, timeout=60)["output_values"] == {"n": 1}
    assert fetched not in child_module._futures  # fetched: dropped at once
    _, forgotten = child.ask(asynchronous=True, timeout=60)
    child_module._futures[forgotten][0].result(timeout=60)
    monkeypatch.setattr(child_module, "FUTURE_TTL", 0.0)
    time.sleep(0.01)
    child.ask(asynchronous=True, timeout=60)  # any later question prunes answers past the TTL
    assert forgotten not in child_module._futures
    # The answer is still in the catalog.
    assert Child.get_answer(forgotten, timeout=10)["output_values"] == {"n": 1}


def test_exception_types_are_rebuilt_only_from_the_allow_list() -> None:
    from assay.core.errors import ChildError
    from assay.jobs.payloads import allow_exception_modules, rebuild_exception

    before = set(sys.modules)
    error = rebuild_exception(
        {"type": "antigravity.Flying", "message": "up", "traceback": ""}, "somewhere"
    )
    assert type(error) is ChildError and "antigravity.Flying: up" in str(error)
    assert "antigravity" not in set(sys.modules) - before  # never imported on a worker's say-so
    loaded = rebuild_exception(
        {"type": "json.decoder.JSONDecodeError", "message": "x", "traceback": ""}, "somewhere"
    )
    assert type(loaded) is ChildError  # json is loaded, but not on the allow-list
    allow_exception_modules("json.")
    allowed = rebuild_exception(
        {"type": "builtins.KeyError", "message": "k", "traceback": "tb"}, "somewhere"
    )
    assert isinstance(allowed, KeyError) and isinstance(allowed, ChildError)


def test_the_job_worker_names_a_bad_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assay.jobs.worker", "no_such_module:run", "job"],
        input=json.dumps({"heartbeat_interval": 5}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["delivery", "exception"]
    assert "no_such_module" in lines[-1]["payload"]["message"]
    usage = subprocess.run(
        [sys.executable, "-m", "assay.jobs.worker"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_a_question_timing_out_while_its_worker_starts_ends_timed_out(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker slower to start than the question's timeout: the job goes CREATED ->
    PROVISIONING -> TIMED_OUT (TIMED_OUT is not reachable from CREATED in JOB_MACHINE)."""
    from assay.core.errors import QuestionTimeout

    slow_start = tmp_path / "slow-start"
    slow_start.mkdir()
    (slow_start / "sitecustomize.py").write_text("import time\ntime.sleep(5)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(slow_start), *sys.path]))
    folder = make_service("echo", "def run(analysis):\n    analysis.output_values = {}")
    with pytest.raises(QuestionTimeout) as caught:
        Child("test/echo:1.0.0", backend=local(folder)).ask(timeout=1, **FAST)
    question_uuid = caught.value.question_uuid  # type: ignore[attr-defined]
    assert get_question(question_uuid).status == "timed_out"
    assert [e.event for e in list_events(question_uuid) if e.type == "transition"] == [
        "create",
        "provision",
        "time_out",
    ]
