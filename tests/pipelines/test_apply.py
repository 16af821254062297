"""apply: outputs are bundles with lineage; caching by params, code and input content; force.

Runs on SQLite and PostgreSQL (``assay_home``)."""

from __future__ import annotations

from pathlib import Path

import pipeline_test_tasks as tasks
import pytest

from assay import api
from assay.jobs import store as job_store
from assay.pipelines.jobglue import task_job_id

CTX = "pipes"


@pytest.fixture
def ctx(assay_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("PIPE_TEST_MARKERS", str(markers))
    api.context(CTX)
    return markers


def runs(markers: Path) -> list[str]:
    log = markers / "runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_a_diamond_runs_each_task_once_and_records_lineage(ctx: Path) -> None:
    result = api.apply(CTX, tasks.Report, params={"n": 4}, output_bundle="final")

    assert result == {"success": True, "did_work": True}
    assert sorted(runs(ctx)) == ["Numbers(4)", "Report", "Squares(4)", "Total(4)"]
    root = api.get(CTX, "final")
    assert root is not None
    assert root.data["total"] == 6.0 and root.data["squares"] == [0, 1, 4, 9]
    assert Path(root.data["file"]).read_text() == "report: total=6.0 squares=[0, 1, 4, 9]\n"
    assert root.tags == {"stage": "report", "root_task": "True"}
    lineage = root.lineage
    total, squares = api.get(CTX, "Total"), api.get(CTX, "Squares")
    assert total is not None and squares is not None
    assert lineage.depends_on == {"total": total.uuid, "squares": squares.uuid}
    assert lineage.params == {"n": 4, "label": "report"}
    assert lineage.code_version["task"] == "pipeline_test_tasks.Report"
    assert len(lineage.code_version["code_hash"]) == 64
    # The tests live in a git work tree: the commit and the dirty flag are recorded.
    assert len(lineage.code_version["git_commit"]) == 40
    assert isinstance(lineage.code_version["git_dirty"], bool)
    assert lineage.start_time is not None and lineage.stop_time is not None
    assert lineage.start_time <= lineage.stop_time
    numbers = api.get(CTX, "Numbers")
    assert numbers is not None
    assert total.lineage.depends_on == {"numbers": numbers.uuid}
    assert squares.lineage.depends_on == {"numbers": numbers.uuid}  # one Numbers, shared


def test_a_second_apply_does_no_work_and_makes_no_bundle(ctx: Path) -> None:
    api.apply(CTX, tasks.Report)
    runs(ctx)
    before = {b.uuid for b in api.search(CTX)}

    assert api.apply(CTX, tasks.Report) == {"success": True, "did_work": False}
    assert runs(ctx) == []
    assert {b.uuid for b in api.search(CTX)} == before


def test_tasks_run_as_jobs_with_deterministic_ids(ctx: Path) -> None:
    api.apply(CTX, tasks.Total, params={"n": 2})
    total = api.get(CTX, "Total")
    assert total is not None

    job = job_store.get_job(task_job_id(CTX, total.processing_name))
    assert (job.kind, job.state) == ("pipeline_task", "FINISHED")
    assert job.result is not None and job.result["uuid"] == total.uuid
    assert job.spec["task"] == "Total(n=2, scale=1.0)"


def test_a_changed_param_reruns_only_what_depends_on_it(ctx: Path) -> None:
    api.apply(CTX, tasks.Total, params={"n": 3})
    runs(ctx)

    api.apply(CTX, tasks.Total, params={"n": 3, "scale": 2.0})

    assert runs(ctx) == ["Total(3)"]  # Numbers(3) is cached
    total = api.get(CTX, "Total")
    assert total is not None and total.data == 6.0
    assert len(api.search(CTX, "Total")) == 2


def test_force_reruns_the_root_and_force_all_everything(ctx: Path) -> None:
    api.apply(CTX, tasks.Total)
    runs(ctx)

    assert api.apply(CTX, tasks.Total, force=True)["did_work"] is True
    assert runs(ctx) == ["Total(3)"]
    api.apply(CTX, tasks.Total, force_all=True)
    assert runs(ctx) == ["Numbers(3)", "Total(3)"]


def test_an_upstream_rerun_with_equal_content_leaves_downstream_cached(ctx: Path) -> None:
    api.apply(CTX, tasks.AfterCopy)
    runs(ctx)

    # Forcing everything re-runs every task; but a later plain run after only Copy's input
    # re-ran with the same content must find AfterCopy cached (its key holds content hashes).
    api.apply(CTX, tasks.Copy, force=True)
    assert runs(ctx) == ["Copy"]
    assert api.apply(CTX, tasks.AfterCopy) == {"success": True, "did_work": False}
    assert runs(ctx) == []


def test_the_default_name_is_the_class_and_output_bundle_names_the_root(ctx: Path) -> None:
    api.apply(CTX, tasks.Total, output_bundle="my_total", output_tags={"owner": "lab"})

    names = sorted(b.name for b in api.search(CTX))
    assert names == ["Numbers", "my_total"]
    root = api.get(CTX, "my_total")
    assert root is not None and root.tags == {"owner": "lab", "root_task": "True"}
    # Another root name is another output: it runs (the name is part of what is looked up).
    api.apply(CTX, tasks.Total)
    assert sorted(b.name for b in api.search(CTX)) == ["Numbers", "Total", "my_total"]


def test_parameters_of_every_kind_reach_the_task(ctx: Path) -> None:
    api.apply(
        CTX,
        tasks.AllKinds,
        params={"count": 7, "ratio": 2, "flag": True, "items": (3, [4]), "options": {"b": [1]}},
    )
    data = api.cat(CTX, "AllKinds")
    assert data == {
        "count": 7,
        "ratio": 2.0,
        "flag": True,
        "items": [3, (4,)],  # nested lists are frozen to tuples, as Luigi does
        "options": {"b": [1]},
        "day": "2026-01-02",
        "text": "x",
    }


def test_an_external_bundle_is_an_input_and_its_new_content_reruns_downstream(
    ctx: Path, tmp_path: Path
) -> None:
    source = tmp_path / "raw.txt"
    source.write_text("one")
    raw = api.add(CTX, "raw", source)
    api.apply(CTX, tasks.UsesExternal)
    assert runs(ctx) == ["UsesExternal"]
    result = api.get(CTX, "UsesExternal")
    assert result is not None
    assert result.data["from"] == raw.uuid
    assert result.lineage.depends_on == {"raw": raw.uuid}

    # Same content again (add returns the same bundle): cached.
    api.add(CTX, "raw", source)
    assert api.apply(CTX, tasks.UsesExternal)["did_work"] is False
    # A new version with different content: re-runs.
    source.write_text("two!")
    newer = api.add(CTX, "raw", source)
    assert newer.uuid != raw.uuid
    assert api.apply(CTX, tasks.UsesExternal)["did_work"] is True
    assert runs(ctx) == ["UsesExternal"]
