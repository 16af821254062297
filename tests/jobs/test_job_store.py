"""The job store on SQLite and PostgreSQL: create, fire, events, heartbeats, stop requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from assay.bundles.workspace import open_workspace
from assay.catalog.schema import job_events, jobs
from assay.core.errors import (
    AmbiguousReference,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
)
from assay.jobs import store
from assay.jobs._json import PAYLOAD_CAP
from assay.jobs.ids import job_id


def _rows() -> tuple[int, int]:
    with open_workspace().read() as conn:
        return (
            conn.execute(select(func.count()).select_from(jobs)).scalar_one(),
            conn.execute(select(func.count()).select_from(job_events)).scalar_one(),
        )


def _new(name: str = "a", **kwargs: object) -> str:
    jid = job_id("test", name)
    record, created = store.create_job("compute", jid, spec={"name": name}, **kwargs)  # type: ignore[arg-type]
    assert created and record.state == "CREATED" and record.state_code == 1
    return jid


def test_create_is_idempotent_and_force_recreates_a_terminal_job(assay_home: Path) -> None:
    jid = _new()
    again, created = store.create_job("compute", jid, spec={"name": "other"})
    assert not created and again.spec == {"name": "a"}
    with pytest.raises(InvalidTransition, match="stop it first"):
        store.create_job("compute", jid, spec={}, force=True)
    store.fire(jid, "run")
    store.fire(jid, "fail", error="RuntimeError: boom")
    recreated, created = store.create_job("compute", jid, spec={"name": "b"}, force=True)
    assert created and recreated.state == "CREATED" and recreated.error is None
    assert recreated.spec == {"name": "b"} and recreated.finished is None
    events = store.list_events(jid)
    assert [(e.event, e.from_state, e.to_state) for e in events] == [
        ("create", None, "CREATED"),
        ("run", "CREATED", "RUNNING"),
        ("fail", "RUNNING", "FAILED"),
        ("recreate", "FAILED", "CREATED"),
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_fire_moves_state_sets_times_result_and_writes_one_event(assay_home: Path) -> None:
    jid = _new()
    running = store.fire(jid, "run", fields={"pid": 123, "host": "h"})
    assert running.state == "RUNNING" and running.started is not None and running.pid == 123
    done = store.fire(jid, "finish", result={"answer": 42}, payload={"note": "ok"})
    assert done.state == "FINISHED" and done.state_code == 70 and done.terminal
    assert done.result == {"answer": 42} and done.finished is not None
    last = store.list_events(jid)[-1]
    assert (last.type, last.event, last.payload) == ("transition", "finish", {"note": "ok"})


def test_invalid_transition_names_event_and_state_and_changes_nothing(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "run")
    store.fire(jid, "finish", result={"x": 1})
    before = _rows()
    with pytest.raises(InvalidTransition) as caught:
        store.fire(jid, "fail", error="late")
    assert "fail" in caught.value.message and "FINISHED" in caught.value.message
    record = store.get_job(jid)
    assert record.state == "FINISHED" and record.error is None and record.result == {"x": 1}
    assert _rows() == before


def test_unknown_job(assay_home: Path) -> None:
    with pytest.raises(JobNotFound, match="no job nope") as caught:
        store.fire("nope", "run")
    assert caught.value.exit_code == 3
    with pytest.raises(JobNotFound):
        store.get_job("nope")
    with pytest.raises(JobNotFound):
        store.list_events("nope")
    with pytest.raises(JobNotFound):
        store.append_event("nope", "log", {"message": "x"})
    with pytest.raises(JobNotFound):
        store.request_stop("nope")
    assert store.heartbeat("nope") is False
    assert _rows() == (0, 0)


def test_get_job_by_unique_prefix(assay_home: Path) -> None:
    ids = [_new(str(i)) for i in range(20)]
    target = ids[0]
    prefix = next(
        target[:n] for n in range(1, 37) if sum(i.startswith(target[:n]) for i in ids) == 1
    )
    assert store.get_job(prefix).job_id == target
    shared = next((i[:1] for i in ids if sum(j.startswith(i[:1]) for j in ids) > 1), None)
    if shared is not None:
        with pytest.raises(AmbiguousReference):
            store.get_job(shared)


def test_heartbeat_updates_last_seen_only(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "run")
    before = store.list_events(jid)
    assert store.heartbeat(jid, pid=4242)
    record = store.get_job(jid)
    assert record.last_seen is not None and record.pid == 4242
    assert store.list_events(jid) == before
    store.fire(jid, "finish")
    assert store.heartbeat(jid) is False  # terminal jobs are not kept alive


def test_append_events_are_numbered_after_transitions_and_capped(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "run")
    seqs = store.append_events(jid, [("log", {"message": "one"}), ("monitor", {"pct": 5})])
    assert seqs == [3, 4]
    big = "x" * (PAYLOAD_CAP + 10)
    seq = store.append_event(jid, "log", {"message": big})
    stored = store.list_events(jid, after_seq=4)[0]
    assert stored.seq == seq == 5
    assert stored.payload["message"].endswith("[truncated 10 characters]")
    assert [e.type for e in store.list_events(jid, types=["log"])] == ["log", "log"]
    assert [e.seq for e in store.list_events(jid, after_seq=1, limit=2)] == [2, 3]
    with pytest.raises(InvalidInput):
        store.append_event(jid, "transition", {})
    with pytest.raises(InvalidInput):
        store.append_event(jid, "Bad Type", {})


def test_request_stop_before_start_stops_at_once(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "queue")
    stopped = store.request_stop(jid[:12])
    assert stopped.state == "STOPPED" and stopped.finished is not None
    assert store.list_events(jid)[-1].from_state == "QUEUED"


def test_request_stop_of_a_running_job_sets_the_flag_and_leaves_a_trace(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "run")
    assert not store.stop_requested(jid)
    record = store.request_stop(jid)
    assert record.state == "RUNNING" and record.stop_requested
    assert store.stop_requested(jid)
    assert store.list_events(jid)[-1].type == "stop_request"


def test_stop_of_a_finished_job_is_refused_and_changes_nothing(assay_home: Path) -> None:
    jid = _new()
    store.fire(jid, "run")
    store.fire(jid, "finish", result={"ok": True})
    before = _rows()
    with pytest.raises(InvalidTransition, match="already FINISHED"):
        store.request_stop(jid)
    record = store.get_job(jid)
    assert record.state == "FINISHED" and not record.stop_requested
    assert _rows() == before


def test_list_jobs_filters_and_pages(assay_home: Path) -> None:
    ids = [
        _new(str(i), environment="big" if i % 2 else "local", owner=f"o{i % 3}") for i in range(7)
    ]
    store.fire(ids[0], "run")
    assert {r.job_id for r in store.list_jobs(state="RUNNING")} == {ids[0]}
    assert {r.job_id for r in store.list_jobs(environment="big")} == set(ids[1::2])
    assert {r.job_id for r in store.list_jobs(owner="o0")} == {ids[0], ids[3], ids[6]}
    assert store.list_jobs(kind="question") == []
    page1 = store.list_jobs(limit=4)
    page2 = store.list_jobs(limit=4, after=page1[-1].job_id)
    assert len(page1) == 4 and len(page2) == 3
    assert {r.job_id for r in page1 + page2} == set(ids)
    assert [r.created for r in page1] == sorted((r.created for r in page1), reverse=True)


def test_parent_job_and_custom_machine(assay_home: Path) -> None:
    from assay.jobs.fsm import State, StateMachine, Transition, register_machine

    register_machine(
        StateMachine(
            "test_curation",
            (
                State("NEW", 1, False, ""),
                State("INDEXING", 2, False, ""),
                State("DONE", 3, True, ""),
            ),
            (
                Transition("index", frozenset({"NEW"}), "INDEXING"),
                Transition("finish", frozenset({"INDEXING"}), "DONE"),
            ),
            "NEW",
        )
    )
    parent = _new("parent")
    child, _ = store.create_job(
        "pipelinejob", job_id("child"), spec={}, machine="test_curation", parent_job_id=parent
    )
    assert child.state == "NEW" and child.parent_job_id == parent
    with pytest.raises(InvalidTransition):
        store.fire(child.job_id, "run")
    store.fire(child.job_id, "index")
    assert store.fire(child.job_id, "finish").terminal
    assert [r.job_id for r in store.list_jobs(parent_job_id=parent)] == [child.job_id]
