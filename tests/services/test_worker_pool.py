"""Reusable pool workers (ASSAY_WORKER_POOL=N): real worker processes answering many questions.

A worker is reused only after a clean result; one that raised, crashed, timed out or was
cancelled is killed; a code change gets a new worker; pool workers die with their parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import FAST, local
from service_types import ServiceFactory

from assay.core.errors import ChildCrashed, QuestionCancelled, QuestionNotFound, QuestionTimeout
from assay.jobs import get_job
from assay.services import Child, QuestionRecord, get_question, list_events, list_questions
from assay.services.child import _cancel_elsewhere
from assay.services.local import close_pool, pool_pids

TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
    },
}

# Module-level state survives between questions in a reused worker (the documented trade-off);
# reading stdin must not take the worker's next question.
COUNTING_APP = """
import logging, os, sys, time
logger = logging.getLogger(__name__)
ANSWERED = []

def run(analysis):
    n = analysis.input_values["n"]
    ANSWERED.append(n)
    logger.info("question %d", n)
    print("printed", n)
    analysis.send_monitor_message({"n": n})
    if n == 91:
        raise ValueError("ninety-one")
    if n == 92:
        os._exit(5)
    if n == 93:
        time.sleep(600)
    analysis.output_values = {
        "pid": os.getpid(), "answered": list(ANSWERED), "stdin": sys.stdin.read(),
        "mark": os.environ.get("MARK"),
    }
