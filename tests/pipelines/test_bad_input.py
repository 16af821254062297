"""Each bad input gets a clear error, and nothing is lost or half-written."""

from __future__ import annotations

import threading
from pathlib import Path

import pipeline_test_tasks as tasks
import pytest

from assay import api
from assay.bundles.workspace import open_workspace
from assay.core.errors import (
    DependencyCycle,
    DuplicateOutputName,
    ExternalBundleNotFound,
    InvalidParameter,
    ParamNotSerializable,
    TaskFailed,
    TaskImportFailed,
)
from assay.jobs import store as job_store
from assay.pipelines.loading import load_task_class

CTX = "bad"


@pytest.fixture
def ctx(sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("PIPE_TEST_MARKERS", str(markers))
    api.context(CTX)
    return markers


def snapshot() -> set[tuple[str, str, str]]:
    return {(b.name, b.uuid, b.content_hash) for b in api.search(CTX)}


def staging_left(home: Path) -> list[Path]:
    staging = home / "staging"
    return list(staging.iterdir()) if staging.exists() else []


def test_a_dependency_cycle_is_named_with_its_path(ctx: Path) -> None:
    with pytest.raises(DependencyCycle) as caught:
        api.apply(CTX, tasks.CycleA)
    assert str(caught.value) == ("dependency cycle: CycleA() -> CycleB() -> CycleC() -> CycleA()")
    assert snapshot() == set()


def test_a_missing_external_bundle_stops_the_plan_before_anything_runs(ctx: Path) -> None:
    with pytest.raises(ExternalBundleNotFound, match=r"UsesExternal.*name 'raw'.*context 'bad'"):
        api.apply(CTX, tasks.UsesExternal)
    assert snapshot() == set()
    assert job_store.list_jobs(kind="pipeline_task") == []


def test_a_param_of_the_wrong_type_or_an_unknown_param_is_refused(ctx: Path) -> None:
    with pytest.raises(InvalidParameter, match="'n' of Total expects an int, got str '3'"):
        api.apply(CTX, tasks.Total, params={"n": "3"})
    with pytest.raises(InvalidParameter, match="Total has no parameter 'size'"):
        api.apply(CTX, tasks.Total, params={"size": 3})
    with pytest.raises(InvalidParameter, match="'i' of Piece is required"):
        api.apply(CTX, tasks.Piece)
    assert snapshot() == set()


def test_a_task_returning_an_unsupported_type_fails_naming_it(ctx: Path, sqlite_home: Path) -> None:
    with pytest.raises(TaskFailed) as caught:
        api.apply(CTX, tasks.ReturnsObject)
    message = str(caught.value)
    assert message.startswith("task ReturnsObject() failed: InvalidInput: cannot store a value")
    assert "Traceback" in caught.value.details["traceback"]
    assert caught.value.details["result"] == {"success": False, "did_work": True}
    # The upstream output is kept (cached); nothing of the failed task was stored.
    assert {name for name, _, _ in snapshot()} == {"Numbers"}
    assert staging_left(sqlite_home) == []


def test_a_task_raising_mid_way_in_a_parallel_run_keeps_the_others_and_resumes(
    ctx: Path, sqlite_home: Path
) -> None:
    (ctx / "fail-3").write_text("")
    with pytest.raises(TaskFailed) as caught:
        api.apply(CTX, tasks.Gather, workers=4)
    assert str(caught.value).startswith(
        "task Piece(i=3) failed: ValueError: piece 3 cannot be made"
    )
    assert (
        'raise ValueError(f"piece {self.i} cannot be made")' in (caught.value.details["traceback"])
    )
    stored = {name for name, _, _ in snapshot()}
    assert "piece_3" not in stored and "Gather" not in stored
    assert stored and stored <= {f"piece_{i}" for i in range(6)}
    assert staging_left(sqlite_home) == []
    jobs = {j.spec["bundle_name"]: j.state for j in job_store.list_jobs(kind="pipeline_task")}
    assert jobs["piece_3"] == "FAILED"
    first_run = set((ctx / "runs.log").read_text().splitlines())
    (ctx / "runs.log").unlink()

    # The cause fixed, the next run resumes: finished pieces are cached, not redone.
    (ctx / "fail-3").unlink()
    assert api.apply(CTX, tasks.Gather, workers=4) == {"success": True, "did_work": True}
    second_run = set((ctx / "runs.log").read_text().splitlines())
    done_before = {f"Piece({name.split('_')[1]})" for name in stored}
    assert second_run.isdisjoint(done_before)
    assert second_run == {f"Piece({i})" for i in range(6)} - done_before | {"Gather"}
    assert "Piece(3)" in first_run and "Piece(3)" in second_run
    assert api.cat(CTX, "Gather") == 15


def test_two_tasks_writing_one_bundle_name_are_refused_before_running(ctx: Path) -> None:
    with pytest.raises(DuplicateOutputName, match=r"bundle 'shared'.*SameName\(n=1\)"):
        api.apply(CTX, tasks.TwoWriters)
    assert snapshot() == set()


def test_a_param_without_json_form_is_refused_by_the_subprocess_executor(ctx: Path) -> None:
    lock = threading.Lock()
    with pytest.raises(ParamNotSerializable, match=r"'thing' of Opaque.*lock.*subprocess"):
        api.apply(CTX, tasks.Opaque, params={"thing": lock}, executor="subprocess")
    assert snapshot() == set()
    # In process the same value is fine: hashed by its repr.
    assert api.apply(CTX, tasks.Opaque, params={"thing": lock})["success"]


def test_a_task_reference_that_does_not_import_says_why(ctx: Path, tmp_path: Path) -> None:
    with pytest.raises(TaskImportFailed, match="No module named 'no_such_module'"):
        load_task_class("no_such_module:Task")
    with pytest.raises(TaskImportFailed, match="has no task 'Nope'"):
        load_task_class("pipeline_test_tasks:Nope")
    with pytest.raises(TaskImportFailed, match="is not a PipeTask subclass"):
        load_task_class("pipeline_test_tasks:note_run")


def test_workers_and_executor_are_checked(ctx: Path) -> None:
    with pytest.raises(Exception, match="workers must be at least 1"):
        api.apply(CTX, tasks.Numbers, workers=0)
    with pytest.raises(Exception, match="unknown executor 'dask'"):
        api.apply(CTX, tasks.Numbers, executor="dask")
    assert open_workspace() is not None and snapshot() == set()
