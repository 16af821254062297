"""The command line: assay init service, assay run, assay questions ls | events | replay."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from service_types import ServiceFactory

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import expect_error, invoke, ok

TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
    }
}


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("ASSAY_DEBUG", raising=False)


def test_init_then_run(sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = ok("init", "service", "my-service", "--path", tmp_path / "my-service", "--json")
    created = run.json()
    assert created["service"] == "local/my-service:0.1.0"
    assert set(created["files"]) == {
        "Dockerfile",
        "README.md",
        "app.py",
        "assay.yaml",
        "test_my_service_service.py",
        "twine.json",
    }
    monkeypatch.chdir(tmp_path / "my-service")
    answer = ok("run", "--input-values", '{"n": 21}', "--json", "--quiet").json()
    assert answer["output_values"] == {"result": 42}
    listed = ok("questions", "ls", "--json").json()
    assert [q["question_uuid"] for q in listed] == [answer["question_uuid"]]
    assert listed[0]["status"] == "succeeded"
    events = ok("questions", "events", answer["question_uuid"][:8], "--json").json()
    assert events[0]["kind"] == "question" and events[-1]["kind"] == "result"
    replayed = ok("questions", "replay", answer["question_uuid"]).stdout
    assert "multiplying 21 by 2" in replayed and '"result": 42' in replayed


def test_init_refuses_a_folder_in_use(sqlite_home: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    expect_error(invoke("init", "service", "x", "--path", tmp_path / "taken"), 4, "not empty")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    expect_error(invoke("init", "service", "Bad_Name"), 2, "invalid service name")


def test_run_input_values_from_a_file_and_bad_ones(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    folder = make_service(
        "echo", "def run(analysis):\n    analysis.output_values = analysis.input_values", TWINE
    )
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"n": 3}))
    answer = ok("run", "--service-config", folder, "-i", f"@{values}", "--json", "-q").json()
    assert answer["output_values"] == {"n": 3}
    bad = invoke("run", "--service-config", folder, "-i", '{"n": -1}', "-q")
    expect_error(bad, 2, "input_values.n: -1 is less than the minimum of 0")
    expect_error(
        invoke("run", "--service-config", folder, "-i", "{nope", "-q"), 2, "not valid JSON"
    )
    assert ok("questions", "ls", "--json").json()[0]["status"] == "succeeded"  # nothing recorded


def test_run_app_that_raises_is_one_line(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "raiser", "def run(analysis):\n    raise ValueError('bad input file')", TWINE
    )
    line = expect_error(
        invoke("run", "--service-config", folder, "-i", '{"n": 1}', "-q"),
        8,
        "ValueError: bad input file",
    )
    question = ok("questions", "ls", "--json").json()[0]
    assert question["status"] == "failed" and question["question_uuid"] in line
    expect_error(invoke("questions", "replay", question["question_uuid"]), 8, "bad input file")


def test_unknown_config_key_is_named(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "typo", "def run(analysis):\n    pass", TWINE, outptu_location="assay://x"
    )
    expect_error(
        invoke("run", "--service-config", folder, "-q"), 2, "unknown key 'outptu_location'"
    )


def test_questions_errors(sqlite_home: Path) -> None:
    expect_error(invoke("questions", "events", "abcdef12"), 3, "no question 'abcdef12'")
    expect_error(invoke("questions", "events", "ab"), 2, "too short")
    expect_error(invoke("questions", "ls", "--status", "weird"), 2, "unknown status")
    assert "no questions yet" in ok("questions", "ls").stdout
