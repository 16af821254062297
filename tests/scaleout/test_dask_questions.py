"""Questions on Dask (``Child(..., backend={"name": "local", "environment": ENV})``) on a real
LocalCluster with a PostgreSQL catalog: the answer and an output bundle (by reference through
an S3 remote on moto_server, the worker keeping its own ASSAY_HOME), logs and monitor messages
at the asker, the app's exception type, cancellation (running and queued), a worker killed
mid-question (failed, or re-queued and answered once), and the checks at submit time."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import HERE, SRC, distributed, needs_dask, wait_for, write_environments

from assay import api
from assay.bundles import remotes
from assay.bundles.workspace import open_workspace
from assay.core.errors import (
    ChildCrashed,
    ParamNotPicklable,
    QuestionCancelled,
    QuestionTimeout,
    SchedulerUnreachable,
)
from assay.jobs import store
from assay.jobs.executors import dask_client
from assay.jobs.executors.dask import _scheduler_task_states
from assay.services import Child, events

sys.path.insert(0, str(HERE.parent / "remotes"))
sys.path.insert(0, str(HERE.parent / "cli"))
from cli_helpers import expect_error, invoke
from remote_helpers import AWS_TEST_CREDENTIALS, make_bucket, running_moto

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]
CREDENTIALS = AWS_TEST_CREDENTIALS
SRUID = "test/asker:1.0.0"
APP = """
import logging
import os
import re
import time
from pathlib import Path

from assay.resources import Datafile, Dataset

log = logging.getLogger("dask.app")


def run(analysis):
    values = analysis.input_values
    mode = values.get("mode", "answer")
    log.info("starting %s on pid %d", mode, os.getpid())
    print("a printed line")
    analysis.send_monitor_message({"progress": 0.5})
    if mode == "raise":
        raise ValueError("the app refuses " + str(values.get("n")))
    if mode in ("wait", "die_once"):
        marker = Path(values["marker"])
        attempts = int(marker.read_text().split()[0]) + 1 if marker.exists() else 1
        marker.write_text(f"{attempts} {os.getpid()}")
        while mode == "wait" or attempts == 1:
            time.sleep(0.05)
    directory = analysis.output_dir
    datafile = Datafile(path=os.path.join(directory, "numbers.txt"), labels=["numbers"])
    with datafile.open("w") as handle:
        handle.write(" ".join(str(i) for i in range(values.get("n", 3))))
    analysis.output_manifest.datasets["numbers"] = Dataset(path=directory, name="numbers")
    analysis.output_values = {"total": sum(range(values.get("n", 3))), "pid": os.getpid()}
"""
TWINE = {
    "input_values_schema": {"type": "object"},
    "output_values_schema": {"type": "object", "required": ["total"]},
    "monitor_message_schema": {"type": "object", "required": ["progress"]},
    "output_manifest": {"datasets": {"numbers": {"purpose": "the numbers", "optional": True}}},
}


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """This module's cluster (overrides the conftest's): two worker processes that declare
    CPU=1 and have the remote's credentials."""
    if distributed is None:
        pytest.skip("dask[distributed] is not installed")
    saved = dict(os.environ)
    os.environ.update(CREDENTIALS)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(SRC)])
    try:
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            resources={"CPU": 1},
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield local
    dask_client.close_clients()
    local.close()


@pytest.fixture
def service(tmp_path: Path, dask_home: Path) -> Path:
    api.context("services")  # where output bundles go
    folder = tmp_path / "services" / "asker"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(textwrap.dedent(APP).strip() + "\n")
    (folder / "twine.json").write_text(json.dumps(TWINE))
    config = {"name": "asker", "namespace": "test", "tag": "1.0.0"}
    (folder / "assay.yaml").write_text(json.dumps({"services": [config]}))
    return folder


def child(folder: Path, environment: str = "cluster") -> Child:
    return Child(SRUID, backend={"name": "local", "path": str(folder), "environment": environment})


def outputs_of(question_uuid: str) -> list[Any]:
    return api.search("services", tags={"question_uuid": question_uuid})


