"""Child.ask on the local backend: real worker processes, events, failures, cancellation."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import pytest
from service_helpers import FAST, local
from service_types import ServiceFactory

from assay.core.errors import (
    AssayError,
    ChildCrashed,
    ChildError,
    InvalidInput,
    InvalidStrand,
    LocalFilesNotAllowed,
    QuestionCancelled,
    QuestionTimeout,
    ServiceNotFound,
)
from assay.resources import Manifest
from assay.services import Child, get_question, list_events, list_questions, registry, replay
from helpers import catalog_counts, write_files

TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
    },
    "output_values_schema": {"type": "object", "properties": {"double": {"type": "integer"}}},
    "monitor_message_schema": {
        "type": "object",
        "properties": {"progress": {"type": "number"}},
        "required": ["progress"],
    },
}

ECHO_APP = """
import logging
logger = logging.getLogger(__name__)

def run(analysis):
    logger.info("doubling %d", analysis.input_values["n"])
    print("a line on stdout")
    analysis.send_monitor_message({"progress": 0.5})
    analysis.output_values = {"double": 2 * analysis.input_values["n"]}
"""


@pytest.fixture
def echo(make_service: ServiceFactory) -> Child:
    return Child("test/echo:1.0.0", backend=local(make_service("echo", ECHO_APP, TWINE)))


def test_round_trip_with_logs_and_monitor_messages(
    echo: Child, sqlite_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    messages: list[object] = []
    caplog.set_level(logging.INFO)
    answer, question_uuid = echo.ask(
        input_values={"n": 21}, handle_monitor_message=messages.append, timeout=60
    )
    assert answer == {"output_values": {"double": 42}, "output_manifest": None}
    assert messages == [{"progress": 0.5}]
    prefix = f"[test/echo:1.0.0 | {question_uuid}]"
    texts = [record.getMessage() for record in caplog.records]
    assert f"{prefix} doubling 21" in texts
    assert f"{prefix} a line on stdout" in texts
    assert any(
        r.name == "app" and r.getMessage() == f"{prefix} doubling 21" for r in caplog.records
    )
    kinds = [event.kind for event in list_events(question_uuid)]
    assert kinds[:2] == ["question", "delivery"] and kinds[-1] == "result"
    assert {"log_record", "monitor_message"} <= set(kinds)
    record = get_question(question_uuid)
    assert record.status == "succeeded" and record.output_values == {"double": 42}
    assert record.originator_question_uuid == question_uuid
    assert echo.received_events is not None and echo.received_events[-1]["kind"] == "result"


def test_events_are_stored_on_both_backends(echo: Child, assay_home: Path) -> None:
    _, question_uuid = echo.ask(input_values={"n": 1}, timeout=60)
    events = list_events(question_uuid)
    assert all(e.payload["originator_question_uuid"] == question_uuid for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert replay(question_uuid)["output_values"] == {"double": 2}


def test_bad_input_values_fail_before_anything_is_asked(echo: Child, sqlite_home: Path) -> None:
    echo.ask(input_values={"n": 1}, timeout=60)  # the catalog exists
    before = catalog_counts()
    with pytest.raises(InvalidStrand, match=r"^input_values.n: -1 is less than the minimum of 0$"):
        echo.ask(input_values={"n": -1})
    assert catalog_counts() == before


def test_child_exception_keeps_its_type_and_traceback(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service(
        "raiser",
        """
        def deep_inside(n):
            raise ValueError(f"cannot handle {n}")

        def run(analysis):
            deep_inside(analysis.input_values["n"])
        """,
        TWINE,
    )
    with pytest.raises(ValueError, match="cannot handle 3") as caught:
        Child("test/raiser:1.0.0", backend=local(folder)).ask(input_values={"n": 3})
    error = caught.value
    assert isinstance(error, ChildError) and isinstance(error, AssayError)
    assert "deep_inside" in error.child_traceback  # type: ignore[attr-defined]
    assert any("deep_inside" in note for note in error.__notes__)
    assert get_question(error.question_uuid).status == "failed"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="cannot handle 3"):
        replay(error.question_uuid)  # type: ignore[attr-defined]


def test_unimportable_exception_type_becomes_child_error(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service(
        "custom",
        "class OwnError(Exception):\n    pass\n\ndef run(analysis):\n    raise OwnError('mine')",
        TWINE,
    )
    with pytest.raises(ChildError, match="OwnError: mine"):
        Child("test/custom:1.0.0", backend=local(folder)).ask(input_values={"n": 3})


def test_outputs_failing_the_schema_come_back_as_invalid_strand(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service(
        "liar", "def run(analysis):\n    analysis.output_values = {'double': 'x'}", TWINE
    )
    with pytest.raises(InvalidStrand, match=r"output_values.double: 'x' is not of type 'integer'"):
        Child("test/liar:1.0.0", backend=local(folder)).ask(input_values={"n": 3})


def test_app_that_exits_the_process(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "exiter",
        "import os, sys\ndef run(analysis):\n    sys.stderr.write('going\\n')\n    os._exit(7)",
        TWINE,
    )
    with pytest.raises(ChildCrashed, match="exited with status 7 before answering") as caught:
        Child("test/exiter:1.0.0", backend=local(folder)).ask(input_values={"n": 1}, **FAST)
    uuid = caught.value.message.split("question ")[1].split()[0]
    assert get_question(uuid).status == "crashed"


def test_app_that_never_returns_times_out(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("sleeper", "import time\ndef run(analysis):\n    time.sleep(600)", TWINE)
    started = time.monotonic()
    with pytest.raises(QuestionTimeout, match="within the timeout of 1 s") as caught:
        Child("test/sleeper:1.0.0", backend=local(folder)).ask(
            input_values={"n": 1}, timeout=1, **FAST
        )
    assert time.monotonic() - started < 30
    assert isinstance(caught.value, TimeoutError)
    (record,) = list_questions(service_id="test/sleeper")
    assert record.status == "timed_out"
    assert [e.kind for e in list_events(record.question_uuid)][-1] == "exception"


def test_hung_child_is_found_by_missing_heartbeats(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service(
        "hung",
        "import os, signal\ndef run(analysis):\n    os.kill(os.getpid(), signal.SIGSTOP)",
        TWINE,
    )
    with pytest.raises(ChildCrashed, match=r"no heartbeat or other event for 3 s"):
        Child("test/hung:1.0.0", backend=local(folder)).ask(input_values={"n": 1}, **FAST)


def test_app_that_prints_megabytes(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "chatty",
        """
        import sys
        def run(analysis):
            line = "x" * 99 + "\\n"
            for _ in range(30_000):
                sys.stdout.write(line)
            sys.stdout.write("y" * 300_000 + "\\n")
            analysis.output_values = {"double": 0}
        """,
        TWINE,
    )
    answer, question_uuid = Child("test/chatty:1.0.0", backend=local(folder)).ask(
        input_values={"n": 1}, record_events=False, timeout=120
    )
    assert answer["output_values"] == {"double": 0}
    logs = list_events(question_uuid, ["log_record"])
    assert len(logs) == 10_001  # capped, plus one record saying how many were dropped
    assert "further log records were not stored" in logs[-1].payload["message"]
    assert list_events(question_uuid)[-1].kind == "result"


def test_long_lines_are_truncated_with_a_marker(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service(
        "longline",
        "import logging\ndef run(analysis):\n    logging.getLogger('x').warning('z' * 200_000)\n    analysis.output_values = {}",
        TWINE,
    )
    _, question_uuid = Child("test/longline:1.0.0", backend=local(folder)).ask(
        input_values={"n": 1}
    )
    (log,) = [e for e in list_events(question_uuid, ["log_record"]) if e.payload["name"] == "x"]
    assert log.payload["message"].endswith("[truncated 134464 characters]")


def test_unregistered_child(
    sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_SERVICES_PATH", str(tmp_path))
    with pytest.raises(ServiceNotFound, match="service nobody/here:1 is not registered"):
        Child("nobody/here:1").ask(input_values={})


def test_registry_folder_and_explicit_entries(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_service("echo", ECHO_APP, TWINE)
    monkeypatch.setenv("ASSAY_SERVICES_PATH", str(tmp_path / "services"))
    answer, _ = Child("test/echo").ask(input_values={"n": 2})
    assert answer["output_values"] == {"double": 4}
    monkeypatch.delenv("ASSAY_SERVICES_PATH")
    registry.register("test/echo:1.0.0", folder)
    try:
        assert Child("test/echo:1.0.0").ask(input_values={"n": 3})[0]["output_values"] == {
            "double": 6
        }
    finally:
        registry.unregister("test/echo:1.0.0")


def test_backends_are_checked() -> None:
    """The http backend is tested against a real server in tests/server/test_api_questions.py."""
    child = Child("a/b:1", backend={"name": "http", "url": "https://example.com/"})
    assert child.backend == {"name": "http", "url": "https://example.com"}
    with pytest.raises(InvalidInput, match="url must be an http"):
        Child("a/b:1", backend={"name": "http", "url": "ftp://example.com"})
    with pytest.raises(InvalidInput, match="'GCPPubSubBackend' is not available"):
        Child("a/b:1", backend={"name": "GCPPubSubBackend"})


def test_local_files_need_permission_and_the_manifest_is_not_changed(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    folder = make_service(
        "reader",
        "def run(analysis):\n    analysis.output_values = sorted(f.name for f in analysis.input_manifest.get_dataset('data').files)",
        {"input_manifest": {"datasets": {"data": {"purpose": "files"}}}},
    )
    data = write_files(tmp_path / "data", {"a.txt": "a", "b.txt": "b"})
    as_dict = {"id": "m1", "datasets": {"data": str(data)}}
    before = copy.deepcopy(as_dict)
    child = Child("test/reader:1.0.0", backend=local(folder))
    with pytest.raises(LocalFilesNotAllowed, match="allow_local_files=True"):
        child.ask(input_manifest=as_dict)
    answer, _ = child.ask(input_manifest=as_dict, allow_local_files=True)
    assert answer["output_values"] == ["a.txt", "b.txt"]
    assert as_dict == before
    manifest = Manifest.deserialise(as_dict)
    serialised = manifest.serialise()
    child.ask(input_manifest=manifest, allow_local_files=True)
    assert manifest.serialise() == serialised


def test_asynchronous_question_and_get_answer(echo: Child, sqlite_home: Path) -> None:
    answer, question_uuid = echo.ask(input_values={"n": 5}, asynchronous=True)
    assert answer is None
    assert Child.get_answer(question_uuid, wait=True, timeout=60)["output_values"] == {"double": 10}
    # From the catalog, as another process would see it:
    from assay.services.child import _answer_from_catalog

    assert _answer_from_catalog(question_uuid, wait=True, timeout=10)["output_values"] == {
        "double": 10
    }


def test_cancel_a_running_question(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("sleeper", "import time\ndef run(analysis):\n    time.sleep(600)", TWINE)
    child = Child("test/sleeper:1.0.0", backend=local(folder))
    _, question_uuid = child.ask(input_values={"n": 1}, asynchronous=True, **FAST)
    deadline = time.monotonic() + 30
    while get_question(question_uuid).status != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Child.cancel(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=30)
    assert get_question(question_uuid).status == "cancelled"
    assert "cancelled" in [e.kind for e in list_events(question_uuid)]
    assert Child.cancel(question_uuid) is False


def test_max_retries_asks_again_after_a_crash(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed-once"
    folder = make_service(
        "flaky",
        f"""
        import os
        def run(analysis):
            if not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                os._exit(1)
            analysis.output_values = {{"double": 0}}
        """,
        TWINE,
    )
    answer, question_uuid = Child("test/flaky:1.0.0", backend=local(folder)).ask(
        input_values={"n": 1}, max_retries=1, **FAST
    )
    assert answer["output_values"] == {"double": 0}
    statuses = sorted(record.status for record in list_questions(service_id="test/flaky:1.0.0"))
    assert statuses == ["crashed", "succeeded"]
    assert get_question(question_uuid).details["retry_count"] == 1


def test_raise_errors_false_returns_the_error(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("raiser", "def run(analysis):\n    raise RuntimeError('no')", TWINE)
    error, _ = Child("test/raiser:1.0.0", backend=local(folder)).ask(
        input_values={"n": 1}, raise_errors=False, log_errors=False
    )
    assert isinstance(error, RuntimeError)


def test_ask_multiple_answers_in_order(echo: Child, sqlite_home: Path) -> None:
    answers = echo.ask_multiple(*({"input_values": {"n": n}} for n in range(6)))
    assert [answer["output_values"]["double"] for answer, _ in answers] == [0, 2, 4, 6, 8, 10]
    assert len({uuid for _, uuid in answers}) == 6


PARENT_APP = """
def run(analysis):
    answer, _ = analysis.children["doubler"].ask(input_values=analysis.input_values, timeout=60)
    analysis.output_values = {"double": answer["output_values"]["double"] + 1}
