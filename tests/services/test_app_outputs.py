"""Issue 7, items 10 and 16: Octue's pre-filled output manifest, output-schema failures as the
app's fault (exit 8), and the app's traceback where a person reads the failure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from service_types import ServiceFactory

from assay import api
from assay.core.errors import ChildError, InvalidOutput, InvalidStrand
from assay.services import Child, Runner
from helpers import catalog_counts

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from cli_helpers import expect_error, invoke, ok

OUTPUT_TWINE = {
    "output_manifest": {
        "datasets": {
            "cleaned_met_mast_data": {"purpose": "cleaned data"},
            "extra": {"purpose": "optional extras", "optional": True},
        }
    },
}

# Octue's template-using-manifests app, as Octue 0.69 runs it (only the imports changed).
OCTUE_STYLE_APP = """
import os
import tempfile
from assay.resources import Datafile, Dataset

def run(analysis):
    assert set(analysis.output_manifest.datasets) == {"cleaned_met_mast_data", "extra"}
    assert len(analysis.output_manifest.datasets["extra"].files) == 0
    directory = tempfile.mkdtemp()
    datafile = Datafile(path=os.path.join(directory, "cleaned.csv"), labels=["timeseries"])
    with datafile.open("w") as handle:
        handle.write("a,b\\n1,2\\n")
    analysis.output_manifest.datasets["cleaned_met_mast_data"] = Dataset(
        path=directory, name="cleaned_met_mast_data"
    )
"""


def test_octue_style_app_fills_the_prefilled_output_manifest(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("cleaner", OCTUE_STYLE_APP, OUTPUT_TWINE)

    analysis = Runner.from_config(folder).run()

    references = analysis.output_manifest.references
    assert list(references) == ["cleaned_met_mast_data"]  # the untouched optional one dropped
    reference = references["cleaned_met_mast_data"]
    assert reference.kind == "catalog" and reference.context == "services"
    (datafile,) = analysis.output_manifest.get_dataset("cleaned_met_mast_data").files
    assert datafile.relative_path == "cleaned.csv"
    assert api.get("services", uuid=reference.uuid) is not None


def test_a_required_output_dataset_left_empty_is_the_apps_fault(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("lazy", "def run(analysis):\n    pass", OUTPUT_TWINE)
    api.context("services")
    before = catalog_counts()

    with pytest.raises(InvalidOutput) as caught:
        Runner.from_config(folder).run()

    assert "output_manifest.datasets.cleaned_met_mast_data" in caught.value.message
    assert isinstance(caught.value, InvalidStrand) and isinstance(caught.value, ChildError)
    assert caught.value.exit_code == 8
    assert catalog_counts() == before  # nothing committed


def test_no_output_manifest_strand_leaves_it_none(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("plain", "def run(analysis):\n    analysis.output_values = 1", {})
    analysis = Runner.from_config(folder).run()
    assert analysis.output_manifest is None and analysis.output_values == 1


def test_bad_output_values_through_a_child_are_invalid_output(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    twine = {"output_values_schema": {"type": "object", "required": ["double"]}}
    folder = make_service("wrong", "def run(analysis):\n    analysis.output_values = {}", twine)
    child = Child("test/wrong:1.0.0", backend={"name": "local", "path": str(folder)})
    with pytest.raises(InvalidOutput, match="'double' is a required property"):
        child.ask(timeout=60)


# -- the command line -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("ASSAY_DEBUG", raising=False)


def test_run_output_schema_failure_exits_8(make_service: ServiceFactory, sqlite_home: Path) -> None:
    twine = {"output_values_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    folder = make_service(
        "typo", "def run(analysis):\n    analysis.output_values = {'n': 'x'}", twine
    )

    text = invoke("run", "--service-config", folder)
    as_json = invoke("run", "--service-config", folder, "--json")

    expect_error(text, 8, "output_values.n: 'x' is not of type 'integer'")
    expect_error(as_json, 8, "output_values.n")
    assert json.loads(as_json.stdout)["error"]["code"] == "invalid_output"


APP_THAT_RAISES = """
def helper(values):
    return values["missing"]

def run(analysis):
    helper({})
"""


def test_run_shows_the_apps_traceback(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("raiser", APP_THAT_RAISES, {})

    run = invoke("run", "--service-config", folder)

    assert run.exit_code == 8
    lines = run.stderr.splitlines()
    assert lines[-1].startswith("error: ") and "KeyError: 'missing'" in lines[-1]
    assert not any(line.startswith("error: ") for line in lines[:-1])  # one error line, last
    trace = "\n".join(lines[:-1])
    assert "traceback of the app (question" in trace
    assert "Traceback (most recent call last)" in trace
    assert 'in helper\n    return values["missing"]' in trace

    as_json = invoke("run", "--service-config", folder, "--json")
    assert as_json.exit_code == 8
    (line,) = as_json.stderr.splitlines()  # JSON mode: one line on stderr ...
    assert line.startswith("error: ") and "KeyError" in line
    error = json.loads(as_json.stdout)["error"]  # ... and the traceback in the JSON error
    assert 'return values["missing"]' in error["traceback"]
    assert error["question_uuid"] in line

    question = ok("questions", "ls", "--json").json()[0]["question_uuid"]
    events = ok("questions", "events", question).stdout
    assert "Traceback (most recent call last)" in events
    assert 'return values["missing"]' in events


def test_run_dash_c_commits_outputs_there_and_questions_ls_filters(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("cleaner", OCTUE_STYLE_APP, OUTPUT_TWINE)

    answer = ok("run", "--service-config", folder, "-c", "results", "--json", "-q").json()
    other = ok("run", "--service-config", folder, "--json", "-q").json()

    uri = answer["output_manifest"]["datasets"]["cleaned_met_mast_data"]
    assert uri.startswith("assay://results/cleaner.cleaned_met_mast_data@")
    assert other["output_manifest"]["datasets"]["cleaned_met_mast_data"].startswith(
        "assay://services/"
    )
    in_results = ok("questions", "ls", "-c", "results", "--json").json()
    assert [q["question_uuid"] for q in in_results] == [answer["question_uuid"]]
    assert len(ok("questions", "ls", "--json").json()) == 2
    expect_error(invoke("run", "--service-config", folder, "-c", "a/b", "-q"), 2, "a/b")
    assert len(ok("questions", "ls", "--json").json()) == 2  # refused before asking
