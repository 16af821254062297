"""Runner in this process: app forms, validation order, outputs committed with provenance."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from service_types import ServiceFactory

from assay import api
from assay.core.errors import InvalidApp, InvalidServiceConfig, InvalidStrand, MissingCredential
from assay.resources import Datafile, Dataset, Manifest
from assay.services import Analysis, Runner
from helpers import catalog_counts, write_files

TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
    },
    "output_values_schema": {
        "type": "object",
        "properties": {"double": {"type": "integer"}},
        "required": ["double"],
    },
}


def test_run_function_app(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "doubler",
        "def run(analysis):\n    analysis.output_values = {'double': 2 * analysis.input_values['n']}",
        TWINE,
    )
    analysis = Runner.from_config(folder).run(input_values={"n": 4})
    assert isinstance(analysis, Analysis)
    assert analysis.output_values == {"double": 8}
    assert analysis.output_manifest is None


def test_app_class_and_callables(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "classy",
        """
        class App:
            def __init__(self, analysis):
                self.analysis = analysis

            def run(self):
                self.analysis.output_values = {"double": self.analysis.input_values["n"] * 2}
        """,
        TWINE,
    )
    assert Runner.from_config(folder).run(input_values={"n": 1}).output_values == {"double": 2}

    def app(analysis: Analysis) -> None:
        analysis.output_values = [1, 2, 3]

    assert Runner(app_src=app, twine="{}").run().output_values == [1, 2, 3]


def test_app_with_neither_run_nor_app(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("empty", "VALUE = 1", TWINE)
    with pytest.raises(InvalidApp, match="neither a run\\(analysis\\) function nor an App class"):
        Runner.from_config(folder)


def test_app_that_does_not_import(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service("broken", "import no_such_module_here\ndef run(analysis): pass", TWINE)
    with pytest.raises(InvalidApp, match="ModuleNotFoundError"):
        Runner.from_config(folder)


def test_bad_input_fails_before_the_app_runs(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    folder = make_service(
        "guarded", f"def run(analysis):\n    open({str(marker)!r}, 'w').close()", TWINE
    )
    with pytest.raises(InvalidStrand, match=r"^input_values.n: -1 is less than the minimum of 0$"):
        Runner.from_config(folder).run(input_values={"n": -1})
    assert not marker.exists()


def test_app_that_raises_keeps_its_exception(
    make_service: ServiceFactory, sqlite_home: Path
) -> None:
    folder = make_service("raiser", "def run(analysis):\n    raise KeyError('boom')", TWINE)
    with pytest.raises(KeyError, match="boom"):
        Runner.from_config(folder).run(input_values={"n": 1})


def test_outputs_failing_the_output_schema(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "liar", "def run(analysis):\n    analysis.output_values = {'double': 'two'}", TWINE
    )
    with pytest.raises(
        InvalidStrand, match=r"output_values.double: 'two' is not of type 'integer'"
    ):
        Runner.from_config(folder).run(input_values={"n": 1})


def test_missing_credential(
    make_service: ServiceFactory, sqlite_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASSAY_TEST_TOKEN", raising=False)
    folder = make_service(
        "secretive", "def run(analysis):\n    pass", {"credentials": [{"name": "ASSAY_TEST_TOKEN"}]}
    )
    with pytest.raises(MissingCredential, match="ASSAY_TEST_TOKEN"):
        Runner.from_config(folder).run()
    monkeypatch.setenv("ASSAY_TEST_TOKEN", "x")
    Runner.from_config(folder).run()


def test_bad_output_location(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "misplaced", "def run(analysis):\n    pass", {}, output_location="gs://bucket"
    )
    with pytest.raises(InvalidServiceConfig, match="use assay://<context>"):
        Runner.from_config(folder)


CLEANER_TWINE = {
    "configuration_manifest": {"datasets": {"model": {"purpose": "a model"}}},
    "input_manifest": {
        "datasets": {
            "raw": {
                "purpose": "raw files",
                "file_tags_template": {
                    "type": "object",
                    "properties": {"sequence": {"type": "integer"}},
                    "required": ["sequence"],
                },
            }
        }
    },
    "output_manifest": {
        "datasets": {
            "cleaned": {
                "purpose": "cleaned files",
                "file_tags_template": {
                    "type": "object",
                    "properties": {"rows": {"type": "integer"}},
                    "required": ["rows"],
                },
            }
        }
    },
}

CLEANER_APP = """
import os
from assay.resources import Datafile, Dataset, Manifest

def run(analysis):
    raw = analysis.input_manifest.get_dataset("raw")
    series = raw.files.filter(labels__contains="timeseries").order_by(
        "tags__sequence", check_start_value=0, check_constant_increment=1
    )
    rows = []
    for datafile in series:
        with datafile.open() as handle:
            rows.extend(line.strip() for line in handle if line.strip())
    out = Datafile(
        path=os.path.join(analysis.output_dir, "cleaned.csv"),
        labels=["cleaned", "timeseries"],
        tags={"rows": len(rows)},
    )
    with out.open("w") as handle:
        handle.write("\\n".join(rows) + "\\n")
    dataset = Dataset(files=[out], path=analysis.output_dir, name="cleaned", labels=["met"])
    analysis.output_manifest = Manifest(datasets={"cleaned": dataset})
    analysis.output_values = {"rows": len(rows)}
