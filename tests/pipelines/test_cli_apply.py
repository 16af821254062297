"""``assay apply``: parameters from text, the plan, the report, and the error contract."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.cli.main import app
from helpers import PYTHON

HERE = Path(__file__).parent
CTX = "cli"


@pytest.fixture
def ctx(sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIPE_TEST_MARKERS", str(tmp_path))
    monkeypatch.chdir(HERE)  # module:Task references resolve from the current directory
    api.context(CTX)
    return tmp_path


def assay(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_apply_then_dry_run_shows_everything_cached(ctx: Path) -> None:
    code, out, err = assay(
        "apply",
        "pipeline_test_tasks:Total",
        "-c",
        CTX,
        "--param",
        "n=4",
        "-p",
        "scale=0.5",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert (report["success"], report["did_work"], report["counts"]) == (
        True,
        True,
        {"ran": 2},
    )
    assert [t["reason"] for t in report["tasks"]] == ["no output yet", "no output yet"]
    assert api.cat(CTX, "Total") == 3.0

    code, out, err = assay(
        "apply", "pipeline_test_tasks:Total", "-c", CTX, "-p", "n=4", "-p", "scale=0.5", "--dry-run"
    )
    assert code == 0, err
    assert "0 to run, 2 cached" in out
    assert "Total(n=4, scale=0.5)" in out


def test_dry_run_json_lists_each_task_and_why(ctx: Path) -> None:
    assay("apply", "pipeline_test_tasks:Total", "-c", CTX)
    code, out, _ = assay(
        "apply", "pipeline_test_tasks:Total", "-c", CTX, "--force", "--dry-run", "--json"
    )
    assert code == 0
    plan = json.loads(out)["plan"]
    assert [(p["bundle_name"], p["action"], p["reason"]) for p in plan] == [
        ("Numbers", "cached", ""),
        ("Total", "run", "forced"),
    ]
    numbers = api.get(CTX, "Numbers")
    assert numbers is not None and plan[0]["cached_uuid"] == numbers.uuid


def test_human_report_names_what_ran(ctx: Path) -> None:
    code, out, err = assay("apply", "pipeline_test_tasks:Numbers", "-c", CTX, "-o", "nums")
    assert code == 0, err
    assert "Numbers(n=3)" in out and "no output yet" in out
    assert "done: 1 ran; output" in out
    assert api.get(CTX, "nums") is not None


@pytest.mark.parametrize(
    ("args", "exit_code", "fragment"),
    [
        (["-p", "n=three"], 2, "parameter 'n' of Total expects an int, got str 'three'"),
        (["-p", "size=3"], 2, "Total has no parameter 'size'"),
        (["-p", "n"], 2, "--param 'n': give it as name=value"),
        (["--force", "--force-all"], 2, "not both"),
        (["--workers", "0"], 2, "workers must be at least 1"),
    ],
)
def test_bad_options_are_one_line_errors(
    ctx: Path, args: list[str], exit_code: int, fragment: str
) -> None:
    code, _, err = assay("apply", "pipeline_test_tasks:Total", "-c", CTX, *args)
    assert code == exit_code
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert api.search(CTX) == []


def test_a_failing_task_shows_its_traceback_then_one_error_line(ctx: Path) -> None:
    code, _, err = assay("apply", "pipeline_test_tasks:ReturnsObject", "-c", CTX)
    assert code == 10
    lines = err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: task ReturnsObject() failed: InvalidInput: cannot store")
    assert [b.name for b in api.search(CTX)] == ["Numbers"]


def test_a_task_that_does_not_import_is_one_line_in_a_real_process(
    sqlite_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken_pipeline.py").write_text("import numpy_that_is_not_there\n")
    api.context(CTX)
    close_workspaces()
    completed = subprocess.run(
        [PYTHON, "-m", "assay.cli.main", "apply", "broken_pipeline:Task", "-c", CTX],
        cwd=tmp_path,
        env={**os.environ, "ASSAY_HOME": str(sqlite_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [
        "error: cannot import module 'broken_pipeline' for task 'broken_pipeline:Task': "
        "ModuleNotFoundError: No module named 'numpy_that_is_not_there'"
    ]


def test_env_runs_the_pipeline_as_one_job(ctx: Path) -> None:
    code, out, err = assay(
        "apply", "pipeline_test_tasks:Total", "-c", CTX, "--env", "local", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["state"], result["environment"], result["success"]) == (
        "FINISHED",
        "local",
        True,
    )
    code, _, err = assay("apply", "pipeline_test_tasks:Total", "-c", CTX, "--env", "nowhere")
    assert code == 3
    assert err.splitlines() == ["error: no compute environment 'nowhere'; known: local"]
