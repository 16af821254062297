"""run_inline: finish, fail, stop (raised, or requested from another process), logs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assay.core.errors import InvalidTransition, JobStopped
from assay.jobs import store
from assay.jobs.ids import job_id
from assay.jobs.runner import JobContext, run_inline
from helpers import run_python


def _job(name: str) -> str:
    jid = job_id("inline", name)
    store.create_job("pipeline_task", jid, spec={"task": name})
    return jid


def test_finish_with_result_and_logs(assay_home: Path) -> None:
    jid = _job("ok")

    def work(ctx: JobContext) -> dict[str, int]:
        ctx.log("hello")
        ctx.monitor({"progress": 0.5})
        ctx.heartbeat()
        return {"answer": 42}

    record = run_inline(jid, work)
    assert record.state == "FINISHED" and record.result == {"answer": 42}
    assert record.started is not None and record.finished is not None
    events = store.list_events(jid)
    assert [(e.type, e.event) for e in events] == [
        ("transition", "create"),
        ("transition", "run"),
        ("log", ""),
        ("monitor", ""),
        ("transition", "finish"),
    ]
    assert events[2].payload == {"level": "info", "message": "hello"}


def test_failure_is_recorded_not_raised(assay_home: Path) -> None:
    jid = _job("boom")

    def work(ctx: JobContext) -> None:
        raise ValueError("bad value")

    record = run_inline(jid, work)
    assert record.state == "FAILED" and record.error == "ValueError: bad value"
    last = store.list_events(jid)[-1]
    assert last.event == "fail" and "ValueError: bad value" in last.payload["traceback"]


def test_non_dict_return_fails(assay_home: Path) -> None:
    record = run_inline(_job("list"), lambda ctx: [1, 2])  # type: ignore[arg-type,return-value]
    assert record.state == "FAILED" and "returned list" in (record.error or "")


def test_job_stopped_raised_inside_ends_stopped(assay_home: Path) -> None:
    def work(ctx: JobContext) -> None:
        raise JobStopped("enough")

    record = run_inline(_job("stopped"), work)
    assert record.state == "STOPPED" and record.error is None


def test_stop_requested_from_another_process_is_seen(assay_home: Path) -> None:
    jid = _job("remote-stop")
    seen: list[float] = []

    def work(ctx: JobContext) -> None:
        # Ask for the stop from a separate interpreter, then wait until this job sees it.
        result = run_python(
            "import sys; from assay.jobs import store; store.request_stop(sys.argv[1])", jid
        )
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ctx.stop_requested():
                seen.append(time.monotonic())
                ctx.check_stop()
            time.sleep(0.01)
        raise AssertionError("the stop request never arrived")

    record = run_inline(jid, work)
    assert seen and record.state == "STOPPED"
    assert [e.type for e in store.list_events(jid)][-2:] == ["stop_request", "transition"]


def test_run_inline_refuses_a_job_that_cannot_run(assay_home: Path) -> None:
    jid = _job("done")
    run_inline(jid, lambda ctx: None)
    called = []
    with pytest.raises(InvalidTransition, match="FINISHED"):
        run_inline(jid, lambda ctx: called.append(1))  # type: ignore[func-returns-value]
    assert called == []
    assert store.get_job(jid).state == "FINISHED"


def test_an_end_lost_to_another_process_is_not_overwritten(assay_home: Path) -> None:
    jid = _job("reconciled")

    def work(ctx: JobContext) -> dict[str, bool]:
        store.fire(jid, "fail", error="supervisor declared dead")  # as reconcile would
        return {"late": True}

    record = run_inline(jid, work)
    assert record.state == "FAILED" and record.error == "supervisor declared dead"
    assert record.result is None