"""


def _raw_input(tmp_path: Path) -> Path:
    raw = write_files(tmp_path / "raw", {"a.csv": "1\n2\n", "b.csv": "3\n", "meta.txt": "m"})
    (raw / ".octue").write_text(
        json.dumps(
            {
                "datafiles": {
                    "a.csv": {"labels": ["timeseries"], "tags": {"sequence": 0}},
                    "b.csv": {"labels": ["timeseries"], "tags": {"sequence": 1}},
                    "meta.txt": {"labels": ["meta"], "tags": {"sequence": 9}},
                }
            }
        )
    )
    return raw


def test_output_datasets_become_bundles_with_lineage(
    make_service: ServiceFactory, assay_home: Path, tmp_path: Path
) -> None:
    api.context("lab")
    raw_bundle = api.add("lab", "raw", _raw_input(tmp_path))
    model_bundle = api.add("lab", "model", write_files(tmp_path / "model", {"m.json": "{}"}))
    folder = make_service(
        "cleaner",
        CLEANER_APP,
        CLEANER_TWINE,
        configuration_manifest={"datasets": {"model": "assay://lab/model"}},
        output_location="assay://results",
    )
    input_manifest = {"id": "in", "datasets": {"raw": "assay://lab/raw"}}
    before = copy.deepcopy(input_manifest)
    analysis = Runner.from_config(folder).run(input_manifest=input_manifest)
    assert input_manifest == before
    assert analysis.output_values == {"rows": 3}
    reference = analysis.output_manifest.references["cleaned"]
    assert reference.kind == "catalog" and reference.context == "results"
    bundle = api.get("results", uuid=reference.uuid)
    assert bundle is not None and bundle.name == "cleaner.cleaned"
    assert bundle.processing_name == "test/cleaner:1.0.0"
    assert bundle.tags["generated_by"].startswith("test/cleaner:1.0.0#")
    assert bundle.tags["dataset_key"] == "cleaned"
    version = bundle.lineage.code_version
    assert version["sruid"] == "test/cleaner:1.0.0" and len(version["code_hash"]) == 64
    kinds = {(node.uuid, node.kind) for node in api.lineage("results", bundle.uuid)[1:]}
    assert kinds == {(raw_bundle.uuid, "acted_on"), (model_bundle.uuid, "acted_using")}
    dataset = analysis.output_manifest.get_dataset("cleaned")
    (cleaned,) = dataset.files
    assert cleaned.labels == {"cleaned", "timeseries"} and dict(cleaned.tags) == {"rows": 3}
    assert dataset.labels == {"met"}
    assert not Path(analysis._output_dir or "/nonexistent").exists()


def test_a_file_missing_its_tags_is_refused_and_nothing_is_committed(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    folder = make_service(
        "cleaner",
        CLEANER_APP,
        {k: v for k, v in CLEANER_TWINE.items() if k != "configuration_manifest"},
    )
    raw = _raw_input(tmp_path)
    (raw / "c.csv").write_text("4\n")  # no tags at all
    api.context("lab")
    before = catalog_counts()
    with pytest.raises(InvalidStrand) as caught:
        Runner.from_config(folder).run(input_manifest=Manifest(datasets={"raw": str(raw)}))
    assert (
        "input_manifest.datasets.raw.files[c.csv].tags: 'sequence' is a required property"
        in caught.value.message
    )
    assert catalog_counts() == before


def test_a_missing_required_dataset(make_service: ServiceFactory, sqlite_home: Path) -> None:
    folder = make_service(
        "cleaner",
        CLEANER_APP,
        {k: v for k, v in CLEANER_TWINE.items() if k != "configuration_manifest"},
    )
    with pytest.raises(
        InvalidStrand, match=r"input_manifest.datasets.raw: the required dataset 'raw'"
    ):
        Runner.from_config(folder).run(input_manifest={"datasets": {}})


def test_a_manifest_object_is_not_changed(
    make_service: ServiceFactory, sqlite_home: Path, tmp_path: Path
) -> None:
    folder = make_service(
        "cleaner",
        CLEANER_APP,
        {k: v for k, v in CLEANER_TWINE.items() if k != "configuration_manifest"},
    )
    manifest = Manifest(datasets={"raw": Dataset(path=str(_raw_input(tmp_path)))})
    before = manifest.serialise()
    Runner.from_config(folder).run(input_manifest=manifest)
    assert manifest.serialise() == before
    assert [f.name for f in manifest.get_dataset("raw").files if "timeseries" in f.labels] == [
        "a.csv",
        "b.csv",
    ]


def test_datafile_writes_as_octue_apps_do(tmp_path: Path) -> None:
    datafile = Datafile(path=str(tmp_path / "out" / "x.txt"), labels=["a"], tags={"k": 1})
    with datafile.open("w") as handle:
        handle.write("hi")
    assert (tmp_path / "out" / "x.txt").read_text() == "hi"
