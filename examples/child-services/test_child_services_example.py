"""The child-services example: a parent asks two children and combines their answers."""

from pathlib import Path

import pytest

from assay.core.errors import ServiceNotFound
from assay.services import Child, list_questions, registry

HERE = Path(__file__).parent
LOCATIONS = {"locations": [[51.5, -0.1], [57.1, -2.1]]}


@pytest.fixture(autouse=True)
def _assay_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    monkeypatch.setenv("ASSAY_SERVICES_PATH", str(HERE))
    registry.clear_cache()


def test_parent_combines_two_children():
    parent = Child("examples/parent:0.1.0")  # resolved through ASSAY_SERVICES_PATH
    answer, question_uuid = parent.ask(input_values=LOCATIONS, timeout=120)
    values = answer["output_values"]
    assert values["elevations"] == [615.3, 677.3]
    assert values["wind_speeds"] == [29.8, 33.6]
    assert values["windiest"] == [57.1, -2.1]
    children = list_questions(parent_question_uuid=question_uuid)
    assert sorted(q.service_id for q in children) == [
        "examples/elevation:0.1.0",
        "examples/wind-speed:0.1.0",
    ]
    assert all(q.originator_question_uuid == question_uuid for q in children)


def test_a_missing_child_service_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ASSAY_SERVICES_PATH", str(HERE / "parent"))
    registry.clear_cache()
    with pytest.raises(ServiceNotFound, match=r"examples/wind-speed:0.1.0 is not registered"):
        Child("examples/parent:0.1.0").ask(input_values=LOCATIONS, timeout=120)
