"""Code changes re-run exactly the changed tasks; the subprocess executor gives the same
bundles as threads; ``run`` records the whole pipeline as one job."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pipeline_test_tasks as tasks
import pytest

from assay import api
from assay.bundles.workspace import open_workspace
from assay.core.errors import EnvironmentNotFound, SchedulerUnreachable, TaskFailed
from assay.jobs import store as job_store
from assay.pipelines import planner
from assay.pipelines.apply import ApplyRequest, plan_pipeline

CTX = "code"

MODULE = """
from assay.pipe import PipeTask, IntParameter

def scale(x):
    return x * {factor}

def unused():
    return "edits here do not matter"

class Source(PipeTask):
    def pipe_run(self):
        return [1, 2, 3]

class Scaled(PipeTask):
    def pipe_requires(self):
        self.add_dependency("source", Source, {{}})

    def pipe_run(self, source=None):
        return [scale(x) for x in source]
"""


@pytest.fixture
def ctx(sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASSAY_HOME", str(sqlite_home))  # restored after tests that switch homes
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("PIPE_TEST_MARKERS", str(markers))
    api.context(CTX)
    return markers


def write_module(folder: Path, factor: int, extra: str = "") -> ModuleType:
    (folder / "versioned_pipeline.py").write_text(
        textwrap.dedent(MODULE.format(factor=factor)) + extra
    )
    importlib.invalidate_caches()
    if "versioned_pipeline" in sys.modules:
        return importlib.reload(sys.modules["versioned_pipeline"])
    return importlib.import_module("versioned_pipeline")


def plan(task: type) -> dict[str, tuple[str, str]]:
    decisions = plan_pipeline(open_workspace(), ApplyRequest(CTX, task, {}))
    return {d.node.bundle_name: (d.action, d.reason) for d in decisions}


@pytest.fixture(params=["index", "per-wave queries"])
def lookups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Cache look-ups from the index read before the run, or (a context with too many
    versions to read whole) from the catalog wave by wave: both must decide alike."""
    if request.param != "index":
        monkeypatch.setattr(planner, "_INDEX_ROWS_PER_TASK", 0)
    return str(request.param)


def test_a_change_in_a_called_same_module_function_reruns_only_its_task(
    ctx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookups: str
) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    module = write_module(folder, 2)
    assert plan(module.Scaled) == {
        "Source": ("run", "no output yet"),
        "Scaled": ("run", "no output yet"),
    }
    api.apply(CTX, module.Scaled)
    assert api.cat(CTX, "Scaled") == [2, 4, 6]

    # An edit to a function no task calls changes nothing.
    module = write_module(folder, 2, extra="\n# a comment at the end\n")
    assert plan(module.Scaled) == {"Source": ("cached", ""), "Scaled": ("cached", "")}

    # An edit to scale(), which Scaled calls: Scaled re-runs, Source stays cached.
    module = write_module(folder, 10)
    assert plan(module.Scaled) == {"Source": ("cached", ""), "Scaled": ("run", "code changed")}
    assert api.apply(CTX, module.Scaled)["did_work"] is True
    assert api.cat(CTX, "Scaled") == [10, 20, 30]
    sys.modules.pop("versioned_pipeline", None)


def test_dry_run_reasons_for_params_forced_and_upstream(ctx: Path, lookups: str) -> None:
    api.apply(CTX, tasks.Total, params={"n": 3})
    request = ApplyRequest(CTX, tasks.Total, {"n": 5})
    reasons = {
        d.node.bundle_name: (d.action, d.reason) for d in plan_pipeline(open_workspace(), request)
    }
    assert reasons == {"Numbers": ("run", "param changed"), "Total": ("run", "param changed")}
    forced = ApplyRequest(CTX, tasks.Total, {"n": 3}, force=True)
    reasons = {
        d.node.bundle_name: (d.action, d.reason) for d in plan_pipeline(open_workspace(), forced)
    }
    assert reasons == {"Numbers": ("cached", ""), "Total": ("run", "forced")}
    # Nothing was written by planning.
    assert len(api.search(CTX)) == 2


