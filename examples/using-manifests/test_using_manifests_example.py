"""The using-manifests example: input manifest in, a tagged output dataset committed out."""

from pathlib import Path

import pytest

from assay import api
from assay.core.errors import InvalidStrand
from assay.resources import Manifest
from assay.services import Child, Runner

HERE = Path(__file__).parent
RAW = HERE / "data" / "input" / "raw_met_mast_data"


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)


def test_cleans_the_octue_shaped_input_manifest():
    manifest = Manifest.from_json(HERE / "data" / "input" / "manifest.json")
    analysis = Runner.from_config(HERE).run(input_manifest=manifest)
    assert analysis.output_values == {"rows": 4, "dropped": 1}
    (cleaned,) = analysis.output_manifest.get_dataset("cleaned_met_mast_data").files
    assert cleaned.labels == {"timeseries", "cleaned"}
    assert dict(cleaned.tags) == {"date": "2026-12-08", "rows": 4}


def test_lineage_from_output_to_input_bundle():
    api.context("raw")
    raw = api.add("raw", "met-mast", RAW)
    child = Child("examples/using-manifests:0.1.0", backend={"name": "local", "path": str(HERE)})
    answer, _ = child.ask(
        input_manifest={"datasets": {"raw_met_mast_data": "assay://raw/met-mast"}}, timeout=120
    )
    reference = answer["output_manifest"].references["cleaned_met_mast_data"]
    assert reference.context == "examples"
    upstream = api.lineage("examples", reference.uuid)
    assert [(node.uuid, node.kind) for node in upstream[1:]] == [(raw.uuid, "acted_on")]


def test_files_missing_their_sequence_tag_are_refused(tmp_path):
    manifest = Manifest(datasets={"raw_met_mast_data": str(tmp_path)})
    (tmp_path / "x.csv").write_text("time,wind_speed\n")
    with pytest.raises(InvalidStrand, match=r"raw_met_mast_data.files\[x.csv\].tags"):
        Runner.from_config(HERE).run(input_manifest=manifest)
