"""Questions forked by a fork server (the default for local questions): real server, real forks.

Each question gets its own child, forked from a pristine pre-imported server and never reused:
what a question does to module state never reaches the next one. A stop kills the child's process
group, a crash is reported as for a spawned worker, a dead server is replaced (or the question is
spawned) and no question is lost; ``ASSAY_FORK_SERVER=0`` or ``worker.fresh_interpreter`` turn it
off.
"""

from __future__ import annotations

import logging
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import FAST, local
from service_types import ServiceFactory

from assay.core.errors import ChildCrashed, InvalidServiceConfig, QuestionCancelled
from assay.jobs import forkserver, get_job
from assay.services import Child, get_question, list_events
from assay.services.child import _cancel_elsewhere
from assay.services.config import load_config

# The app reports who ran it and what it found of earlier questions; ``role`` chooses a behaviour.
APP = """
import json, logging, os, signal, subprocess, sys, time
from pathlib import Path
logger = logging.getLogger(__name__)
ANSWERED = []

def _wait_for(path, seconds=60):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)

def run(analysis):
    values = analysis.input_values
    role, n, signals = values.get("role", "answer"), values.get("n", 0), values.get("dir")
    found = {"app": list(ANSWERED), "json": getattr(json, "ASSAY_TEST_MARK", None)}
    ANSWERED.append(n)
    json.ASSAY_TEST_MARK = n  # a change to a module the server imported
    if "isolation_state" in sys.modules:
        import isolation_state
        found["preloaded"] = list(isolation_state.SEEN)
        found["imported_in"] = isolation_state.IMPORTED_IN
        isolation_state.SEEN.append(n)
    logger.info("question %d", n)
    print("printed", n)
    analysis.send_monitor_message({"n": n})
    if role == "exit":
        os._exit(5)
    if role == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if role == "raise":
        raise ValueError(f"question {n} says no")
    if role == "sleep":  # start a grandchild in the process group, then wait to be stopped
        sleeper = subprocess.Popen(["sleep", "600"])
        Path(signals, "pids").write_text(json.dumps([os.getpid(), sleeper.pid]))
        time.sleep(600)
    if role in ("a", "b"):  # each waits for the other: both answer only if they overlap
        Path(signals, role).write_text(str(os.getpid()))
        _wait_for(Path(signals, "b" if role == "a" else "a"))
    if role in ("wait", "wait-exit"):
        Path(signals, "started").write_text(str(os.getpid()))
        _wait_for(Path(signals, "go"))
        if role == "wait-exit":
            os._exit(3)
    analysis.output_values = {
        "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgrp(), "found": found,
        "cwd": os.getcwd(), "mark": os.environ.get("MARK"),
    }
"""

PRELOADED = """
import os
SEEN = []
IMPORTED_IN = os.getpid()
"""


@pytest.fixture
def servers() -> Iterator[None]:
    forkserver.close_servers()
    yield
    forkserver.close_servers()


@pytest.fixture
def probe(make_service: ServiceFactory, sqlite_home: Path, servers: None) -> Child:
    folder = make_service("probe", APP)
    return Child("test/probe:1.0.0", backend=local(folder))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet) counts as gone
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(") ", 1)[-1][:1] != "Z"
    except OSError:
        return False