def test_the_subprocess_executor_makes_the_same_bundles(ctx: Path) -> None:
    api.apply(CTX, tasks.Report, params={"n": 4}, output_bundle="by_threads")
    threads = {b.name: b for b in api.search(CTX)}

    result = api.apply(
        CTX, tasks.Report, params={"n": 4}, output_bundle="by_processes", executor="subprocess"
    )

    assert result == {"success": True, "did_work": True}  # the root has a new name
    processes = api.get(CTX, "by_processes")
    assert processes is not None
    assert processes.content_hash == threads["by_threads"].content_hash
    assert processes.tags == threads["by_threads"].tags
    assert Path(processes.data["file"]).read_text() == "report: total=6.0 squares=[0, 1, 4, 9]\n"
    assert set(processes.lineage.depends_on.values()) == {
        threads["Total"].uuid,
        threads["Squares"].uuid,
    }
    assert api.apply(
        CTX,
        tasks.Report,
        params={"n": 4},
        output_bundle="by_processes",
        force_all=True,
        executor="subprocess",
        workers=2,
    )["did_work"]
    assert (ctx / "runs.log").read_text().count("Numbers(4)") == 2  # once per executor run


def test_a_failure_in_a_subprocess_names_the_task_with_the_childs_traceback(ctx: Path) -> None:
    with pytest.raises(TaskFailed) as caught:
        api.apply(CTX, tasks.ReturnsObject, executor="subprocess")
    assert str(caught.value).startswith("task ReturnsObject() failed: InvalidInput: cannot store")
    assert "assay/pipelines/worker.py" in caught.value.details["traceback"]
    assert {b.name for b in api.search(CTX)} == {"Numbers"}


def test_run_records_the_pipeline_as_one_job_with_its_tasks_as_children(ctx: Path) -> None:
    result = api.run(CTX, tasks.Total, {"n": 2}, compute_environment="local")

    assert result["state"] == "FINISHED" and result["success"] is True
    job = job_store.get_job(result["job_id"])
    assert (job.kind, job.environment) == ("pipeline", "local")
    children = job_store.list_jobs(kind="pipeline_task", parent_job_id=result["job_id"])
    assert {c.spec["bundle_name"] for c in children} == {"Numbers", "Total"}
    total = api.get(CTX, "Total")
    assert total is not None and result["output_bundle_uuid"] == total.uuid
    # Again: the same job is recreated and finds everything cached.
    again = api.run(CTX, "pipeline_test_tasks:Total", {"n": 2})
    assert (again["job_id"], again["did_work"]) == (result["job_id"], False)


def test_run_in_an_unknown_environment_is_refused(ctx: Path) -> None:
    with pytest.raises(EnvironmentNotFound, match="no compute environment 'gpu-farm'"):
        api.run(CTX, tasks.Total, {"n": 2}, compute_environment="gpu-farm")
    assert api.search(CTX) == []


def test_a_failing_run_is_a_failed_job_and_raises(ctx: Path) -> None:
    with pytest.raises(TaskFailed):
        api.run(CTX, tasks.ReturnsObject)
    [job] = job_store.list_jobs(kind="pipeline")
    assert job.state == "FAILED"


def test_incremental_push_commits_and_pushes_each_output(ctx: Path, tmp_path: Path) -> None:
    remote_root = tmp_path / "remote"
    remote_root.mkdir()
    api.remote(CTX, "shared", f"file://{remote_root}")

    api.apply(CTX, tasks.Total, params={"n": 2}, incremental_push=True)

    made = api.search(CTX)
    assert {b.name for b in made} == {"Numbers", "Total"}
    assert all(b.committed for b in made)
    # A second machine (another ASSAY_HOME) pulls both from the remote alone.
    other_home = tmp_path / "other-home"
    from assay.bundles.workspace import close_workspaces

    close_workspaces()
    os.environ["ASSAY_HOME"] = str(other_home)
    try:
        api.context(CTX)
        api.remote(CTX, "shared", f"file://{remote_root}")
        api.pull(CTX, localize=True)
        assert {b.uuid for b in api.search(CTX)} == {b.uuid for b in made}
        assert api.cat(CTX, "Total") == 1.0
    finally:
        close_workspaces()


def test_run_uses_the_declared_environments(ctx: Path, sqlite_home: Path) -> None:
    (sqlite_home / "environments.yaml").write_text(
        "environments:\n"
        "  - id: workstation\n    executor: local\n    isolation: none\n"
        "  - id: cluster\n    executor: dask\n    isolation: none\n"
        "    scheduler: tcp://127.0.0.1:9\n    connect_timeout_s: 0.5\n"
    )
    result = api.run(CTX, tasks.Numbers, {"n": 2}, compute_environment="workstation")
    assert (result["environment"], result["state"]) == ("workstation", "FINISHED")
    assert job_store.get_job(result["job_id"]).environment == "workstation"

    with pytest.raises(
        SchedulerUnreachable, match=r"tcp://127\.0\.0\.1:9 unreachable within 0\.5 s"
    ):
        api.run(CTX, tasks.Total, {"n": 5}, compute_environment="cluster")
    assert {b.name for b in api.search(CTX)} == {"Numbers"}