"""


def test_nested_questions_know_their_parent_and_originator(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    child_folder = make_service("echo", ECHO_APP, TWINE)
    parent_folder = make_service(
        "parent",
        PARENT_APP,
        {**TWINE, "children": [{"key": "doubler", "purpose": "doubles"}]},
        children=[{"key": "doubler", "id": "test/echo:1.0.0", "backend": local(child_folder)}],
    )
    answer, parent_uuid = Child("test/parent:1.0.0", backend=local(parent_folder)).ask(
        input_values={"n": 4}, timeout=120
    )
    assert answer["output_values"] == {"double": 9}
    (nested,) = list_questions(parent_question_uuid=parent_uuid)
    assert nested.service_id == "test/echo:1.0.0"
    assert nested.originator_question_uuid == parent_uuid
    assert all(
        e.payload["parent_question_uuid"] == parent_uuid for e in list_events(nested.question_uuid)
    )
    # The grandchild's log records reached the parent through the child, prefixes nested.
    logs = [e.payload["message"] for e in list_events(parent_uuid, ["log_record"])]
    assert any(f"[test/echo:1.0.0 | {nested.question_uuid}] doubling 4" in m for m in logs)


def test_missing_child_key_in_config(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("parent", PARENT_APP, {**TWINE, "children": [{"key": "doubler"}]})
    with pytest.raises(InvalidStrand, match=r"children.doubler: the twine needs a child"):
        Child("test/parent:1.0.0", backend=local(folder)).ask(input_values={"n": 1})


def test_warm_worker_pool_takes_the_askers_environment(
    make_service: ServiceFactory, sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay.services.local import close_pool

    folder = make_service(
        "env",
        "import os\ndef run(analysis):\n    analysis.output_values = [os.environ.get('MARK'), os.getcwd()]",
        {},
    )
    child = Child("test/env:1.0.0", backend=local(folder))
    monkeypatch.setenv("ASSAY_WORKER_POOL", "1")
    try:
        for mark in ("first", "second", "third"):
            monkeypatch.setenv("MARK", mark)
            answer, _ = child.ask(timeout=60)
            assert answer["output_values"] == [mark, str(folder)]
    finally:
        monkeypatch.setenv("ASSAY_WORKER_POOL", "0")
        close_pool()