def test_answer_output_bundle_by_reference_logs_and_monitor_messages(
    dask_home: Path,
    tmp_path: Path,
    service: Path,
    moto: str,
    cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    worker_home = tmp_path / "worker-home"  # the worker shares nothing with us but PG and S3
    write_environments(
        dask_home,
        f"""environments:
  - id: far
    executor: dask
    scheduler: {cluster.scheduler_address}
    cpu: 1
    worker_home: {worker_home}
""",
    )
    api.remote("services", "shared", f"s3://{make_bucket(moto)}/assay", endpoint_url=moto)
    messages: list[Any] = []
    asker = child(service, "far")
    with caplog.at_level("INFO"):
        answer, question_uuid = asker.ask(
            input_values={"n": 4}, handle_monitor_message=messages.append, timeout=120
        )

    assert answer["output_values"]["total"] == 6
    assert answer["output_values"]["pid"] != os.getpid()  # answered on a worker
    reference = answer["output_manifest"].references["numbers"]
    assert reference.kind == "catalog" and reference.context == "services"
    assert messages == [{"progress": 0.5}]
    logged = [r.getMessage() for r in caplog.records if getattr(r, "assay_question", None)]
    assert any(f"[{SRUID} | {question_uuid}] starting answer" in m for m in logged)
    assert any(m.endswith("a printed line") for m in logged)
    kinds = [e["kind"] for e in asker.received_events or []]
    assert kinds[0] == "delivery" and kinds[-1] == "result"
    assert {"log_record", "monitor_message"} <= set(kinds)
    # The bundle is in the catalog once, its blobs on the remote, none in the asker's store.
    (bundle,) = outputs_of(question_uuid)
    assert bundle.uuid == reference.uuid
    assert not any((dask_home / "store" / "objects").glob("*/*"))
    workspace = open_workspace()
    bound = remotes.binding(workspace, "services")
    assert bound is not None  # the remote lists it, complete, from before the answer
    assert reference.uuid in remotes.open_context(workspace, bound).index().entries
    api.pull("services", localize=True)  # read here from S3, verified by content hash
    folder = answer["output_manifest"].download()["numbers"]
    assert (Path(folder) / "numbers.txt").read_text() == "0 1 2 3"
    record = events.get_question(question_uuid)
    assert record.backend == "dask" and record.status == "succeeded"
    assert store.get_job(question_uuid).environment == "far"


def test_the_apps_exception_reaches_the_asker_as_its_type(dask_home: Path, service: Path) -> None:
    with pytest.raises(ValueError, match="the app refuses 7") as caught:
        child(service).ask(input_values={"mode": "raise", "n": 7}, timeout=120)
    question_uuid = caught.value.question_uuid  # type: ignore[attr-defined]
    assert "raise ValueError" in caught.value.child_traceback  # type: ignore[attr-defined]
    assert events.get_question(question_uuid).status == "failed"
    assert store.get_job(question_uuid).state == "FAILED"
    assert outputs_of(question_uuid) == []


def _app_threads() -> int:
    """Run on each worker: threads whose stack is in a test service's app."""
    import traceback

    return sum(
        "services/asker/app.py" in "".join(traceback.format_stack(frame))
        for frame in sys._current_frames().values()
    )


def app_threads_end(client: Any, timeout: float = 30.0) -> None:
    """Wait until no worker thread runs the app (an interrupted app really stopped)."""
    deadline = time.monotonic() + timeout
    while sum(client.run(_app_threads).values()):
        assert time.monotonic() < deadline, "the app still runs on a worker"
        time.sleep(0.05)


def test_cancel_a_running_question(
    dask_home: Path, service: Path, tmp_path: Path, client: Any
) -> None:
    marker = tmp_path / "running"
    _, question_uuid = child(service).ask(
        input_values={"mode": "wait", "marker": str(marker)}, asynchronous=True, timeout=120
    )
    wait_for(marker)  # the app runs on a worker
    assert store.get_job(question_uuid).state == "RUNNING"

    assert Child.cancel(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=60)
    record = store.get_job(question_uuid)
    assert record.state == "STOPPED"
    assert outputs_of(question_uuid) == []
    assert "stop_request" in [e.type for e in store.list_events(question_uuid)]
    app_threads_end(client)


def test_the_askers_timeout_ends_a_running_question_timed_out(
    dask_home: Path, service: Path, tmp_path: Path, client: Any
) -> None:
    marker = tmp_path / "running"
    with pytest.raises(QuestionTimeout) as caught:
        child(service).ask(input_values={"mode": "wait", "marker": str(marker)}, timeout=3)
    (question,) = events.list_questions(service_id=SRUID)
    assert caught.value.question_uuid == question.question_uuid  # type: ignore[attr-defined]
    assert marker.exists()  # it ran, and was interrupted on its worker
    assert question.status == "timed_out"
    assert store.get_job(question.question_uuid).state == "TIMED_OUT"
    assert outputs_of(question.question_uuid) == []
    app_threads_end(client)


def test_cancel_a_queued_question_cancels_its_future(
    dask_home: Path, service: Path, cluster: Any, client: Any
) -> None:
    write_environments(
        dask_home,
        f"""environments:
  - id: big
    executor: dask
    scheduler: {cluster.scheduler_address}
    cpu: 64
""",
    )
    _, question_uuid = child(service, "big").ask(input_values={"n": 2}, asynchronous=True)
    key = f"assay-job-{question_uuid}"
    # Submits and cancels travel on the client's message stream: wait for the scheduler's view.
    scheduler_sees(client, lambda states: states.get(key) == "no-worker")  # no worker has CPU=64

    assert Child.cancel(question_uuid) is True
    with pytest.raises(QuestionCancelled):
        Child.get_answer(question_uuid, timeout=60)
    assert store.get_job(question_uuid).state == "STOPPED"
    scheduler_sees(client, lambda states: key not in states)


def scheduler_sees(client: Any, condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition(client.run_on_scheduler(_scheduler_task_states)):
        assert time.monotonic() < deadline, "the scheduler's task states never got there"
        time.sleep(0.05)


@pytest.mark.parametrize(("environment", "requeue"), [("cluster", False), ("cluster-rq", True)])
def test_a_worker_killed_mid_question(
    dask_home: Path, service: Path, tmp_path: Path, environment: str, requeue: bool
) -> None:
    marker = tmp_path / "attempts"
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            result["answer"] = child(service, environment).ask(
                input_values={"mode": "die_once", "marker": str(marker), "n": 3}, timeout=120
            )
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=ask)
    thread.start()
    attempts, pid = wait_for(marker).split()
    assert attempts == "1"
    os.kill(int(pid), signal.SIGKILL)  # the worker process answering it dies
    thread.join(timeout=120)
    assert not thread.is_alive()

    (question,) = events.list_questions(service_id=SRUID)
    job = store.get_job(question.question_uuid)
    types = [e.event for e in store.list_events(job.job_id) if e.type == "transition"]
    if not requeue:
        assert isinstance(result["error"], ChildCrashed)
        assert "worker lost" in str(result["error"])
        assert job.state == "FAILED" and question.status == "crashed"
        assert outputs_of(job.job_id) == []
        return
    answer, question_uuid = result["answer"]
    assert question_uuid == job.job_id and job.state == "FINISHED"
    assert answer["output_values"]["total"] == 3
    assert marker.read_text().split()[0] == "2"  # the second attempt answered
    assert "requeue" in types
    (bundle,) = outputs_of(question_uuid)  # one output bundle, never two
    assert bundle.uuid == answer["output_manifest"].references["numbers"].uuid


def test_bad_input_and_an_unreachable_scheduler_fail_before_anything_is_recorded(
    dask_home: Path, service: Path
) -> None:
    with pytest.raises(ParamNotPicklable, match="cannot be sent to a Dask worker"):
        child(service).ask(input_values={"n": 1, "f": threading.Lock()})
    write_environments(
        dask_home,
        """environments:
  - id: gone
    executor: dask
    scheduler: tcp://127.0.0.1:9
    connect_timeout_s: 0.5
""",
    )
    with pytest.raises(
        SchedulerUnreachable, match=re.escape("tcp://127.0.0.1:9 unreachable within 0.5 s")
    ):
        child(service, "gone").ask(input_values={"n": 1})
    assert events.list_questions() == []
    assert store.list_jobs() == []


def test_assay_run_env(dask_home: Path, service: Path) -> None:
    run = invoke("run", "--service-config", service, "--env", "cluster", "-i", '{"n": 5}', "--json")
    assert run.exit_code == 0, str(run)
    assert "a printed line" in run.stderr  # the worker's lines, shown as for a local question
    answered = run.json()
    assert answered["output_values"]["total"] == 10
    assert answered["output_values"]["pid"] != os.getpid()
    assert events.get_question(answered["question_uuid"]).backend == "dask"
    write_environments(
        dask_home,
        """environments:
  - id: gone
    executor: dask
    scheduler: tcp://127.0.0.1:9
    connect_timeout_s: 0.5
""",
    )
    refused = invoke("run", "--service-config", service, "--env", "gone", "-i", '{"n": 5}')
    expect_error(refused, 6, "dask scheduler tcp://127.0.0.1:9 unreachable within 0.5 s")
    unknown = invoke("run", "--service-config", service, "--env", "nowhere", "-i", "{}")
    expect_error(unknown, 3, "no compute environment 'nowhere'")
