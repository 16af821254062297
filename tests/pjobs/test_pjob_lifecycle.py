"""The curation life cycle on the job layer: guarded events, history, admin events, reset
safety, replays (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pjob_helpers import stored, write

from assay.bundles.workspace import Workspace
from assay.core.errors import (
    AuthenticationRequired,
    DeliveryConflict,
    InvalidEvent,
    InvalidTransition,
    PermissionDenied,
    PipelineJobNotFound,
    UnsafeReset,
)
from assay.jobs import store
from assay.jobs.fsm import machine_for
from assay.pipelinejobs import (
    ManagedPipelineJob,
    ManagedPipelineJobError,
    ManagedPipelineJobInstance,
    admin_token,
)
from assay.pjobs.archive import products_root
from assay.pjobs.events import apply_event
from assay.pjobs.pipelines import Pipeline
from assay.pjobs.service import list_pipelinejobs
from assay.pjobs.tokens import job_token


def _job(workspace: Workspace, **kwargs: object) -> ManagedPipelineJob:
    kwargs.setdefault("measurement_id", "m1")
    return ManagedPipelineJob(workspace, "sd2e/tacobot", **kwargs).setup()  # type: ignore[arg-type]


def test_machine_is_registered_with_codes_and_events() -> None:
    machine = machine_for("pipelinejob")
    states = {s.name: s for s in machine.states}
    assert set(states) == {
        "CREATED", "RUNNING", "FINISHED", "INDEXING", "VALIDATING", "VALIDATED", "REJECTED",
        "FINALIZED", "FAILED", "RETIRED", "RESET",
    }  # fmt: skip
    assert len({s.code for s in states.values()}) == len(states)
    assert machine.terminal_states() == frozenset({"RETIRED"})
    from assay.pjobs.machine import EVENTS

    assert {
        "create", "run", "update", "resource", "fail", "finish", "index", "indexed", "validate",
        "validated", "reject", "finalize", "retire", "reset", "ready",
    } <= EVENTS  # fmt: skip
    assert "RESET --> CREATED: ready" in machine.to_mermaid()


def test_full_life_and_history(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    job.resource({"queue": "normal"})
    job.run({"host": "hpc1"})
    job.update({"progress": 50})
    job.finish({"exit": 0})
    job.index()
    assert job.state == "FINISHED"
    job.validate()
    job.update({"check": "ok"})
    job.validated()
    job.finalize()
    job.retire()
    assert job.state == "RETIRED"
    events = store.list_events(job._uuid(), workspace=workspace)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    transitions = [(e.event, e.from_state, e.to_state) for e in events if e.type == "transition"]
    assert transitions == [
        ("create", None, "CREATED"),
        ("resource", "CREATED", "CREATED"),
        ("run", "CREATED", "RUNNING"),
        ("update", "RUNNING", "RUNNING"),
        ("finish", "RUNNING", "FINISHED"),
        ("index", "FINISHED", "INDEXING"),
        ("indexed", "INDEXING", "FINISHED"),
        ("validate", "FINISHED", "VALIDATING"),
        ("update", "VALIDATING", "VALIDATING"),
        ("validated", "VALIDATING", "VALIDATED"),
        ("finalize", "VALIDATED", "FINALIZED"),
        ("retire", "FINALIZED", "RETIRED"),
    ]
    assert [e.payload.get("data") for e in events if e.event == "update"] == [
        {"progress": 50},
        {"check": "ok"},
    ]


@pytest.mark.parametrize(
    ("setup", "event", "state"),
    [
        ((), "finish", "CREATED"),
        ((), "update", "CREATED"),
        ((), "index", "CREATED"),
        (("run",), "validate", "RUNNING"),
        (("run", "finish"), "run", "FINISHED"),
        (("run", "finish"), "reject", "FINISHED"),
    ],
)
def test_event_in_the_wrong_state_changes_nothing(
    workspace: Workspace, pipeline: Pipeline, setup: tuple[str, ...], event: str, state: str
) -> None:
    job = _job(workspace)
    for name in setup:
        getattr(job, name)()
    before = stored(workspace)
    with pytest.raises(InvalidTransition) as caught:
        getattr(job, event)()
    assert f"cannot {event} a job that is {state}" in str(caught.value)
    assert stored(workspace) == before


def test_event_before_setup_is_refused(workspace: Workspace, pipeline: Pipeline) -> None:
    with pytest.raises(ManagedPipelineJobError, match="setup"):
        ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1").run()


def test_admin_events_need_the_admin_token(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    job.run()
    job.fail({"error": "boom"})
    assert job.state == "FAILED" and job.job is not None and job.job.error == "boom"
    before = stored(workspace)
    with pytest.raises(AuthenticationRequired):
        job.reset()
    with pytest.raises(PermissionDenied, match="admin token"):
        job.reset(token=job.token)  # the job's own token is not enough
    with pytest.raises(PermissionDenied):
        apply_event(workspace, job._uuid(), "reset")  # not admin
    assert stored(workspace) == before
    job.reset(token=admin_token(workspace))
    assert job.state == "RESET"
    job.ready(token=admin_token(workspace))
    assert job.state == "CREATED"
    job.run()
    assert job.state == "RUNNING"


def test_reset_clears_only_the_jobs_folder(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    assert job.job is not None
    folder = Path(job.job.local_path)
    write(folder, {"out/a.csv": "1", "b.txt": "2"})
    outside = products_root(workspace.settings) / "precious.txt"
    outside.write_text("keep me")
    (folder / "link-out").symlink_to(outside)  # removed as a link, never followed
    job.run()
    job.fail()
    job.reset(token=admin_token(workspace))
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert outside.read_text() == "keep me"
    removed = [
        e.payload["removed_files"]
        for e in store.list_events(job._uuid(), workspace=workspace)
        if e.type == "admin"
    ]
    assert removed == [4]


def test_reset_refused_when_it_would_delete_another_jobs_files(
    workspace: Workspace, pipeline: Pipeline
) -> None:
    outer = _job(workspace, archive_path="/products/shared")
    inner = _job(workspace, measurement_id="m2", archive_path="/products/shared/inner")
    assert inner.job is not None
    write(Path(inner.job.local_path), {"result.csv": "inner's"})
    outer.run()
    outer.fail()
    before = stored(workspace)
    with pytest.raises(UnsafeReset, match="other jobs"):
        outer.reset(token=admin_token(workspace))
    assert stored(workspace) == before
    assert outer.state == "FAILED"


def test_reset_refused_when_the_folder_is_a_symlink_outside(
    workspace: Workspace, pipeline: Pipeline, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, {"data.bin": "not the job's"})
    job = _job(workspace, setup_archive_path=False)
    assert job.job is not None
    folder = Path(job.job.local_path)
    folder.parent.mkdir(parents=True)
    folder.symlink_to(elsewhere)
    job.run()
    job.fail()
    before = stored(workspace)
    with pytest.raises(UnsafeReset, match="symbolic link"):
        job.reset(token=admin_token(workspace))
    assert (elsewhere / "data.bin").read_text() == "not the job's"
    assert stored(workspace) == before


def test_delete_hides_the_job_and_keeps_files(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    assert job.job is not None
    write(Path(job.job.local_path), {"x.csv": "1"})
    with pytest.raises(AuthenticationRequired):
        job.delete()
    job.delete(token=admin_token(workspace))
    assert list_pipelinejobs(workspace) == []
    with pytest.raises(PipelineJobNotFound):
        ManagedPipelineJobInstance(workspace, job._uuid())
    assert (Path(job.job.local_path) / "x.csv").exists()


def test_instance_handle_verifies_tokens(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    uuid = job._uuid()
    instance = ManagedPipelineJobInstance(workspace, uuid)
    assert instance.archive_path == job.archive_path
    before = stored(workspace)
    with pytest.raises(AuthenticationRequired):
        instance.handle({"event": "run"})
    other = _job(workspace, measurement_id="m-other")
    for bad in ("f" * 64, job_token(other._uuid(), workspace.settings), job.token[:-1] + "0"):
        with pytest.raises(PermissionDenied):
            instance.handle({"event": "run"}, token=bad)
    after_other = stored(workspace)
    assert (
        after_other["counts"]["job_events"] == before["counts"]["job_events"] + 1
    )  # other's create
    assert instance.handle({"name": "run", "data": {"x": 1}}, token=job.token).state == "RUNNING"
    with pytest.raises(InvalidEvent, match="unknown event"):
        instance.handle({"event": "explode"}, token=job.token)
    with pytest.raises(PermissionDenied, match="admin"):
        instance.handle({"event": "reset"}, token=job.token)


def test_replayed_event_is_applied_once(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    uuid = job._uuid()
    first = apply_event(workspace, uuid, "run", {}, event_id="e-1")
    update = apply_event(workspace, uuid, "update", {"n": 1}, event_id="e-2")
    assert not first.replayed and not update.replayed
    count = len(store.list_events(uuid, workspace=workspace))
    again = apply_event(workspace, uuid, "update", {"n": 1}, event_id="e-2")
    assert again.replayed
    assert len(store.list_events(uuid, workspace=workspace)) == count
    with pytest.raises(DeliveryConflict, match="another event"):
        apply_event(workspace, uuid, "update", {"n": 2}, event_id="e-2")
    # a refused event releases its id: sent again when allowed, it applies
    with pytest.raises(InvalidTransition):
        apply_event(workspace, uuid, "validate", {}, event_id="e-3")
    apply_event(workspace, uuid, "finish", {}, event_id="e-4")
    assert apply_event(workspace, uuid, "validate", {}, event_id="e-3").state == "VALIDATING"


def test_secret_file_is_private_and_stable(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    token = job.token
    secret = workspace.settings.home / "server_secret"
    assert oct(os.stat(secret).st_mode & 0o777) == "0o600"
    job.run()
    job.update({"a": 1})
    assert job.token == token  # stable across updates
    assert token not in secret.read_text()


def test_token_in_the_body_as_in_sd2e(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _job(workspace)
    instance = ManagedPipelineJobInstance(workspace, job._uuid())
    before = stored(workspace)
    with pytest.raises(PermissionDenied, match="not the one in the URL"):
        instance.handle({"event": "run", "token": "f" * 64}, token=job.token)
    with pytest.raises(PermissionDenied):
        instance.handle({"event": "run", "token": "f" * 64})
    assert stored(workspace) == before
    assert instance.handle({"event": "run", "token": job.token}).state == "RUNNING"