"""


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch, sqlite_home: Path) -> Iterator[None]:
    monkeypatch.setenv("ASSAY_WORKER_POOL", "1")
    try:
        yield
    finally:
        close_pool()


@pytest.fixture
def counter(make_service: ServiceFactory) -> Child:
    folder = make_service("counter", COUNTING_APP, TWINE)
    return Child("test/counter:1.0.0", backend=local(folder))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet) counts as gone
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _gone(pids: list[int], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _pid(question_uuid: str) -> int:
    pid = get_question(question_uuid).details["worker_pid"]
    assert isinstance(pid, int)
    return pid


def test_one_worker_answers_many_questions_and_stores_every_event(
    pooled: None, counter: Child, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages: list[object] = []
    answers = []
    for n, mark in enumerate(["a", "b", "c"]):
        monkeypatch.setenv("MARK", mark)  # each question takes the asker's environment
        answer, question_uuid = counter.ask(
            input_values={"n": n}, handle_monitor_message=messages.append, timeout=60
        )
        answers.append((answer["output_values"], question_uuid))
    pids = {values["pid"] for values, _ in answers}
    assert len(pids) == 1
    assert [values["answered"] for values, _ in answers] == [[0], [0, 1], [0, 1, 2]]
    assert [values["mark"] for values, _ in answers] == ["a", "b", "c"]
    assert all(values["stdin"] == "" for values, _ in answers)
    assert messages == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert pids <= set(pool_pids())
    for n, (values, question_uuid) in enumerate(answers):
        record = get_question(question_uuid)
        assert record.status == "succeeded"
        assert record.details["worker_pid"] == values["pid"]
        assert record.details["worker_answered"] == n
        events = list_events(question_uuid)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        kinds = [e.kind for e in events]
        assert kinds[:2] == ["question", "delivery"] and kinds[-1] == "result"
        assert "monitor_message" in kinds and "exception" not in kinds
        logs = [e.payload["message"] for e in events if e.kind == "log_record"]
        assert logs == [f"question {n}", f"printed {n}"]  # this question's, no other's
        assert all(
            e.payload["originator_question_uuid"] == question_uuid
            and e.payload["parent_question_uuid"] is None
            for e in events
        )
        assert events[-1].payload["worker"]["pid"] == values["pid"]
        assert events[1].payload == {
            "pid": values["pid"],
            "answered": n,
            "parent_question_uuid": None,
            "originator_question_uuid": question_uuid,
        }


@pytest.mark.parametrize(
    ("n", "error", "status"),
    [
        (91, ValueError, "failed"),
        (92, ChildCrashed, "crashed"),
        (93, QuestionTimeout, "timed_out"),
    ],
)
def test_a_worker_that_failed_is_not_reused(
    pooled: None, counter: Child, n: int, error: type[Exception], status: str
) -> None:
    first, _ = counter.ask(input_values={"n": 0}, timeout=60)
    with pytest.raises(error):
        counter.ask(input_values={"n": n}, timeout=1, **FAST)
    (failed,) = [q for q in _questions("test/counter:1.0.0") if q.status != "succeeded"]
    assert failed.status == status
    assert failed.details["worker_pid"] == first["output_values"]["pid"]  # it was reused once
    assert _gone([first["output_values"]["pid"]])
    after, _ = counter.ask(input_values={"n": 1}, timeout=60)
    assert after["output_values"]["pid"] != first["output_values"]["pid"]
    assert after["output_values"]["answered"] == [1]  # a fresh worker: nothing carried over


def _questions(service_id: str) -> list[QuestionRecord]:
    return list_questions(service_id=service_id)


def test_a_cancelled_worker_is_not_reused(pooled: None, counter: Child) -> None:
    first, _ = counter.ask(input_values={"n": 0}, timeout=60)
    pid = first["output_values"]["pid"]
    _, question_uuid = counter.ask(input_values={"n": 93}, asynchronous=True, **FAST)
    _wait_running(question_uuid)
    assert Child.cancel(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=30)
    assert _gone([pid])
    after, _ = counter.ask(input_values={"n": 1}, timeout=60)
    assert after["output_values"]["pid"] != pid


def test_cancel_from_another_process_finds_the_pool_worker(pooled: None, counter: Child) -> None:
    """A pool worker names the question it answers in /proc/PID/comm, so a cancel that only
    has the catalog (as another process has) kills it, and no other worker."""
    first, _ = counter.ask(input_values={"n": 0}, timeout=60)
    _, question_uuid = counter.ask(input_values={"n": 93}, asynchronous=True, **FAST)
    _wait_running(question_uuid)
    assert _cancel_elsewhere(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=30)
    assert _gone([first["output_values"]["pid"]])
    assert get_question(question_uuid).status == "cancelled"
    events = list_events(question_uuid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.kind for e in events][:2] == ["question", "delivery"]
    assert events[-1].kind == "cancelled" and "exception" not in [e.kind for e in events]


def _wait_running(question_uuid: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get_question(question_uuid).status == "running":
                return
        except QuestionNotFound:
            pass
        time.sleep(0.02)
    raise AssertionError(f"question {question_uuid} never ran")


def test_a_code_change_gets_a_new_worker(
    pooled: None, make_service: ServiceFactory, counter: Child
) -> None:
    first, _ = counter.ask(input_values={"n": 0}, timeout=60)
    again, _ = counter.ask(input_values={"n": 1}, timeout=60)
    assert again["output_values"]["pid"] == first["output_values"]["pid"]
    app = counter.service().app_source_path / "app.py"
    app.write_text(app.read_text().replace('"mark": os.environ', '"new": True, "mark": os.environ'))
    changed, _ = counter.ask(input_values={"n": 2}, timeout=60)
    assert changed["output_values"]["pid"] != first["output_values"]["pid"]
    assert changed["output_values"]["new"] is True
    assert _gone([first["output_values"]["pid"]])  # the old revision's idle worker is stopped


def test_a_running_question_shows_in_the_catalog_while_it_runs(
    pooled: None, make_service: ServiceFactory
) -> None:
    """Writes are batched, but a question's row, status and delivery reach the catalog within a
    fraction of a second, and its heartbeats (as the job's last_seen) by the end."""
    folder = make_service("slow", "import time\ndef run(analysis):\n    time.sleep(1.0)", {})
    child = Child("test/slow:1.0.0", backend=local(folder))
    question_uuid = "00000000-0000-4000-8000-000000000001"
    thread = threading.Thread(
        target=child.ask, kwargs={"question_uuid": question_uuid, "timeout": 60, **FAST}
    )
    thread.start()
    try:
        _wait_running(question_uuid)
        assert [e.kind for e in list_events(question_uuid)][:2] == ["question", "delivery"]
    finally:
        thread.join(60)
    events = list_events(question_uuid)
    kinds = [e.kind for e in events]
    # Heartbeats are not events any more: they keep the job's last_seen fresh (LAYERS.md).
    assert kinds[-1] == "result" and "heartbeat" not in kinds
    delivered = next(e.at for e in events if e.kind == "delivery")
    last_seen = get_job(question_uuid).last_seen
    assert last_seen is not None and last_seen >= delivered
    assert get_question(question_uuid).status == "succeeded"


PARENT = """
import sys
from assay.services import Child
from assay.services.local import pool_pids

child = Child("test/counter:1.0.0", backend={{"name": "local", "path": {folder!r}}})
child.ask_multiple({{"input_values": {{"n": 0}}}}, {{"input_values": {{"n": 1}}}}, max_workers=2)
print(" ".join(str(pid) for pid in pool_pids()), flush=True)
sys.stdin.readline()  # exit when told (or be killed before)
"""


@pytest.mark.parametrize("how", ["exits", "killed"])
def test_pool_workers_do_not_outlive_their_parent(
    counter: Child, sqlite_home: Path, tmp_path: Path, how: str
) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT.format(folder=str(counter.service().directory))))
    env = {**os.environ, "ASSAY_WORKER_POOL": "2"}
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert parent.stdin is not None and parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert pids and all(_alive(pid) for pid in pids)
    if how == "killed":  # no atexit: the workers see their stdin close
        parent.send_signal(signal.SIGKILL)
    parent.stdin.close()
    parent.wait(30)
    assert _gone(pids)
