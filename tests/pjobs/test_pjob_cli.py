"""``assay pipelines ...`` and ``assay pipelinejobs ...`` through the real command line
(in-process Typer runner; SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pjob_helpers import stored, write
from typer.testing import CliRunner

from assay.bundles.workspace import Workspace, open_workspace
from assay.cli.main import app
from assay.jobs import store
from assay.pjobs.tokens import admin_token


def assay(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def ok_json(*args: str) -> Any:
    result = assay("--json", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def error(code: int, *args: str) -> str:
    result = assay(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_register_create_event_index(assay_home: Path, tmp_path: Path) -> None:
    pipeline_file = tmp_path / "pipeline.yaml"
    pipeline_file.write_text("id: lab/align\nname: Aligner\nversion: '2'\naccepts: ['*.fq']\n")
    registered = ok_json("pipelines", "register", str(pipeline_file))
    assert registered["created"] is True and registered["id"] == "lab/align"
    assert [p["id"] for p in ok_json("pipelines", "ls")] == ["lab/align"]
    created = ok_json(
        "pipelinejobs", "create", "-p", "lab/align", "--sample-id", "s1",
        "--data", '{"inputs": ["/uploads/s1.fq"]}', "--archive-pattern", r"\.bam$",
    )  # fmt: skip
    uuid = created["uuid"]
    assert created["created"] is True and "/events?token=" in created["webhook"]
    again = ok_json(
        "pipelinejobs", "create", "-p", "lab/align", "--sample-id", "s1",
        "--data", '{"inputs": ["/uploads/s1.fq"]}',
    )  # fmt: skip
    assert again["uuid"] == uuid and again["created"] is False
    write(Path(created["local_path"]), {"s1.bam": "BAM", "s1.log": "log"})
    assert ok_json("pipelinejobs", "event", uuid, "run")["state"] == "RUNNING"
    assert (
        ok_json("pipelinejobs", "event", uuid, "finish", "--data", '{"rc": 0}')["state"]
        == "FINISHED"
    )
    indexed = ok_json("pipelinejobs", "index", uuid)
    assert indexed["state"] == "FINISHED" and indexed["index"]["files_indexed"] == 1
    shown = ok_json("pipelinejobs", "show", uuid[:8])
    assert shown["uuid"] == uuid and shown["acted_on"] == ["/uploads/s1.fq"]
    listed = ok_json("pipelinejobs", "ls", "--pipeline", "lab/align", "--state", "FINISHED")
    assert [j["uuid"] for j in listed] == [uuid]
    human = assay("pipelinejobs", "show", uuid)
    assert human.exit_code == 0 and "webhook" in human.stdout
    token = ok_json("pipelinejobs", "admin-token")["admin_token"]
    assert token == admin_token(open_workspace().settings)


def test_cli_errors_are_one_line_and_change_nothing(assay_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON/YAML" in error(2, "pipelines", "register", str(bad))
    unknown_key = tmp_path / "k.json"
    unknown_key.write_text('{"id": "x", "colour": "red"}')
    assert "unknown key(s) colour" in error(2, "pipelines", "register", str(unknown_key))
    assert "no pipeline 'nope'" in error(
        3, "pipelinejobs", "create", "-p", "nope", "--sample-id", "s"
    )
    good = tmp_path / "p.json"
    good.write_text('{"id": "lab/p"}')
    ok_json("pipelines", "register", str(good))
    workspace: Workspace = open_workspace()
    before = stored(workspace)
    assert "exactly one" in error(2, "pipelinejobs", "create", "-p", "lab/p")
    assert "exactly one kind" in error(
        2, "pipelinejobs", "create", "-p", "lab/p", "--sample-id", "s", "--experiment-id", "e"
    )
    assert "not a valid regular expression" in error(
        2, "pipelinejobs", "create", "-p", "lab/p", "--sample-id", "s", "--archive-pattern", "(x"
    )
    assert "outside the products root" in error(
        2, "pipelinejobs", "create", "-p", "lab/p", "--sample-id", "s", "--archive-path", "/tmp/x"
    )
    assert stored(workspace) == before
    uuid = ok_json("pipelinejobs", "create", "-p", "lab/p", "--sample-id", "s")["uuid"]
    before = stored(workspace)
    assert "cannot finish a job that is CREATED" in error(
        4, "pipelinejobs", "event", uuid, "finish"
    )
    assert "unknown event" in error(2, "pipelinejobs", "event", uuid, "explode")
    assert "admin token" in error(9, "pipelinejobs", "event", uuid, "delete")
    assert "no managed pipeline job" in error(3, "pipelinejobs", "show", "0000")
    assert stored(workspace) == before
    assert ok_json("pipelinejobs", "event", uuid, "delete", "--admin")["state"] == "CREATED"
    assert ok_json("pipelinejobs", "ls") == []
    events = store.list_events(uuid, workspace=workspace)
    assert events[-1].type == "admin"


def test_the_command_line_registers_the_machine() -> None:
    """``assay jobs fsm --kind pipelinejob`` and ``assay jobs events`` look the machine up in
    the registry: importing the command line must register it (a fresh interpreter proves it)."""
    from helpers import run_python

    done = run_python(
        """
        import assay.cli.main
        from assay.jobs.fsm import machine_for
        print(machine_for("pipelinejob").initial)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CREATED"


def test_jobs_cli_shows_the_history_and_the_machine(assay_home: Path, tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text('{"id": "lab/p"}')
    ok_json("pipelines", "register", str(good))
    uuid = ok_json("pipelinejobs", "create", "-p", "lab/p", "--sample-id", "s")["uuid"]
    ok_json("pipelinejobs", "event", uuid, "run")
    ok_json("pipelinejobs", "event", uuid, "update", "--data", '{"progress": 10}')
    ok_json("pipelinejobs", "event", uuid, "finish")
    events = ok_json("jobs", "events", uuid)
    assert [(e["event"], e["to_state"]) for e in events] == [
        ("create", "CREATED"),
        ("run", "RUNNING"),
        ("update", "RUNNING"),
        ("finish", "FINISHED"),
    ]
    drawn = assay("jobs", "fsm", "--kind", "pipelinejob")
    assert drawn.exit_code == 0 and "RESET --> CREATED: ready" in drawn.stdout