def _gone(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False


def _wait_for(path: Path, seconds: float = 60.0) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text()


def test_each_question_is_a_fresh_fork_of_one_server(
    probe: Child, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = []
    messages: list[Any] = []
    for n, mark in enumerate(["a", "b"]):
        monkeypatch.setenv("MARK", mark)  # each child takes the asker's environment of its ask
        answer, question_uuid = probe.ask(
            input_values={"n": n}, handle_monitor_message=messages.append, timeout=60
        )
        answers.append((answer["output_values"], question_uuid))
    (server,) = forkserver.server_pids()
    assert server != os.getpid()
    for n, (values, question_uuid) in enumerate(answers):
        assert values["ppid"] == server  # forked by the server, not spawned by this process
        assert values["pgid"] == values["pid"]  # its own process group, as a spawned worker
        assert values["mark"] == "ab"[n]
        assert values["cwd"] == str(probe.backend["path"])
        record = get_question(question_uuid)
        assert record.status == "succeeded"
        assert record.details["worker_pid"] == values["pid"]
        assert get_job(question_uuid).pgid == values["pid"]  # what reconciliation would kill
        events = list_events(question_uuid)
        kinds = [e.kind for e in events]
        assert kinds[:2] == ["question", "delivery"] and kinds[-1] == "result"
        logs = [e.payload["message"] for e in events if e.kind == "log_record"]
        assert logs == [f"question {n}", f"printed {n}"]
    assert answers[0][0]["pid"] != answers[1][0]["pid"]
    assert messages == [{"n": 0}, {"n": 1}]


def test_module_state_does_not_leak_between_questions(
    make_service: ServiceFactory,
    sqlite_home: Path,
    servers: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A question changes module state of the app, of a preloaded module and of a module the
    server imported (json); the next question, forked from the same server, sees none of it."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "isolation_state.py").write_text(PRELOADED)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(library), os.environ.get("PYTHONPATH", "")])
    )
    folder = make_service("stateful", APP, worker={"preload": ["isolation_state"]})
    assert load_config(folder)[0].preload == ("isolation_state",)
    child = Child("test/stateful:1.0.0", backend=local(folder))
    found = []
    for n in (7, 8, 9):
        answer, _ = child.ask(input_values={"n": n}, timeout=60)
        found.append(answer["output_values"])
    (server,) = forkserver.server_pids()
    assert len({values["pid"] for values in found}) == 3
    for values in found:
        # Imported once, by the server, before any question: the preload really happened ...
        assert values["found"]["imported_in"] == server != values["pid"]
        # ... and every question starts from the server's pristine copy.
        assert values["found"] == {"app": [], "json": None, "preloaded": [], "imported_in": server}


def test_a_question_that_raises_is_reported_as_before(probe: Child) -> None:
    with pytest.raises(ValueError, match="question 4 says no") as caught:
        probe.ask(input_values={"n": 4, "role": "raise"}, timeout=60)
    question_uuid = caught.value.question_uuid  # type: ignore[attr-defined]
    assert get_question(question_uuid).status == "failed"
    kinds = [e.kind for e in list_events(question_uuid)]
    assert kinds[-1] == "exception" and "monitor_message" in kinds and "log_record" in kinds


@pytest.mark.parametrize(
    ("role", "how"),
    [("exit", "exited with status 5"), ("sigkill", "was killed by signal SIGKILL")],
)
def test_a_crashing_child_is_reported_as_before(probe: Child, role: str, how: str) -> None:
    with pytest.raises(ChildCrashed, match=f"{how} before answering") as caught:
        probe.ask(input_values={"n": 1, "role": role}, timeout=60, **FAST)
    question_uuid = caught.value.message.split("question ")[1].split()[0]
    assert get_question(question_uuid).status == "crashed"
    assert forkserver.server_pids()  # the server lives on for the next question
    answer, _ = probe.ask(input_values={"n": 2}, timeout=60)
    assert answer["output_values"]["found"]["app"] == []


@pytest.mark.parametrize("where", ["this process", "another process"])
def test_cancelling_a_forked_question_kills_its_process_group(
    probe: Child, tmp_path: Path, where: str
) -> None:
    _, question_uuid = probe.ask(
        input_values={"n": 1, "role": "sleep", "dir": str(tmp_path)}, asynchronous=True, **FAST
    )
    pids = [int(pid) for pid in _wait_for(tmp_path / "pids").strip("[]").split(",")]
    worker, grandchild = pids
    assert _alive(worker) and _alive(grandchild)
    if where == "this process":
        assert Child.cancel(question_uuid) is True
    else:  # a stop request through the catalog, as from another process
        assert _cancel_elsewhere(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=30)
    assert _gone([worker, grandchild])  # the whole group, the app's subprocess too
    assert get_question(question_uuid).status == "cancelled"
    if where == "this process":  # (a stop from elsewhere may win before the run is written)
        assert get_job(question_uuid).pgid == worker


def test_two_questions_at_once_get_a_child_each(probe: Child, tmp_path: Path) -> None:
    results: dict[str, Any] = {}

    def ask(role: str) -> None:
        answer, _ = probe.ask(input_values={"n": 1, "role": role, "dir": str(tmp_path)}, timeout=90)
        results[role] = answer["output_values"]

    threads = [threading.Thread(target=ask, args=(role,)) for role in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # Each app waited for the other's file: both answered, so they ran at the same time.
    assert set(results) == {"a", "b"}
    assert results["a"]["pid"] != results["b"]["pid"]
    assert results["a"]["ppid"] == results["b"]["ppid"] == forkserver.server_pids()[0]
    assert {int((tmp_path / role).read_text()) for role in "ab"} == {
        results["a"]["pid"],
        results["b"]["pid"],
    }


def _kill_server() -> int:
    (server,) = forkserver.server_pids()
    os.kill(server, signal.SIGKILL)
    assert _gone([server])
    return server


def test_a_killed_fork_server_is_replaced_and_the_next_question_answered(probe: Child) -> None:
    first, _ = probe.ask(input_values={"n": 1}, timeout=60)
    killed = _kill_server()
    assert first["output_values"]["ppid"] == killed
    second, question_uuid = probe.ask(input_values={"n": 2}, timeout=60)
    (server,) = forkserver.server_pids()
    assert server != killed and second["output_values"]["ppid"] == server
    assert get_question(question_uuid).status == "succeeded"


def test_a_question_outlives_its_fork_server(probe: Child, tmp_path: Path) -> None:
    """The server dies while its child answers: the answer still arrives (the child's pipes are
    the asker's); a child that then crashes is reported, its status unknown."""
    for role in ("wait", "wait-exit"):
        signals = tmp_path / role
        signals.mkdir()
        _, question_uuid = probe.ask(
            input_values={"n": 1, "role": role, "dir": str(signals)}, asynchronous=True, **FAST
        )
        _wait_for(signals / "started")
        _kill_server()
        (signals / "go").write_text("go")
        if role == "wait":
            answer = Child.get_answer(question_uuid, timeout=60)
            assert answer is not None and answer["output_values"]["found"]["app"] == []
        else:
            with pytest.raises(ChildCrashed, match="how is unknown: the fork server"):
                Child.get_answer(question_uuid, timeout=60)
            assert get_question(question_uuid).status == "crashed"


@pytest.mark.parametrize("how", ["ASSAY_FORK_SERVER=0", "worker.fresh_interpreter"])
def test_the_fork_server_can_be_turned_off(
    make_service: ServiceFactory,
    sqlite_home: Path,
    servers: None,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "ASSAY_FORK_SERVER=0":
        monkeypatch.setenv("ASSAY_FORK_SERVER", "0")
        folder = make_service("spawned", APP)
    else:
        folder = make_service("spawned", APP, worker={"fresh_interpreter": True})
    answer, _ = Child("test/spawned:1.0.0", backend=local(folder)).ask(
        input_values={"n": 1}, timeout=60
    )
    assert answer["output_values"]["ppid"] == os.getpid()  # spawned by this process
    assert forkserver.server_pids() == []


def test_a_module_that_cannot_be_preloaded_is_named_and_the_question_answered(
    make_service: ServiceFactory,
    sqlite_home: Path,
    servers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = make_service("unloadable", APP, worker={"preload": ["no_such_module_here"]})
    with caplog.at_level(logging.WARNING, logger="assay.jobs.forkserver"):
        answer, _ = Child("test/unloadable:1.0.0", backend=local(folder)).ask(
            input_values={"n": 1}, timeout=60
        )
    assert answer["output_values"]["ppid"] == forkserver.server_pids()[0]
    assert "could not preload no_such_module_here: ModuleNotFoundError" in caplog.text


@pytest.mark.parametrize(
    ("worker", "message"),
    [
        ({"preload": "pandas"}, "worker.preload: expected a list of module names"),
        ({"preload": ["not a module"]}, "worker.preload: expected a list of module names"),
        ({"fresh_interpreter": "yes"}, "worker.fresh_interpreter: expected true or false"),
        ({"fork": True}, "worker: unknown key 'fork'"),
        ("fork", "worker: expected a mapping"),
    ],
)
def test_a_bad_worker_setting_is_refused(
    make_service: ServiceFactory, worker: Any, message: str
) -> None:
    folder = make_service("bad", "def run(analysis):\n    pass", worker=worker)
    with pytest.raises(InvalidServiceConfig, match=message):
        load_config(folder)


def test_the_server_exits_once_its_asker_closes_it_and_its_children_end(
    probe: Child, tmp_path: Path
) -> None:
    """Closing the control socket (as the asker's exit does) stops the server taking requests;
    it waits for its running child (whose answer still arrives), then exits."""
    _, question_uuid = probe.ask(
        input_values={"n": 1, "role": "wait", "dir": str(tmp_path)}, asynchronous=True, **FAST
    )
    _wait_for(tmp_path / "started")
    (server,) = forkserver.server_pids()
    forkserver.close_servers()
    assert _alive(server)  # a child is still running
    (tmp_path / "go").write_text("go")
    answer = Child.get_answer(question_uuid, timeout=60)
    assert answer is not None and answer["output_values"]["ppid"] == server
    assert _gone([server])


def test_the_app_source_is_read_by_each_child(probe: Child) -> None:
    """The server never imports the app: an edit reaches the next question."""
    app = Path(probe.backend["path"]) / "app.py"
    first, _ = probe.ask(input_values={"n": 1}, timeout=60)
    app.write_text(
        textwrap.dedent(
            """
            import os
            def run(analysis):
                analysis.output_values = {"edited": True, "ppid": os.getppid()}
            """
        )
    )
    second, _ = probe.ask(input_values={"n": 2}, timeout=60)
    assert second["output_values"]["edited"] is True
    assert second["output_values"]["ppid"] == first["output_values"]["ppid"]
